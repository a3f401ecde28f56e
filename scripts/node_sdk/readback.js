#!/usr/bin/env node
// Reads every migrated entity back from a Pipedrive account (the local sandbox) with Pipedrive's
// official Node SDK, so the sandbox is checked by a client it was not written alongside.
//
//   PIPEDRIVE_API_TOKEN=... node readback.js --base-url http://127.0.0.1:8765 [--ids]
//
// Prints one JSON document: per entity kind its count (and ids with --ids), and every error met.
// Exit code 0 when everything was read without an error, 1 otherwise, 2 on bad usage.
"use strict";

const v1 = require("pipedrive/v1");
const v2 = require("pipedrive/v2");
const path = require("path");
const sdkVersion = require(path.join(path.dirname(require.resolve("pipedrive")), "..", "package.json")).version;

const PAGE = 500;
const MAX_429_WAITS = 20;

function usage(message) {
  process.stderr.write(`${message}\nusage: PIPEDRIVE_API_TOKEN=... node readback.js --base-url URL [--ids]\n`);
  process.exit(2);
}

function options(argv) {
  const at = argv.indexOf("--base-url");
  const baseUrl = at >= 0 ? argv[at + 1] : undefined;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) usage("--base-url must be the account's URL, e.g. http://127.0.0.1:8765");
  const token = (process.env.PIPEDRIVE_API_TOKEN || "").trim();
  if (!token) usage("PIPEDRIVE_API_TOKEN is not set");
  return { baseUrl: baseUrl.replace(/\/+$/, ""), token, withIds: argv.includes("--ids") };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A 429 (a burst over the plan's limit) is waited out for one burst window, as the SDK gives no
// headers with its errors; anything else is an error of the read.
async function call(fn) {
  for (let waits = 0; ; waits++) {
    try {
      return await fn();
    } catch (err) {
      const status = err && (err.status || (err.response && err.response.status) || err.errorCode);
      if (status === 429 && waits < MAX_429_WAITS) {
        await sleep(2000);
        continue;
      }
      throw err;
    }
  }
}

function envelope(body, what) {
  if (!body || body.success !== true) throw new Error(`${what}: answer without success: true`);
  return body;
}

async function listV2(what, fetchPage) {
  const items = [];
  let cursor;
  do {
    const body = envelope(await call(() => fetchPage({ limit: PAGE, cursor })), what);
    if (!Array.isArray(body.data)) throw new Error(`${what}: data is not a list`);
    items.push(...body.data);
    cursor = body.additional_data && body.additional_data.next_cursor;
  } while (cursor);
  return items;
}

async function listV1(what, fetchPage) {
  const items = [];
  let start = 0;
  for (;;) {
    const body = envelope(await call(() => fetchPage({ start, limit: PAGE })), what);
    const data = body.data || [];
    items.push(...data);
    const pag = (body.additional_data && body.additional_data.pagination) || {};
    if (!pag.more_items_in_collection || data.length === 0) return items;
    start = pag.next_start || start + data.length;
  }
}

async function one(what, fetch) {
  return envelope(await call(fetch), what).data;
}

function describe(err) {
  if (err && typeof err === "object" && "error" in err) return `${err.error}${err.error_info ? ` (${err.error_info})` : ""}`;
  return String((err && err.message) || err);
}

async function main() {
  const { baseUrl, token, withIds } = options(process.argv.slice(2));
  const c2 = new v2.Configuration({ apiKey: token, basePath: `${baseUrl}/api/v2` });
  const c1 = new v1.Configuration({ apiKey: token, basePath: `${baseUrl}/v1` });
  const api2 = {
    organizations: new v2.OrganizationsApi(c2), persons: new v2.PersonsApi(c2), deals: new v2.DealsApi(c2),
    activities: new v2.ActivitiesApi(c2), pipelines: new v2.PipelinesApi(c2), stages: new v2.StagesApi(c2),
    dealFields: new v2.DealFieldsApi(c2), personFields: new v2.PersonFieldsApi(c2),
    organizationFields: new v2.OrganizationFieldsApi(c2), activityFields: new v2.ActivityFieldsApi(c2),
  };
  const api1 = {
    notes: new v1.NotesApi(c1), files: new v1.FilesApi(c1), relationships: new v1.OrganizationRelationshipsApi(c1),
    users: new v1.UsersApi(c1), activityTypes: new v1.ActivityTypesApi(c1),
  };
  const read = {};
  const errors = [];
  const step = async (kind, fn) => {
    try {
      read[kind] = await fn();
    } catch (err) {
      errors.push({ kind, error: describe(err) });
    }
  };

  await step("organizations", () => listV2("organizations", (p) => api2.organizations.getOrganizations(p)));
  await step("persons", () => listV2("persons", (p) => api2.persons.getPersons(p)));
  await step("deals", () => listV2("deals", (p) => api2.deals.getDeals(p)));
  await step("activities", () => listV2("activities", (p) => api2.activities.getActivities(p)));
  await step("pipelines", () => listV2("pipelines", (p) => api2.pipelines.getPipelines(p)));
  await step("stages", () => listV2("stages", (p) => api2.stages.getStages(p)));
  for (const f of ["dealFields", "personFields", "organizationFields", "activityFields"]) {
    const method = `get${f[0].toUpperCase()}${f.slice(1)}`;
    await step(f, () => listV2(f, (p) => api2[f][method](p)));
  }
  await step("notes", () => listV1("notes", (p) => api1.notes.getNotes(p)));
  await step("files", () => listV1("files", (p) => api1.files.getFiles(p)));
  await step("users", async () => envelope(await call(() => api1.users.getUsers()), "users").data);
  await step("activityTypes", async () => envelope(await call(() => api1.activityTypes.getActivityTypes()), "activity types").data);
  // relationships are listed per organization; each one shows up under both of its organizations
  await step("organizationRelationships", async () => {
    const byId = new Map();
    for (const org of read.organizations || []) {
      const rels = envelope(await call(() => api1.relationships.getOrganizationRelationships({ org_id: org.id })),
        "organization relationships").data || [];
      for (const rel of rels) byId.set(rel.id, rel);
    }
    return [...byId.values()];
  });
  // one record of each migrated kind by id too: the single-record answers have their own shapes
  const single = {
    organizations: (id) => api2.organizations.getOrganization({ id }), persons: (id) => api2.persons.getPerson({ id }),
    deals: (id) => api2.deals.getDeal({ id }), activities: (id) => api2.activities.getActivity({ id }),
    notes: (id) => api1.notes.getNote({ id }), files: (id) => api1.files.getFile({ id }),
  };
  for (const [kind, get] of Object.entries(single)) {
    const first = (read[kind] || [])[0];
    if (!first) continue;
    try {
      const got = await one(kind, () => get(first.id));
      if (!got || got.id !== first.id) throw new Error(`${kind} ${first.id} read by id came back as ${got && got.id}`);
    } catch (err) {
      errors.push({ kind: `${kind} by id`, error: describe(err) });
    }
  }

  // the search routes a user of the migration needs find a migrated record by its name or title
  const found = (body, id) => ((body.data && body.data.items) || []).some((hit) => hit.item && hit.item.id === id);
  const api2search = new v2.ItemSearchApi(c2);
  const searches = {
    deals: (r) => api2.deals.searchDeals({ term: r.title, fields: "title", exact_match: true }),
    persons: (r) => api2.persons.searchPersons({ term: r.name, fields: "name", exact_match: true }),
    organizations: (r) => api2.organizations.searchOrganization({ term: r.name, fields: "name", exact_match: true }),
    itemSearch: (r) => api2search.searchItem({ term: r.title, item_types: "deal", exact_match: true }),
  };
  const searched = {};
  for (const [what, search] of Object.entries(searches)) {
    const record = (read[what === "itemSearch" ? "deals" : what] || [])[0];
    if (!record) continue;
    try {
      const body = envelope(await call(() => search(record)), `${what} search`);
      if (!found(body, record.id)) throw new Error(`${what} search did not find record ${record.id}`);
      searched[what] = "found";
    } catch (err) {
      errors.push({ kind: `${what} search`, error: describe(err) });
    }
  }
  const custom = (read.dealFields || []).find((f) => f.is_custom_field);
  if (custom) {
    try {
      const got = await one("deal field", () => api2.dealFields.getDealField({ field_code: custom.field_code }));
      if (got.field_code !== custom.field_code) throw new Error(`deal field ${custom.field_code} came back as ${got.field_code}`);
    } catch (err) {
      errors.push({ kind: "dealFields by code", error: describe(err) });
    }
  }

  // lists filtered by a link give exactly the records the full lists link there
  const filtered = {};
  const byLink = [
    ["deals", "org_id", (p) => api2.deals.getDeals(p), listV2],
    ["deals", "person_id", (p) => api2.deals.getDeals(p), listV2],
    ["deals", "stage_id", (p) => api2.deals.getDeals(p), listV2],
    ["persons", "org_id", (p) => api2.persons.getPersons(p), listV2],
    ["activities", "deal_id", (p) => api2.activities.getActivities(p), listV2],
    ["notes", "deal_id", (p) => api1.notes.getNotes(p), listV1],
  ];
  for (const [kind, link, fetchPage, list] of byLink) {
    const linked = (read[kind] || []).find((r) => r[link] != null);
    if (!linked) continue;
    const value = linked[link];
    const want = read[kind].filter((r) => r[link] === value).map((r) => r.id).sort((a, b) => a - b);
    try {
      const got = (await list(`${kind} by ${link}`, (p) => fetchPage({ ...p, [link]: value }))).map((r) => r.id)
        .sort((a, b) => a - b);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`${kind} with ${link}=${value}: got ids ${got}, the full list links ${want}`);
      }
      filtered[`${kind} by ${link}`] = got.length;
    } catch (err) {
      errors.push({ kind: `${kind} by ${link}`, error: describe(err) });
    }
  }

  const entities = {};
  for (const [kind, items] of Object.entries(read)) {
    entities[kind] = { count: items.length };
    if (withIds) entities[kind].ids = items.map((x) => x.id ?? x.key ?? x.code).sort((a, b) => (a > b) - (a < b));
  }
  process.stdout.write(`${JSON.stringify({ sdk: `pipedrive@${sdkVersion}`, entities, searches: searched, filtered, errors }, null, 2)}\n`);
  process.exit(errors.length ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`readback failed: ${describe(err)}\n`);
  process.exit(1);
});
