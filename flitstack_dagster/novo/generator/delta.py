"""A delta bundle against an existing bundle: changed records, new records and deletions.

The base bundle is read, not re-generated: its manifest gives tenant, time zone, encoding and date
order; its CSVs are streamed once to pick the records to change (about CHANGE_RATE of each entity)
and to delete (about DELETE_RATE), and to learn the people, assets, accounts, parts and PM schedules
that new work orders refer to. Everything the delta writes is dated inside
[changed_since = base exported_at, exported_at]: a changed record gets a new Date Modified there, a
changed work order also a status-log entry (and labor when work started); new records continue the
base's ID sequences. Deletions go to deleted.csv.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.novo import columns
from flitstack_dagster.novo.generator import config_files, udfs
from flitstack_dagster.novo.generator.bundle_build import Bundle, Log, Summary, prepare_out, zone
from flitstack_dagster.novo.generator.options import GenOptions, parse_instant
from flitstack_dagster.novo.generator.world import (
    ID_FORMS,
    ORPHAN_ID_BASE,
    Account,
    Asset,
    Contact,
    Department,
    Part,
    PmSchedule,
    World,
)

CHANGE_RATE = 0.05
DELETE_RATE = 0.01
NEW_RATE = 0.02


def scale(opts: GenOptions) -> float:
    """How much smaller (or larger) than the default rates the delta is (`--delta-share`)."""
    return 1.0 if opts.delta_share is None else opts.delta_share / (CHANGE_RATE + NEW_RATE)
DELETED_ENTITY = {"accounts": "Account", "contacts": "Contact", "assets": "Asset", "work_orders": "Work Order",
                  "pm_schedules": "PM Schedule", "attachments": "Attachment"}
NEXT_STATUS = {"New": "Open", "Open": "In Progress", "Scheduled": "In Progress", "In Progress": "Completed",
               "On Hold": "In Progress", "Reassigned": "In Progress", "Awaiting Parts": "In Progress",
               "Pending Approval": "Open", "Completed": "Closed"}
_TRAILING = re.compile(r"(\d+)\s*$")


class Stride:
    """Picks `rate` of the rows, the first within min(expected, 1/rate) rows."""

    def __init__(self, rate: float, rng: random.Random, expected: int):
        self.rate = rate
        window = max(1, min(expected, math.ceil(1 / rate)))
        self.acc = 1 - (int(rng.random() * window) + 0.5) * rate

    def __call__(self) -> bool:
        self.acc += self.rate
        if self.acc >= 1:
            self.acc -= 1
            return True
        return False


def read_manifest(base: Path) -> dict:
    path = base / "manifest.json"
    if not path.is_file():
        raise UserError(f"--delta-from {base}: no manifest.json there (pass the base bundle's folder)")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"--delta-from {base}: manifest.json is not JSON ({e})") from None
    if m.get("format") != "novo-work-order-export" or m.get("format_version") != 1:
        raise UserError(f"--delta-from {base}: not a format-1 Novo export bundle")
    return m


def rows(base: Path, name: str, encoding: str) -> Iterator[dict]:
    path = base / name
    if not path.exists():
        return
    with open(path, encoding=encoding, newline="") as fh:
        yield from csv.DictReader(fh)


def money(text: str | None) -> float | None:
    if not text:
        return None
    t = text.strip().replace("$", "").replace(",", "")
    neg = t.startswith("(") and t.endswith(")")
    try:
        v = float(t.strip("()"))
    except ValueError:
        return None
    return -v if neg else v


def max_number(values: Iterator[str]) -> int:
    best = 0
    for v in values:
        m = _TRAILING.search(v or "")
        if m and int(m.group(1)) < ORPHAN_ID_BASE:  # an orphan id planted by --mess is not the sequence
            best = max(best, int(m.group(1)))
    return best


def generate_delta(opts: GenOptions, log: Log) -> Summary:
    started = time.perf_counter()
    base = Path(opts.delta_from)
    m = read_manifest(base)
    enc, order, tz_name, tenant = m["encoding"], m["date_order"], m["timezone"], m.get("tenant") or opts.tenant
    tz = zone(tz_name)
    since = parse_instant(m["exported_at"])
    exported = parse_instant(opts.exported_at) if opts.exported_at else since + timedelta(days=7)
    if exported <= since:
        raise UserError(f"--exported-at must be after the base bundle's exported_at ({m['exported_at']})")
    if Path(opts.out).resolve() == base.resolve():
        raise UserError("--out must differ from --delta-from")
    root = prepare_out(Path(opts.out), opts.force)
    log(f"generating a delta bundle against {base} (changed since {m['exported_at']}) -> {root}")

    # ID sequences continue after the base's
    starts = {}
    for spec in columns.FILES:
        if spec.entity in ID_FORMS and spec.id_column:
            starts[spec.entity] = max_number(r.get(spec.id_column, "") for r in rows(base, spec.file, enc)) + 1
    lo = (since + timedelta(minutes=2)).replace(second=0, microsecond=0)
    world = World(opts.seed, tz, exported, order, enc, lo=lo, starts=starts)
    r = random.Random(f"{opts.seed}:delta")
    ck = world.clock("delta")
    f = world.fmt("delta")

    def count(name: str) -> int:
        return next((e["rows"] for e in m.get("files", []) if e.get("name") == name), 0)

    n_wo = count("work_orders.csv")
    k_rate = scale(opts)
    expected = {s.file: max(1, int(count(s.file) * CHANGE_RATE * k_rate)) for s in columns.FILES}
    b = Bundle(opts, root, "delta", exported, since, tz, tenant, enc, order, tz_name, expected, world.new_id, log)
    s = b.sinks
    for row in udfs.udf_rows(world.fmt("user_defined_fields")):
        s["user_defined_fields"].write(row)

    def deleted(entity: str, id_: str) -> None:
        s["deleted"].write({"Entity": DELETED_ENTITY[entity], "ID": id_, "Deleted At": f.dt(ck.between())})

    def touch(row: dict, entity: str) -> datetime:
        when = ck.between()
        row["Date Modified"] = f.dt(when)
        row["_modified"] = when
        return when

    def stream(entity: str):
        """(row, action) for each distinct base record: action is 'change', 'delete' or None."""
        spec = columns.BY_ENTITY[entity]
        n = count(spec.file)
        change = Stride(CHANGE_RATE * k_rate, random.Random(f"{opts.seed}:delta:{entity}:change"), n)
        delete = Stride(DELETE_RATE * k_rate, random.Random(f"{opts.seed}:delta:{entity}:delete"), n) \
            if entity in DELETED_ENTITY else None
        seen: set[str] = set()
        for row in rows(base, spec.file, enc):
            key = row.get(spec.id_column, "")
            if not key or key in seen:
                continue
            seen.add(key)
            if delete is not None and delete():
                deleted(entity, key)
                yield row, "delete"
            elif entity != "attachments" and change():
                yield row, "change"
            else:
                yield row, None

    # -- small entities: change, delete, and learn the pools new records refer to -----------------------
    world.departments = [Department(x["Department ID"], x.get("Department Name", ""), x.get("Department Type", ""))
                         for x in rows(base, "departments.csv", enc) if x.get("Department ID")]
    for row, action in stream("accounts"):
        if action == "change":
            row["Phone"] = world.phone(r)
            touch(row, "accounts")
            s["accounts"].write(row)
        if action != "delete":
            world.accounts.append(Account(row["Account ID"], row.get("Account Name", ""), row.get("Account Type", "")))
    for row, action in stream("contacts"):
        if action == "change":
            row["Job Title"] = (row.get("Job Title") or "Technician") + " (promoted)" if r.random() < 0.5 \
                else row.get("Job Title", "")
            row["Phone"] = world.phone(r)
            touch(row, "contacts")
            s["contacts"].write(row)
        if action != "delete":
            role = row.get("Role", "")
            world.contacts.append(Contact(row["Contact ID"], row.get("First Name", ""), row.get("Last Name", ""),
                                          role if role in columns.CONTACT_ROLES else "Requester",
                                          money(row.get("Hourly Rate")), row.get("Account ID", ""),
                                          row.get("Department ID", ""), row.get("Email", "")))
    for row, action in stream("assets"):
        if action == "change":
            row["Status"] = "Inactive" if row.get("Status") == "Active" else "Active"
            row["Last Service Date"] = f.date(ck.between())
            touch(row, "assets")
            s["assets"].write(row)
        if action != "delete":
            world.assets.append(Asset(row["Asset ID"], row.get("Asset Name", ""), row.get("Asset Class", ""), 1,
                                      row.get("Parent Asset ID", ""), row.get("Account ID", ""),
                                      row.get("Department ID", "")))
    for row, action in stream("pm_schedules"):
        if action == "change":
            row["Next Due"] = f.date(ck.between().date() + timedelta(days=30))
            row["Estimated Hours"] = f.num(round(0.5 + r.random() * 6, 1))
            touch(row, "pm_schedules")
            s["pm_schedules"].write(row)
        if action != "delete":
            world.pms.append(PmSchedule(row["PM ID"], row.get("PM Name", ""), row.get("Asset ID", ""),
                                        row.get("Assigned To ID", ""), 1.0))
    for row, action in stream("inventory"):
        if action == "change":
            row["Qty On Hand"] = f.num(int(r.random() * 400))
            touch(row, "inventory")
            s["inventory"].write(row)
        cost = money(row.get("Unit Cost"))
        world.parts.append(Part(row["Part Number"], cost if cost is not None and 0 < cost < 100000 else 10.0))
    _ensure_pools(world)

    # -- work orders: change (with a status-log entry and labor) or delete ----------------------------
    sf, lf = world.fmt("status_log"), world.fmt("labor")
    techs = world.technicians
    for row, action in stream("work_orders"):
        if action != "change":
            continue
        old = row.get("Status", "")
        new = NEXT_STATUS.get(old)
        when = touch(row, "work_orders")
        if new is None:
            others = [p for p in ("High", "Medium", "Low", "Emergency") if p != row.get("Priority")]
            row["Priority"] = others[int(r.random() * len(others))]
            continue_status = False
        else:
            row["Status"] = new
            continue_status = True
            if new == "Completed":
                row["Date Completed"] = f.dt(when)
        s["work_orders"].write(row)
        if continue_status:
            by = row.get("Assigned To ID") or techs[int(r.random() * len(techs))].id
            s["status_log"].write({"Log ID": world.new_id("status_log"), "WO Number": row["WO Number"],
                                   "From Status": old, "To Status": new, "Changed At": sf.dt(when),
                                   "Changed By ID": by, "Comment": "Updated after the last export",
                                   "_modified": when})
            if new in ("In Progress", "Completed"):
                tech = next((c for c in techs if c.id == by), techs[0])
                s["labor"].write({"Labor ID": world.new_id("labor"), "WO Number": row["WO Number"],
                                  "Technician ID": tech.id, "Work Date": lf.date(when), "Start Time": lf.time(when),
                                  "Hours": lf.num(round(0.25 * (1 + int(r.random() * 16)), 2)),
                                  "Rate": lf.money(tech.rate or 45.0), "Labor Type": "Regular",
                                  "Notes": "Follow-up visit", "Date Added": lf.dt(ck.between(when)),
                                  "_modified": when})
    for row, action in stream("attachments"):
        pass  # only deletions; bodies of the base are not repeated

    # -- new records ------------------------------------------------------------------------------------
    def new(n_base: int) -> int:
        return max(2, int(n_base * NEW_RATE * k_rate))

    k = len(world.accounts)
    world.build_accounts(new(count("accounts.csv")))
    world.write_accounts(s["accounts"], world.accounts[k:])
    k = len(world.contacts)
    world.build_contacts(new(count("contacts.csv")))
    world.write_contacts(s["contacts"], world.contacts[k:])
    k = len(world.assets)
    world.build_assets(new(count("assets.csv")))
    new_assets = world.assets[k:]
    world.write_assets(s, new_assets)
    k = len(world.parts)
    world.build_parts(new(count("inventory.csv")))
    world.write_inventory(s, world.parts[k:], new_assets)
    k = len(world.pms)
    world.build_pms(new(count("pm_schedules.csv")))
    world.write_pms(s, world.pms[k:])
    n_new = new(n_wo)
    world.write_work_orders(s, n_new, recent_days=(exported - since).total_seconds() / 86400)
    log(f"  {n_new:,} new work orders, {expected['work_orders.csv']:,} changed (about)")
    rules = config_files.workflow_rules(opts.seed, [d.id for d in world.internal_depts()], [c.id for c in techs])
    return b.finish(rules, config_files.form_configurations(opts.seed), started)


def _ensure_pools(world: World) -> None:
    """A damaged base may lack a kind of record new work orders need: fall back to one made up."""
    if not world.technicians:
        world.contacts.append(Contact(world.new_id("contacts"), "On", "Call", "Technician", 45.0))
    if not world.requesters:
        world.contacts.append(Contact(world.new_id("contacts"), "Front", "Desk", "Requester", None))
    if not world.internal_depts():
        world.departments.append(Department(world.new_id("departments"), "Public Works", "Internal"))
    if not world.assets:
        world.assets.append(Asset(world.new_id("assets"), "City Hall", "Facility", 1))
    if not world.parts:
        world.parts.append(Part(f"HW-{world.next['inventory']():05d}", 10.0))
