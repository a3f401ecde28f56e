"""Scope document and API budget estimate.

The load sends one request per record (no bulk create exists): organization / person / deal /
activity create 5 tokens (v2 POST), note / file / organization relationship 10 (v1 POST), plus the
account audit, provisioning, the company look-ups and the verification read-back — everything the
`migrate` job sends, so the estimate can be checked against the sandbox's count
(benchmarks/loader_bench.py, benchmark 4). From the account's plan and seats:

    days  = tokens / (daily budget − reserve),  daily budget = 30,000 × multiplier × seats
    hours = requests / burst limit per 2 s × 2 s / 3600

The reserve is PIPEDRIVE_DAILY_RESERVE. The Calendar section (mapping/calendar.py) sets those days
out for every record plan × every Pipedrive plan, and for more seats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from flitstack_dagster.mapping.audit import (
    PLAN_BURST,
    PLAN_FIELD_CAP,
    AccountAudit,
    _norm,
)
from flitstack_dagster.mapping.calendar import (
    Calendar,
    calendar_summary,
    calendar_table,
    migration_calendar,
    usable_daily,
)
from flitstack_dagster.mapping.model import FOLDS, Mapping
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.mapping.profile import SIZE_BANDS, SourceProfile
from flitstack_dagster.mapping.activity_rows import activity_types_used
from flitstack_dagster.mapping.provision import PLAN_FIELDS, field_needs
from flitstack_dagster.mapping.value_proposals import DEFAULT_ACTIVITY_TYPES, describe_status
from flitstack_dagster.mapping.yamlio import STATUS_KEY, needs_decision
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.pipedrive.limits import file_limit_text
from flitstack_dagster.core.plans import find_plan
from flitstack_dagster.core.safe_text import Markdown, md_text
from flitstack_dagster.core.settings import check_daily_reserve, check_plan, check_seats, raw

COST = {e.name: e.create.tokens for e in ENTITIES}
# provisioning: reads (v2 list 10, v2 pipelines/stages 5, v1 activityTypes/users 20) and writes
READ_COSTS = {"GET fields (deal, person, organization)": (3, 10), "GET pipelines": (1, 5),
              "GET stages": (1, 5), "GET activityTypes": (1, 20)}
# the account audit before the mapping: fields of 4 entities, pipelines, stages, activity types, users,
# and one page (limit 500) of each record kind to see what the account already holds
AUDIT_READS = {"GET fields (deal, person, organization, activity)": (4, 10), "GET pipelines": (1, 5),
               "GET stages": (1, 5), "GET activityTypes": (1, 20), "GET users": (1, 20),
               "GET organizations, persons, deals, activities (1 page each)": (4, 10)}
# users/me (2 tokens), once per step that talks to Pipedrive: the account audit, provisioning, 7 loads, verification
ACCOUNT_LOOKUPS = 10
ACCOUNT_LOOKUP_COST = 2
FOLDED = "folded"  # estimate rows of facts written as lines of text: no request of their own
PERIOD_DAYS = {"DAILY": 1.0, "WEEKLY": 7.0, "MONTHLY": 30.44, "YEARLY": 365.25}
ONE_TO_ONE = {"copy", "text", "date", "datetime", "money", "number", "yesno", "none", "id_map"}


def is_one_to_one(transform: str) -> bool:
    """Copies, typed copies, id look-ups and source ids map 1:1; everything else is a transform."""
    return transform in ONE_TO_ONE or transform.startswith(("lookup:", "source_id:"))


class EstimateRow(BaseModel):
    entity: str
    what: str
    records: int
    requests: int
    tokens_per_request: float
    tokens: int


class RequestEstimate(BaseModel):
    rows: list[EstimateRow] = Field(default_factory=list)
    plan: str | None = None
    seats: int | None = None
    daily_budget: int | None = None
    usable_daily: int | None = None
    burst_per_2s: int | None = None
    reserve: float = 0.0

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rows)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rows)

    @property
    def days(self) -> float | None:
        return None if not self.usable_daily else self.tokens / self.usable_daily

    @property
    def hours(self) -> float | None:
        return None if not self.burst_per_2s else self.requests / self.burst_per_2s * 2 / 3600

    def by_entity(self) -> dict[str, dict[str, int]]:
        """Records, requests and tokens per entity, by the registry's names (plus audit, provisioning,
        verification and folded)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            d = out.setdefault(r.entity, {"records": 0, "requests": 0, "tokens": 0})
            d["records"] += r.records
            d["requests"] += r.requests
            d["tokens"] += r.tokens
        return out


class ArchiveScope(BaseModel):
    """What the archive cutoff takes out of the load (counted by mapping.archive.archive_scope): the work
    orders closed before it per organization, and how many of each kind of their rows go with them (their
    attachments are listed in the archive and still uploaded, as files on its organization)."""

    cutoff: date
    by_org: dict[str, list[str]] = Field(default_factory=dict)  # organization source id -> WO numbers
    rows: dict[str, int] = Field(default_factory=dict)  # staged entity -> archived rows
    note_entry_types: dict[str, int] = Field(default_factory=dict)
    attachments_by_size: dict[str, int] = Field(default_factory=dict)  # uploaded all the same, to the organization
    with_history: int = 0  # archived work orders with a status change or a parts line
    long_descriptions: int = 0  # archived work orders whose description would be a note
    files: int = 0  # a CSV and an HTML per organization, per part when one would be over the file size limit
    rows_only: int = 0  # of the work orders, those an earlier run archived: this run archives rows of theirs

    @property
    def work_orders(self) -> int:
        return sum(len(v) for v in self.by_org.values())


ARCHIVE_DOWNLOAD_COST = 20  # GET /v1/files/{id}/download: the read-back reads each archive whole


def without_archive(profile: SourceProfile, archive: ArchiveScope) -> SourceProfile:
    """The profile of what still loads as records once the archive has taken its work orders and rows."""
    inv = profile.inventory.model_copy(deep=True)

    def less(counts: dict[str, int], taken: dict[str, int]) -> dict[str, int]:
        return {k: max(0, n - taken.get(k, 0)) for k, n in counts.items()}

    # an archived work order's attachments are still uploaded (to its organization): they stay counted
    inv.counts = less(inv.counts, {e: n for e, n in archive.rows.items() if e != "attachments"})
    inv.note_entry_types = less(inv.note_entry_types, archive.note_entry_types)
    inv.note_entry_types_on_work_orders = less(inv.note_entry_types_on_work_orders, archive.note_entry_types)
    inv.work_orders_with_history = max(0, inv.work_orders_with_history - archive.with_history)
    inv.descriptions_over_255 = max(0, inv.descriptions_over_255 - archive.long_descriptions)
    return profile.model_copy(update={"inventory": inv})


def pm_occurrences(profile: SourceProfile, window_days: int) -> int:
    """Activities the PM schedules make inside the window (one for meter/unknown cadences)."""
    n = 0
    for c in profile.inventory.pm_cadence:
        if c.unit in PERIOD_DAYS:
            per = max(1, math.ceil(window_days / (PERIOD_DAYS[c.unit] * max(c.interval, 1))))
        else:
            per = 1
        n += per * c.schedules
    return n


def provisioning_plan(mapping: Mapping, audit: AccountAudit | None) -> dict[str, int]:
    """Counts of what provisioning will create (all of it when the account is unknown)."""
    fields = options = 0
    for n in field_needs(mapping):
        f = audit.find_field(n.entity, n.name) if audit else None
        if n.custom and f is None:
            fields += 1
        elif f is not None and n.field_type in ("enum", "set"):
            have = {_norm(o.label) for o in f.options}
            options += 1 if any(_norm(o) not in have for o in n.options) else 0
        elif not n.custom and audit is None and n.options:
            options += 1
    pipe = audit.pipeline(mapping.options.pipeline_name) if audit else None
    stages = len(mapping.pipeline_stages) if pipe is None else sum(
        1 for s in mapping.pipeline_stages if _norm(s) not in {_norm(x.name) for x in pipe.stages})
    types = sum(1 for t in activity_types_used(mapping) if not _has_activity_type(audit, t))
    return {"fields": fields, "option_adds": options, "pipeline": 0 if pipe else 1, "stages": stages,
            "activity_types": types}


def _has_activity_type(audit: AccountAudit | None, name: str) -> bool:
    """Whether the account has the type; without an audit, Pipedrive's default types are taken as there."""
    if audit is None:
        return _norm(name) in {_norm(t) for t in DEFAULT_ACTIVITY_TYPES}
    return audit.activity_type(name) is not None


def daily_reserve() -> float:
    """The share of each day's budget left for the company's other integrations (PIPEDRIVE_DAILY_RESERVE)."""
    return check_daily_reserve(raw("PIPEDRIVE_DAILY_RESERVE"))


def estimate_requests(profile: SourceProfile, mapping: Mapping, audit: AccountAudit | None = None,
                      plan: str | None = None, seats: int | None = None,
                      reserve: float | None = None, record_plan: str | None = None,
                      archive: ArchiveScope | None = None) -> RequestEstimate:
    """Requests and tokens of the whole migration under `record_plan` (the mapping's when None); with an
    `archive`, its work orders and their rows cost the archive files instead of records."""
    if archive is not None:
        profile = without_archive(profile, archive)
    if record_plan is not None and record_plan != mapping.record_plan:
        mapping = mapping.model_copy(update={"record_plan": record_plan})
    folded = FOLDS[mapping.record_plan]
    inv = profile.inventory
    c = inv.counts
    opts = mapping.options
    est = RequestEstimate()
    rows = est.rows

    def add(entity: str, what: str, records: int, cost: int, fold: str | None = None) -> None:
        if records and fold in folded:  # a line of text on the deal or its timeline note: no request of its own
            where = f"the deal's {PLAN_FIELDS[folded[fold]].name} field" if folded[fold] else "the deal's timeline note"
            rows.append(EstimateRow(entity=FOLDED, what=f"{what}: lines of {where}", records=records, requests=0,
                                    tokens_per_request=0, tokens=0))
        elif records:
            rows.append(EstimateRow(entity=entity, what=what, records=records, requests=records,
                                    tokens_per_request=cost, tokens=records * cost))

    assets = c.get("assets", 0)
    add("organization", "accounts → organizations", c.get("accounts", 0), COST["organization"])
    add("organization", "assets → organizations", assets, COST["organization"])
    add("organization", "placeholder organization", 1 if assets else 0, COST["organization"])
    add("org_relationship", "asset parent links (v1 organizationRelationships)", assets, COST["org_relationship"])
    add("person", "contacts → persons", c.get("contacts", 0), COST["person"])
    add("deal", "work orders → deals", c.get("work_orders", 0), COST["deal"])
    add("activity", "labor entries", c.get("labor", 0), COST["activity"], "labor")
    add("activity", "parts used", c.get("parts_used", 0), COST["activity"], "parts")
    et = inv.note_entry_types
    logged_notes = sum(n for k, n in et.items() if k.casefold() == "note")
    add("activity", "activity-log calls/emails/meetings", sum(et.values()) - logged_notes if et else 0,
        COST["activity"])
    add("activity", f"PM occurrences in {opts.pm_window_days} days", pm_occurrences(profile, opts.pm_window_days),
        COST["activity"])
    add("note", "status changes", c.get("status_log", 0), COST["note"], "status")
    on_wo = sum(n for k, n in inv.note_entry_types_on_work_orders.items() if k.casefold() == "note")
    add("note", "activity-log notes on work orders", on_wo, COST["note"], "log_note")
    add("note", "activity-log notes on assets", logged_notes - on_wo, COST["note"])
    if None in folded.values():
        add("note", "timeline notes (one per work order with a status change or parts line)",
            inv.work_orders_with_history, COST["note"])
    add("note", "PM history", c.get("pm_history", 0), COST["note"])
    add("note", "parts-table notes on equipment", inv.equipment_with_parts, COST["note"])
    add("note", "long descriptions as first deal note", inv.descriptions_over_255, COST["note"])
    bands = inv.attachments_by_size
    small = sum(n for b, n in bands.items() if b != SIZE_BANDS[-1][0])
    add("file", f"attachments ≤ {file_limit_text()}", small, COST["file"])
    if opts.large_file_policy == "split" and inv.attachments_over_limit_bytes:
        add("file", "parts of split large attachments",
            math.ceil(inv.attachments_over_limit_bytes / opts.max_file_bytes), COST["file"])
    if archive is not None:
        add("file", f"archives of the {archive.work_orders:,} work orders closed before {archive.cutoff.isoformat()} "
            "(a CSV and an HTML per organization)", archive.files, COST["file"])
    # account audit, verification read-back (see loading/readback.py), company look-ups
    audit_reqs = sum(n for n, _ in AUDIT_READS.values())
    audit_tokens = sum(n * t for n, t in AUDIT_READS.values())
    rows.append(EstimateRow(entity="audit", what="account audit reads (fields, pipelines, stages, types, users, "
                            "record pages)", records=0, requests=audit_reqs,
                            tokens_per_request=round(audit_tokens / audit_reqs, 2), tokens=audit_tokens))
    rows.append(EstimateRow(entity="audit", what="company look-up (users/me) per Pipedrive step", records=0,
                            requests=ACCOUNT_LOOKUPS, tokens_per_request=ACCOUNT_LOOKUP_COST,
                            tokens=ACCOUNT_LOOKUPS * ACCOUNT_LOOKUP_COST))
    loaded = est.by_entity()
    vreq, vtok = verification_reads({e: d["records"] for e, d in loaded.items()})
    if vreq:
        rows.append(EstimateRow(entity="verification", what="read-back of every loaded record", records=0,
                                requests=vreq, tokens_per_request=round(vtok / vreq, 2), tokens=vtok))
    if archive is not None and archive.files:
        rows.append(EstimateRow(entity="verification", what="archive downloads (each archive read back whole)",
                                records=0, requests=archive.files, tokens_per_request=ARCHIVE_DOWNLOAD_COST,
                                tokens=archive.files * ARCHIVE_DOWNLOAD_COST))
    # provisioning
    pp = provisioning_plan(mapping, audit)
    reads = sum(n for n, _ in READ_COSTS.values())
    read_tokens = sum(n * t for n, t in READ_COSTS.values())
    rows.append(EstimateRow(entity="provisioning", what="reads (fields, pipelines, stages, types, users)",
                            records=0, requests=reads, tokens_per_request=round(read_tokens / reads, 2),
                            tokens=read_tokens))
    writes = [("custom fields", pp["fields"], 5), ("option additions", pp["option_adds"], 5),
              ("pipeline", pp["pipeline"], 5), ("stages", pp["stages"], 5),
              ("activity types (v1)", pp["activity_types"], 10)]
    for what, n, cost in writes:
        if n:
            rows.append(EstimateRow(entity="provisioning", what=what, records=n, requests=n, tokens_per_request=cost,
                                    tokens=n * cost))
    # plan arithmetic
    found = find_plan(plan or (audit.plan_key if audit else None))
    p = found.name if found else None
    s = seats or (audit.seats if audit else None)
    est.plan, est.seats = p, s
    est.reserve = daily_reserve() if reserve is None else reserve
    if found and s:
        est.daily_budget = found.daily_budget(int(s))
        est.usable_daily = usable_daily(found, int(s), est.reserve)
    est.burst_per_2s = PLAN_BURST.get(p) if p else None
    return est


@dataclass(frozen=True)
class RecordPlanCost:
    """What a record plan (mapping.model.RECORD_PLANS names them) costs for a bundle, and in a line how it
    shapes the records."""

    name: str
    what: str
    estimate: Callable[..., RequestEstimate]  # (profile, mapping, audit, reserve=, archive=) -> RequestEstimate


# One per record plan of the mapping model, in its order; the calendar shows each. Measured against the
# sandbox's count by benchmarks/token_bench.py.
RECORD_PLAN_COSTS: tuple[RecordPlanCost, ...] = (
    RecordPlanCost("complete", "every status change a note, every labor entry and parts line an activity",
                   partial(estimate_requests, record_plan="complete")),
    RecordPlanCost("balanced", "a work order's status changes, parts lines and activity-log notes one timeline note "
                   "on its deal; labor, calls, emails and meetings stay activities",
                   partial(estimate_requests, record_plan="balanced")),
    RecordPlanCost("compact", "a work order's status changes, activity-log notes, labor and parts lines in long-text "
                   "fields of its deal; calls, emails and meetings stay activities",
                   partial(estimate_requests, record_plan="compact")),
)


def run_calendar(profile: SourceProfile, mapping: Mapping, audit: AccountAudit | None = None,
                 reserve: float | None = None, archive: ArchiveScope | None = None) -> Calendar:
    """The calendar of this bundle: every record plan's tokens (with the archive cutoff's files instead of
    its work orders' records), at the account's plan and seats (the audit's; PIPEDRIVE_PLAN /
    PIPEDRIVE_SEATS when the audit does not know them)."""
    reserve = daily_reserve() if reserve is None else reserve
    tokens = {rp.name: rp.estimate(profile, mapping, audit, reserve=reserve, archive=archive).tokens
              for rp in RECORD_PLAN_COSTS}
    plan = (audit.plan_key if audit else None) or check_plan(raw("PIPEDRIVE_PLAN"))
    seats = (audit.seats if audit else None) or check_seats(raw("PIPEDRIVE_SEATS"))
    return migration_calendar(tokens, seats, reserve, plan)


def calendar_section(cal: Calendar, chosen: str | None = None) -> list[str]:
    """The scope document's Calendar section; `chosen`: the record plan the approval chose."""
    headers, rows = calendar_table(cal)
    plans = [f"- `{md_text(rp.name)}`{' (chosen at approval)' if rp.name == chosen else ''}: {md_text(rp.what)}"
             for rp in RECORD_PLAN_COSTS]
    return (["", "## Calendar", "", f"- {md_text(calendar_summary(cal))}.",
             "- days = tokens ÷ usable a day, rounded up: the budget refills once a day.",
             "", "Record plans:", ""] + plans + [""] + _t(headers, rows))


def verification_reads(records: dict[str, int]) -> tuple[int, int]:
    """(requests, tokens) of the read-back (loading/readback.py): scans of organizations,
    persons and deals (10 tokens per 500), activities by ids (10 per 100), notes and files one by one
    (2 each) up to 10 else a list (20 per 500), relationships one by one (2 each)."""
    req = tok = 0
    for entity, n in records.items():
        if n <= 0:
            continue
        if entity in ("organization", "person", "deal"):
            pages = max(1, math.ceil(n / 500))
            req, tok = req + pages, tok + 10 * pages
        elif entity == "activity":
            pages = math.ceil(n / 100)
            req, tok = req + pages, tok + 10 * pages
        elif entity in ("note", "file"):
            if n <= 10:
                req, tok = req + n, tok + 2 * n
            else:
                pages = math.ceil(n / 500)
                req, tok = req + pages, tok + 20 * pages
        elif entity == "org_relationship":
            req, tok = req + n, tok + 2 * n
    return req, tok


# ----------------------------------------------------------------------------------------------


def complexity(profile: SourceProfile, mapping: Mapping, audit: AccountAudit | None,
               owners: OwnerResolution | None, est: RequestEstimate) -> tuple[str, list[str]]:
    """Grade A (simple) … D (hard) from points; each reason names its points."""
    pts: list[tuple[int, str]] = []
    h = profile.inventory.hierarchy
    if h.deeper_than_2:
        pts.append((1, f"{h.deeper_than_2} asset(s) deeper than 2 levels will be flattened (max depth {h.max_depth})"))
    if h.cycles:
        pts.append((1, f"{len(h.cycles)} cycle(s) in the asset hierarchy must be broken"))
    un = mapping.unmapped()
    if un:
        pts.append((1, f"{len(un)} value(s) unmapped — the load waits for the user to map them"))
    if len(profile.udfs) > 10:
        pts.append((1, f"{len(profile.udfs)} UDFs need custom fields"))
    new_fields = provisioning_plan(mapping, audit)["fields"]
    cap = audit.custom_field_cap if audit else None
    if audit and cap is not None and audit.custom_field_count + new_fields > cap:
        pts.append((2, f"{new_fields} new custom fields do not fit the plan's cap ({audit.custom_field_count}/{cap} used)"))
    if est.days is not None and est.days > 7:
        pts.append((2, f"token budget: {est.days:.1f} days of the daily budget"))
    elif est.days is not None and est.days > 1:
        pts.append((1, f"token budget: {est.days:.1f} days of the daily budget"))
    over = profile.inventory.attachments_by_size.get(SIZE_BANDS[-1][0], 0)
    if over:
        pts.append((1, f"{over} attachment(s) over {file_limit_text()} need manual handling"))
    records = sum(profile.inventory.counts.values())
    if records > 100_000:
        pts.append((1, f"{records:,} source records"))
    if owners and owners.rows and len(owners.unmatched()) > len(owners.rows) / 2:
        pts.append((1, f"{len(owners.unmatched())} of {len(owners.rows)} contacts have no Pipedrive user"))
    total = sum(p for p, _ in pts)
    grade = "A" if total <= 1 else "B" if total <= 3 else "C" if total <= 5 else "D"
    reasons = [f"+{p} {r}" for p, r in pts] or ["no complicating factor found"]
    return grade, reasons


def _t(headers: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table; every cell is shown as typed (see safe_text.md_text)."""
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(md_text(v) for v in r) + " |" for r in rows]
    return out


def _decided(mapping: Mapping, key: str, value: str, proposed: str, confirmed: bool) -> tuple[str, str]:
    """(the value's target now, how it was decided)."""
    if key == STATUS_KEY:
        now = describe_status(mapping.status_map.get(value))
    else:
        t = mapping.value_maps.get(key, {}).get(value)
        now = "unmapped" if t is None else t
    if now != proposed:
        return now or "(empty)", "by hand"
    if needs_decision(mapping, key, value) is not None:
        return now or "(empty)", "needs your decision"
    return now or "(empty)", "confirmed" if confirmed else "as proposed"


def _value_proposals(mapping: Mapping) -> list[str]:
    """Every value not taken verbatim: what was proposed, from which evidence, and what the lead decided."""
    rows = []
    for key, props in mapping.value_proposals.items():
        for v, p in props.items():
            if p.confidence >= 1.0 and not p.confirmed:
                continue
            now, how = _decided(mapping, key, v, p.proposed, p.confirmed)
            rows.append([key, v, p.proposed or "(empty)", f"{p.confidence:.2f}", now, how, p.reason])
    if not rows:
        return []
    return ["", "### Value proposals (values not taken verbatim)", ""] + _t(
        ["column", "value", "proposed", "confidence", "now", "decided", "evidence"], rows)


def archive_section(archive: ArchiveScope | None) -> list[str]:
    """The scope document's Archive section: the cutoff, what it archives, and every archived work order
    listed under its organization."""
    if archive is None:
        return []
    head = ["", "## Archive", ""]
    if not archive.work_orders:
        return head + [f"- no work order was closed before the cutoff {archive.cutoff.isoformat()}: "
                       "nothing is archived."]
    taken = ", ".join(f"{n:,} {e.replace('_', ' ')}" for e, n in archive.rows.items() if e != "work_orders" and n)
    lines = head + [
        f"- **{archive.work_orders:,} work orders** closed before **{archive.cutoff.isoformat()}** (Date Completed, in "
        f"the tenant's zone) go into a CSV and a readable HTML file per organization ({len(archive.by_org):,} "
        f"organizations, {archive.files:,} files; a file that would be over {file_limit_text()} is split by work "
        "order) instead of deals" + (f", with their rows: {taken}" if taken else "") + ".",
        "- every column of every archived row is in both files; the read-back downloads each file and looks "
        "for every archived work order in it."]
    if archive.rows_only:
        lines.append(f"- {archive.rows_only:,} of them were archived by an earlier run: this run's archive holds "
                     "the rows of theirs it carries (their work order stays in the earlier archive).")
    uploaded = sum(archive.attachments_by_size.values())
    if uploaded:
        lines.append(f"- their {uploaded:,} attachments are listed in the archive and each one's file is uploaded "
                     "to the archive's organization (counted with the attachments in API requests).")
    lines.append("")
    lines += ["| organization | work orders | archived work orders |", "| --- | --- | --- |"]
    lines += [f"| {md_text(org)} | {len(wos):,} | {md_text(', '.join(wos), limit=max(200, 12 * len(wos)))} |"
              for org, wos in sorted(archive.by_org.items())]
    return lines


def scope_document(profile: SourceProfile, mapping: Mapping, audit: AccountAudit | None = None,
                   owners: OwnerResolution | None = None, reserve: float | None = None,
                   archive: ArchiveScope | None = None) -> str:
    reserve = daily_reserve() if reserve is None else reserve
    est = estimate_requests(profile, mapping, audit, reserve=reserve, archive=archive)
    grade, reasons = complexity(profile, mapping, audit, owners, est)
    inv = profile.inventory
    L: list[str] = [f"# Migration scope — run {md_text(profile.run_key)}", ""]
    L += [f"**Complexity grade: {grade}**", ""] + [f"- {r}" for r in reasons] + [""]

    L += ["## Inventory", ""]
    L += _t(["entity", "records", "quarantined rows"],
            [[e, n, inv.quarantined.get(e, 0)] for e, n in inv.counts.items()])
    L += ["", "### Work-order status", ""]
    L += _t(["status", "work orders", "mapped to"],
            [[s, n, (lambda t: Markdown("**unmapped**") if t is None else f"{t.stage} ({t.status})")(
                mapping.status_map.get(s)) if s in mapping.status_map else Markdown("**not in mapping**")]
             for s, n in inv.wo_status.items()])
    L += ["", "### Work-order priority", ""]
    L += _t(["priority", "work orders"], [[p or "(empty)", n] for p, n in inv.wo_priority.items()])
    L += _value_proposals(mapping)
    h = inv.hierarchy
    L += ["", "### Asset hierarchy", ""]
    L += _t(["depth", "assets"], [[d, n] for d, n in sorted(h.depth_histogram.items())])
    L += ["", (f"- {h.assets} assets, {h.roots} trees, max depth {h.max_depth}; "
              f"{h.missing_parent} with a missing parent (treated as roots)")]
    L += [f"- cycles: {len(h.cycles)}" + (": " + "; ".join(" → ".join(md_text(a) for a in c + [c[0]]) for c in h.cycles[:20])
                                          if h.cycles else "")
          + (f" ({h.under_cycle} asset(s) hang below a cycle)" if h.under_cycle else "")]
    L += ["", "### PM schedules by recurrence style", ""]
    L += _t(["style", "schedules"], [[s, n] for s, n in inv.pm_by_style.items()])
    L += ["", "### Attachments by size", ""]
    L += _t(["size", "attachments"], [[b, n] for b, n in inv.attachments_by_size.items()])

    L += ["", "## Mapping", ""]
    migrating = [f for f in mapping.fields if f.target_entity != "none"]
    one = [f for f in migrating if is_one_to_one(f.transform)]
    tr = [f for f in migrating if not is_one_to_one(f.transform)]
    L += [(f"- {len(mapping.objects)} object mappings; {len(migrating)} column mappings: {len(one)} map 1:1, "
          f"{len(tr)} need a transform.")]
    L += ["", "### Needs a transform", ""]
    L += _t(["source", "target", "transform"],
            [[f"{f.source_entity}.{f.source_column}", f"{f.target_entity}.{f.target_field}", f.transform] for f in tr])
    L += ["", "### Hierarchies that will be flattened", ""]
    L += [f"- {h.deeper_than_2} asset(s) below level 2 will be linked to their level-2 ancestor; their full "
          f"lineage is kept in `Asset_Hierarchy__c`." if h.deeper_than_2 else "- none: no asset is deeper than 2"]
    if h.cycles:
        L += [f"- {len(h.cycles)} cycle(s) will be broken at a reported node."]

    L += ["", "## Custom fields to create vs headroom", ""]
    needs = field_needs(mapping)
    rows = []
    new = 0
    for n in needs:
        f = audit.find_field(n.entity, n.name) if audit else None
        state = ("exists" if f is not None else "create") if audit else "create (account not audited)"
        new += 1 if (n.custom and f is None) else 0
        rows.append([n.entity, n.name, n.field_type, state, len(n.options) or ""])
    L += _t(["entity", "field", "type", "action", "options"], rows)
    if audit and audit.custom_field_cap is not None:
        head = audit.headroom or 0
        L += ["", f"- plan **{md_text(audit.plan_key)}**: cap {audit.custom_field_cap} custom fields, "
                  f"{audit.custom_field_count} used, headroom {head}; this mapping creates {new} → "
                  + ("fits." if new <= head else f"**does not fit** ({new - head} too many: provisioning will refuse).")]
    else:
        L += ["", f"- this mapping creates up to {new} custom fields; plan caps: "
                  + ", ".join(f"{k} {v}" for k, v in PLAN_FIELD_CAP.items())]

    L += ["", "## Owners", ""]
    if owners is None:
        L += ["- owner resolution not run"]
    else:
        L += [(f"- {len(owners.matched())} contact(s) matched to a Pipedrive user by email; "
              f"{len(owners.unmatched())} fall back to {md_text(owners.fallback_email)} (user {owners.fallback_user_id}).")]
        if owners.unmatched():
            L += [""] + _t(["contact", "name", "email", "role", "owned by", "reason"],
                           [[r.contact_id, r.name, r.email or "", r.role or "", r.owner_email or r.owner_user_id,
                             r.reason] for r in owners.unmatched()])

    L += ["", "## What will not migrate", ""]
    L += [("- workflow rules, automated routing, PM recurrence as a live schedule, inventory management, custom "
          "form configurations (a rebuild reference is written for each)")]
    over = inv.attachments_by_size.get(SIZE_BANDS[-1][0], 0)
    if over:
        L += [f"- {over} attachment(s) over {file_limit_text()}: " + ("split" if mapping.options.large_file_policy == "split"
                                                         else "flagged for manual handling")]
    un = mapping.unmapped()
    if un:
        L += [f"- nothing loads until these are mapped: {', '.join(md_text(u) for u in un)}"]
    skipped = [f for f in mapping.fields if f.target_entity == "none" and f.transform in ("none",)
               and f.source_entity not in ("user_defined_fields", "deleted")]
    if skipped:
        L += ["", "Columns not migrated:", ""]
        L += _t(["source", "reason"], [[f"{f.source_entity}.{f.source_column}", f.reason] for f in skipped])

    L += archive_section(archive)
    L += ["", "## API requests and token budget", ""]
    L += _t(["entity", "what", "records", "requests", "tokens/request", "tokens"],
            [[r.entity, r.what, r.records, r.requests, r.tokens_per_request, r.tokens] for r in est.rows])
    L += ["", f"- total: **{est.requests:,} requests, {est.tokens:,} tokens**"]
    if est.daily_budget:
        L += [(f"- plan {est.plan} × {est.seats} seats: daily budget {est.daily_budget:,} tokens; keeping a "
              f"{est.reserve:.0%} reserve leaves {est.usable_daily:,} a day → **{est.days:.2f} day(s)** of budget")]
    else:
        L += ["- plan or seats unknown: days of budget cannot be computed"]
    if est.hours is not None:
        L += [f"- burst limit {est.burst_per_2s} requests / 2 s → at least **{est.hours:.2f} hour(s)** of sending"]
    L += calendar_section(run_calendar(profile, mapping, audit, reserve, archive),
                          mapping.record_plan if mapping.approved_by else None)
    return "\n".join(L) + "\n"


__all__ = ["RECORD_PLAN_COSTS", "ArchiveScope", "EstimateRow", "RecordPlanCost", "RequestEstimate", "calendar_section", "complexity",
           "daily_reserve", "estimate_requests", "pm_occurrences", "provisioning_plan", "run_calendar",
           "scope_document", "verification_reads", "without_archive"]
