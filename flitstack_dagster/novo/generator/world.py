"""The entity model of a synthetic municipal tenant.

Small entities (departments, accounts, contacts, assets, inventory, PM schedules) live in memory as
light objects — at 1,000,000 work orders that is about 80,000 objects. Work orders and everything
hanging off them (labor, parts used, status log, notes, PM history, attachments) are generated one
work order at a time and handed straight to the sinks, so memory stays flat whatever the size.

Every entity draws from its own `random.Random` stream seeded from `seed:name`, so adding a column to
one file does not reshuffle the others.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from flitstack_dagster.novo.generator import bodies, pools, udfs
from flitstack_dagster.novo.generator.fmt import Clock, Fmt

STANDARD_STATUSES = ("New", "Open", "Scheduled", "In Progress", "On Hold", "Reassigned", "Completed", "Closed",
                     "Cancelled")
TENANT_STATUSES = ("Awaiting Parts", "Pending Approval")
ALL_STATUSES = STANDARD_STATUSES + TENANT_STATUSES
STATUS_WEIGHTS = {"New": 7, "Open": 10, "Scheduled": 7, "In Progress": 8, "On Hold": 4, "Reassigned": 3,
                  "Completed": 15, "Closed": 33, "Cancelled": 5, "Awaiting Parts": 5, "Pending Approval": 3}
PRIORITIES = ("Emergency", "High", "Medium", "Low", "")
PRIORITY_WEIGHTS = (5, 20, 40, 20, 15)
REQUEST_TYPES = ("Corrective", "Preventive", "Service Request", "Inspection")
REQUEST_WEIGHTS = (50, 20, 20, 10)
SOURCES = ("Web", "Email", "Phone", "Walk-in")
SOURCE_WEIGHTS = (40, 20, 30, 10)
WORKED = {"In Progress", "On Hold", "Completed", "Closed", "Awaiting Parts"}
ENTRY_TYPES = ("Note", "Call", "Email", "Meeting")

RRULES = ("FREQ=MONTHLY;BYDAY=1MO", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "FREQ=DAILY",
          "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=1", "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=WEEKLY;BYDAY=FR",
          "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1", "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR")
PHRASES = ("Every 2 weeks on Monday", "Monthly on day 15", "Every 3 months", "Every day", "Weekly on Friday",
           "Every 6 months", "Every 2 weeks on Monday and Thursday", "Monthly on day 1", "Every year",
           "Every 10 days")
FREQUENCIES = ("Daily", "Weekly", "Monthly", "Yearly")
RECURRENCE_STYLES = ("rrule", "frequency", "phrase", "meter")
PM_HEAD = (("rrule", 0), ("phrase", 0), ("frequency", 2), ("meter", 0), ("rrule", 1), ("phrase", 1),
           ("phrase", 2), ("frequency", 1), ("rrule", 2), ("meter", 0))


class Sink(Protocol):
    def write(self, row: dict) -> None: ...


def weighted(values, weights) -> Callable[[float], object]:
    """A picker: u in [0, 1) -> value, by cumulative weights."""
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights:
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0
    vals = tuple(values)

    def pick(u: float):
        for v, c in zip(vals, cum):
            if u < c:
                return v
        return vals[-1]

    return pick


# -- the entities kept in memory --------------------------------------------------------------
@dataclass(slots=True)
class Department:
    id: str
    name: str
    type: str


@dataclass(slots=True)
class Account:
    id: str
    name: str
    type: str
    dept: str = ""
    domain: str = "example.com"


@dataclass(slots=True)
class Contact:
    id: str
    first: str
    last: str
    role: str
    rate: float | None
    account: str = ""
    dept: str = ""
    email: str = ""

    @property
    def is_tech(self) -> bool:
        return self.role != "Requester"

    @property
    def is_requester(self) -> bool:
        return self.role != "Technician"


@dataclass(slots=True)
class Asset:
    id: str
    name: str
    cls: str
    depth: int
    parent: str = ""
    account: str = ""
    dept: str = ""
    address: str = ""
    children: list = field(default_factory=list)


@dataclass(slots=True)
class Part:
    number: str
    cost: float


@dataclass(slots=True)
class PmSchedule:
    id: str
    name: str
    asset: str
    tech: str
    hours: float


# -- ids --------------------------------------------------------------------------------------
def dept_id(i: int) -> str:
    return f"D{i:02d}"


def account_id(i: int) -> str:
    return f"A-{i:04d}"


def contact_id(i: int) -> str:
    return f"C{i:05d}"


def asset_id(i: int) -> str:
    return f"{i:05d}"


def wo_number(i: int) -> str:
    return f"WO-{i:06d}"


def pm_id(i: int) -> str:
    return f"PM-{i:04d}"


ID_FORMS = {"departments": dept_id, "accounts": account_id, "contacts": contact_id, "assets": asset_id,
            "work_orders": wo_number, "pm_schedules": pm_id,
            "labor": lambda i: str(100000 + i), "parts_used": lambda i: f"{i:07d}",
            "status_log": lambda i: f"SL{i:08d}", "notes": lambda i: f"N-{i}",
            "pm_history": lambda i: f"PME-{i:06d}", "attachments": lambda i: f"ATT-{i:06d}",
            "inventory": lambda i: f"ZZ-{i:05d}"}


# ids planted by --mess as orphan references start here, far past any generated sequence
ORPHAN_ID_BASE = 90_000_000


class Counter:
    def __init__(self, start: int = 1):
        self.n = start - 1

    def __call__(self) -> int:
        self.n += 1
        return self.n


class World:
    """Generates the tenant's records; `write_*` methods hand finished rows (dicts) to sinks."""

    def __init__(self, seed: int, tz: ZoneInfo, exported_at: datetime, date_order: str, encoding: str,
                 lo: datetime | None = None, starts: dict[str, int] | None = None):
        self.seed = seed
        self.tz = tz
        self.exported_at = exported_at
        self.date_order = date_order
        self.encoding = encoding
        self.unicode_ok = encoding != "cp1252"
        self.lo = lo or exported_at - timedelta(days=3 * 365)
        self.hi = exported_at - timedelta(minutes=5)
        self.today = exported_at.astimezone(tz).date()
        starts = starts or {}
        self.next = {k: Counter(starts.get(k, 1)) for k in ID_FORMS}
        self.departments: list[Department] = []
        self.accounts: list[Account] = []
        self.contacts: list[Contact] = []
        self.assets: list[Asset] = []
        self.parts: list[Part] = []
        self.pms: list[PmSchedule] = []
        self.streets = [f"{n} {s}" for n in (100, 250, 410, 1200, 77, 3030) for s in pools.STREETS]

    # -- helpers --------------------------------------------------------------------------------
    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def fmt(self, name: str) -> Fmt:
        return Fmt(self.rng(f"{name}:fmt"), self.date_order, self.tz)

    def clock(self, name: str) -> Clock:
        return Clock(self.rng(f"{name}:clock"), self.tz, self.lo, self.hi)

    def new_id(self, entity: str) -> str:
        return ID_FORMS[entity](self.next[entity]())

    @property
    def technicians(self) -> list[Contact]:
        return [c for c in self.contacts if c.is_tech]

    @property
    def requesters(self) -> list[Contact]:
        return [c for c in self.contacts if c.is_requester]

    def pick_name(self, r: random.Random, ascii_pool, latin_pool, unicode_pool=()) -> str:
        u = r.random()
        if u < 0.05 and unicode_pool and self.unicode_ok:
            return unicode_pool[int(r.random() * len(unicode_pool))]
        if u < 0.12:
            return latin_pool[int(r.random() * len(latin_pool))]
        return ascii_pool[int(r.random() * len(ascii_pool))]

    def phone(self, r: random.Random) -> str:
        a, b = 200 + int(r.random() * 800), int(r.random() * 10000)
        u = r.random()
        if u < 0.4:
            return f"(217) 555-{b:04d}"
        if u < 0.7:
            return f"217-555-{b:04d}"
        if u < 0.85:
            return f"+1 217 {a} {b:04d}"
        return f"217.{a}.{b:04d} x{int(r.random() * 900) + 100}"

    def address(self, r: random.Random) -> tuple[str, str, str, str]:
        city, state, zip3 = pools.CITIES[int(r.random() * len(pools.CITIES))]
        street = self.streets[int(r.random() * len(self.streets))]
        return street, city, state, f"{zip3}{int(r.random() * 100):02d}"

    # -- small entities -----------------------------------------------------------------------------
    def build(self, counts) -> None:
        self.build_departments()
        self.build_accounts(counts.accounts)
        self.build_contacts(counts.contacts)
        self.build_assets(counts.assets)
        self.build_parts(counts.inventory)
        self.build_pms(counts.pm_schedules)

    def build_departments(self) -> None:
        for name in pools.INTERNAL_DEPARTMENTS:
            self.departments.append(Department(self.new_id("departments"), name, "Internal"))
        for name in pools.CUSTOMER_DEPARTMENTS:
            self.departments.append(Department(self.new_id("departments"), name, "Customer"))

    def internal_depts(self) -> list[Department]:
        return [d for d in self.departments if d.type == "Internal"]

    def build_accounts(self, n: int) -> None:
        r = self.rng("accounts")
        cust_depts = [d for d in self.departments if d.type == "Customer"]
        internal = self.internal_depts()
        # Fixed head so small tenants still hold every type and a shared name (Springfield ISD).
        head = [("Customer", "Springfield ISD"), ("Vendor", "Springfield ISD"), ("Supplier", "Grainger"),
                ("Internal", "City of Springfield – Public Works"), ("Customer", "Springfield County"),
                ("Vendor", "Acme Mechanical, Inc."), ("Supplier", "Ferguson Waterworks")]
        for i in range(n):
            if i < len(head):
                typ, name = head[i]
            else:
                u = r.random()
                typ = "Customer" if u < 0.45 else "Vendor" if u < 0.75 else "Supplier" if u < 0.92 else "Internal"
                pool = {"Customer": pools.CUSTOMER_ACCOUNTS, "Vendor": pools.VENDOR_ACCOUNTS,
                        "Supplier": pools.SUPPLIER_ACCOUNTS}.get(typ)
                if pool is None:
                    name = f"City of Springfield – {internal[int(r.random() * len(internal))].name}"
                else:
                    name = pool[int(r.random() * len(pool))]
                    if r.random() < 0.5 and i >= 40:  # big tenants: branches, some names still shared
                        name = f"{name} ({pools.CITIES[int(r.random() * len(pools.CITIES))][0]})"
            dept = ""
            if typ == "Customer" and r.random() < 0.5:
                dept = cust_depts[int(r.random() * len(cust_depts))].id
            elif typ == "Internal":
                dept = internal[int(r.random() * len(internal))].id
            domain = "".join(ch for ch in name.lower().split("(")[0] if ch.isalnum())[:20] + ".com"
            self.accounts.append(Account(self.new_id("accounts"), name, typ, dept, domain))

    def customers(self) -> list[Account]:
        return [a for a in self.accounts if a.type == "Customer"]

    def build_contacts(self, n: int) -> None:
        r = self.rng("contacts")
        internal = self.internal_depts()
        customers = self.customers()
        for i in range(n):
            role = ("Technician", "Requester", "Technician/Requester")[i] if i < 3 else \
                ("Technician" if (u := r.random()) < 0.4 else "Requester" if u < 0.85 else "Technician/Requester")
            first = self.pick_name(r, pools.FIRST_NAMES, pools.FIRST_NAMES_LATIN1)
            last = self.pick_name(r, pools.LAST_NAMES, pools.LAST_NAMES_LATIN1, pools.LAST_NAMES_UNICODE)
            u = r.random()
            if u < 0.03:
                first = ""
            elif u < 0.05:
                last = ""
            c = Contact(self.new_id("contacts"), first, last, role, None)
            if c.is_tech:
                c.rate = round(28 + r.random() * 47, 2)
                c.dept = internal[int(r.random() * len(internal))].id
            else:
                if customers and r.random() < 0.5:
                    c.account = customers[int(r.random() * len(customers))].id
                if r.random() < 0.4:
                    c.dept = self.departments[int(r.random() * len(self.departments))].id
            local = ".".join(p for p in (first, last) if p).lower().replace(" ", "").replace("'", "")
            local = local.encode("ascii", "ignore").decode() or f"user{i}"
            domain = "springfield.gov" if c.is_tech else pools.EMAIL_DOMAINS[int(r.random() * 5)]
            email = f"{local}@{domain}"
            u = r.random()
            if u < 0.07:
                email = ""
            elif u < 0.11:
                email = email.upper()
            elif u < 0.14:
                email = f"  {email} "
            elif u < 0.17 and self.contacts:
                email = self.contacts[-1].email or "dispatch@springfield.gov"  # a shared mailbox
            c.email = email
            self.contacts.append(c)

    def build_assets(self, n: int) -> None:
        r = self.rng("assets")
        internal = self.internal_depts()
        customers = self.customers()
        depth_pick = weighted((1, 2, 3, 4, 5), (15, 20, 30, 20, 15))
        tree = 0
        n = len(self.assets) + n  # n more
        while len(self.assets) < n:
            max_depth = tree + 1 if tree < 5 else depth_pick(r.random())
            tree += 1
            account = customers[int(r.random() * len(customers))].id if customers and r.random() < 0.3 else ""
            street, city, state, zip_ = self.address(r)
            addr = f"{street}, {city}, {state} {zip_}"
            if max_depth == 1:
                u = r.random()
                if u < 0.4:
                    name, _ = pools.VEHICLES[int(r.random() * len(pools.VEHICLES))]
                    cls = "Vehicle"
                elif u < 0.8:
                    name, cls = pools.INFRASTRUCTURE[int(r.random() * len(pools.INFRASTRUCTURE))], "Infrastructure"
                else:
                    name, cls = pools.LOCATIONS[int(r.random() * len(pools.LOCATIONS))], "Location"
                self._add_asset(r, name, cls, 1, None, account, internal, addr)
                continue
            root = self._add_asset(r, pools.LOCATIONS[int(r.random() * len(pools.LOCATIONS))], "Location", 1,
                                   None, account, internal, addr)
            self._grow(r, root, max_depth, n, account, internal, addr)

    def _add_asset(self, r, name, cls, depth, parent, account, internal, addr) -> Asset:
        if r.random() < 0.1:
            name = f"{name} #{int(r.random() * 40) + 1}"
        a = Asset(self.new_id("assets"), name, cls, depth, parent.id if parent else "", account,
                  internal[int(r.random() * len(internal))].id if r.random() < 0.85 else "",
                  addr if depth <= 2 else "")
        if parent is not None:
            parent.children.append(a.id)
        self.assets.append(a)
        return a

    def _grow(self, r, node: Asset, max_depth: int, n: int, account, internal, addr) -> None:
        if node.depth >= max_depth:
            return
        level = node.depth + 1
        kids = 1 + int(r.random() * (3 if level <= 3 else 2))
        for k in range(kids):
            if len(self.assets) >= n and k > 0:
                return
            if level == 2:
                if r.random() < 0.15:
                    name, _ = pools.VEHICLES[int(r.random() * len(pools.VEHICLES))]
                    cls = "Vehicle"
                else:
                    name, cls = pools.FACILITIES[int(r.random() * len(pools.FACILITIES))], "Facility"
            elif level == 3:
                name = pools.EQUIPMENT[int(r.random() * len(pools.EQUIPMENT))][0]
                cls = "Equipment" if r.random() < 0.9 else "Infrastructure"
            elif level == 4:
                name, cls = pools.COMPONENTS[int(r.random() * len(pools.COMPONENTS))], "Equipment"
            else:
                name, cls = pools.SUBCOMPONENTS[int(r.random() * len(pools.SUBCOMPONENTS))], "Equipment"
            child = self._add_asset(r, name, cls, level, node, account, internal, addr)
            # the first child always goes down to max_depth, so each tree reaches its depth
            if k == 0 or r.random() < 0.5:
                self._grow(r, child, max_depth, n, account, internal, addr)

    def build_parts(self, n: int) -> None:
        r = self.rng("inventory")
        for i in range(n):
            _cat, prefix, _ = pools.PART_CATEGORIES[int(r.random() * len(pools.PART_CATEGORIES))]
            number = f"{prefix}-{self.next['inventory']():05d}"
            self.parts.append(Part(number, round(0.5 + r.random() ** 2 * 900, 2)))

    def build_pms(self, n: int) -> None:
        r = self.rng("pm_schedules")
        equipment = [a for a in self.assets if a.cls in ("Equipment", "Facility", "Vehicle")] or self.assets
        techs = self.technicians
        for i in range(n):
            asset = equipment[int(r.random() * len(equipment))]
            name = f"{pools.PM_NAMES[int(r.random() * len(pools.PM_NAMES))]} – {asset.name}"
            self.pms.append(PmSchedule(self.new_id("pm_schedules"), name, asset.id,
                                       techs[int(r.random() * len(techs))].id, round(0.5 + r.random() * 6, 1)))

    # -- writing the small entities -------------------------------------------------------------
    def write_departments(self, sink: Sink) -> None:
        f = self.fmt("departments")
        for d in self.departments:
            sink.write({"Department ID": d.id, "Department Name": d.name, "Department Type": d.type,
                        "Active": f.yesno(f.r() < 0.93)})

    def added_modified(self, ck: Clock, f: Fmt, row: dict) -> datetime:
        added = ck.between()
        modified = ck.between(added) if f.r() < 0.7 else added
        row["Date Added"] = f.dt(added)
        row["Date Modified"] = f.dt(modified)
        row["_modified"] = modified
        return added

    def write_accounts(self, sink: Sink, items: list[Account] | None = None) -> None:
        f, ck, r = self.fmt("accounts"), self.clock("accounts"), self.rng("accounts:rows")
        mine = udfs.for_entity("Account")
        for a in self.accounts if items is None else items:
            street, city, state, zip_ = self.address(r)
            row = {"Account ID": a.id, "Account Name": a.name, "Account Type": a.type, "Department ID": a.dept,
                   "Address": street, "City": city, "State": state, "Zip": zip_, "Phone": self.phone(r),
                   "Email": ("billing@" + a.domain) if r.random() < 0.85 else ""}
            self.added_modified(ck, f, row)
            udfs.fill(row, mine, f, self.today)
            sink.write(row)

    def write_contacts(self, sink: Sink, items: list[Contact] | None = None) -> None:
        f, ck, r = self.fmt("contacts"), self.clock("contacts"), self.rng("contacts:rows")
        mine = udfs.for_entity("Contact")
        for c in self.contacts if items is None else items:
            titles = pools.JOB_TITLES_TECH if c.is_tech else pools.JOB_TITLES_REQ
            row = {"Contact ID": c.id, "First Name": c.first, "Last Name": c.last, "Email": c.email,
                   "Phone": self.phone(r), "Mobile": self.phone(r) if r.random() < 0.5 else "", "Role": c.role,
                   "Department ID": c.dept, "Account ID": c.account,
                   "Job Title": titles[int(r.random() * len(titles))],
                   "Hourly Rate": f.money(c.rate) if c.rate is not None else "",
                   "Active": f.yesno(r.random() < 0.9)}
            self.added_modified(ck, f, row)
            udfs.fill(row, mine, f, self.today)
            sink.write(row)

    def write_assets(self, sinks: dict[str, Sink], items: list[Asset] | None = None) -> None:
        f, ck, r = self.fmt("assets"), self.clock("assets"), self.rng("assets:rows")
        mine = udfs.for_entity("Asset")
        techs = self.technicians
        notes, attachments = sinks["notes"], sinks["attachments"]
        nf, af = self.fmt("notes:asset"), self.fmt("attachments:asset")
        for a in self.assets if items is None else items:
            manu, model, serial = "", "", ""
            if a.cls in ("Equipment", "Vehicle"):
                for nm, mk in pools.EQUIPMENT + pools.VEHICLES:
                    if a.name.startswith(nm):
                        manu = mk
                        break
                else:
                    manu = ("Grundfos", "Siemens", "Honeywell", "Baldor")[int(r.random() * 4)]
                model = f"{manu[:2].upper()}-{int(r.random() * 9000) + 1000}" if manu else ""
                serial = f"SN{int(r.random() * 10**9):09d}"
            install = self.today - timedelta(days=int(r.random() * 12000) + 30)
            last_service = install + timedelta(days=int(r.random() * max(1, (self.today - install).days)))
            u = r.random()
            row = {"Asset ID": a.id, "Asset Name": a.name, "Asset Class": a.cls, "Parent Asset ID": a.parent,
                   "Account ID": a.account, "Department ID": a.dept, "Serial Number": serial,
                   "Manufacturer": manu, "Model": model, "Install Date": f.date(install),
                   "Last Service Date": f.date(last_service) if r.random() < 0.7 else "",
                   "Status": "Active" if u < 0.85 else "Inactive" if u < 0.95 else "Retired",
                   "Address": a.address,
                   "Latitude": f.num(round(39.78 + (r.random() - 0.5) * 0.2, 6), 6),
                   "Longitude": f.num(round(-89.65 + (r.random() - 0.5) * 0.2, 6), 6),
                   "_children": a.children, "_depth": a.depth}
            added = self.added_modified(ck, f, row)
            udfs.fill(row, mine, f, self.today)
            sink_row = row
            sinks["assets"].write(sink_row)
            if r.random() < 0.2:
                self.write_note(notes, nf, ck, "", a.id, added, None, techs)
            if r.random() < 0.05:
                self.write_attachments(attachments, af, ck, "Asset", a.id, added, techs, 1)

    def write_inventory(self, sinks: dict[str, Sink], parts: list[Part] | None = None,
                        assets: list[Asset] | None = None) -> None:
        f, ck, r = self.fmt("inventory"), self.clock("inventory"), self.rng("inventory:rows")
        suppliers = [a for a in self.accounts if a.type in ("Supplier", "Vendor")]
        stores = [a for a in self.assets if a.cls == "Facility"] or self.assets
        for p in self.parts if parts is None else parts:
            cat, _, units = next(c for c in pools.PART_CATEGORIES if c[1] == p.number.split("-")[0])
            row = {"Part Number": p.number, "Description": pools.PART_WORDS[int(r.random() * len(pools.PART_WORDS))],
                   "Category": cat, "Unit": units[int(r.random() * len(units))], "Unit Cost": f.money(p.cost),
                   "Qty On Hand": f.num(int(r.random() ** 2 * 2500)), "Reorder Point": f.num(int(r.random() * 50)),
                   "Vendor Account ID": suppliers[int(r.random() * len(suppliers))].id if r.random() < 0.8 else "",
                   "Storeroom Asset ID": stores[int(r.random() * len(stores))].id if r.random() < 0.7 else ""}
            m = ck.between()
            row["Date Modified"] = f.dt(m)
            row["_modified"] = m
            sinks["inventory"].write(row)
        ap = sinks["asset_parts"]
        for a in self.assets if assets is None else assets:
            if a.cls == "Equipment" and r.random() < 0.4:
                for k in sorted({int(r.random() * len(self.parts)) for _ in range(1 + int(r.random() * 3))}):
                    ap.write({"Asset ID": a.id, "Part Number": self.parts[k].number,
                              "Qty Required": f.num(1 + int(r.random() * 6))})

    def write_pms(self, sinks: dict[str, Sink], items: list[PmSchedule] | None = None) -> None:
        f, ck, r = self.fmt("pm_schedules"), self.clock("pm_schedules"), self.rng("pm_schedules:rows")
        hist, hf = sinks["pm_history"], self.fmt("pm_history")
        techs = self.technicians
        for i, pm in enumerate(self.pms if items is None else items):
            # the first ten cover every style and the documented examples; then at random
            style, which = PM_HEAD[i] if i < len(PM_HEAD) else (RECURRENCE_STYLES[int(r.random() * 4)], -1)
            row = {"PM ID": pm.id, "PM Name": pm.name, "Asset ID": pm.asset, "Trigger": "Date",
                   "Frequency": "", "Every": "", "Recurrence Rule": "", "Meter Name": "", "Meter Interval": "",
                   "Last Meter Reading": "", "Assigned To ID": pm.tech, "Estimated Hours": f.num(pm.hours),
                   "_style": style}
            if style == "rrule":
                row["Recurrence Rule"] = RRULES[which] if which >= 0 else RRULES[int(r.random() * len(RRULES))]
                if r.random() < 0.3:  # stale Frequency/Every left behind; the rule wins
                    row["Frequency"], row["Every"] = "Monthly", "1"
            elif style == "phrase":
                row["Recurrence Rule"] = PHRASES[which] if which >= 0 else PHRASES[int(r.random() * len(PHRASES))]
            elif style == "frequency":
                row["Frequency"] = FREQUENCIES[which] if which >= 0 else FREQUENCIES[int(r.random() * 4)]
                row["Every"] = f.num(1 + int(r.random() * 3) if row["Frequency"] != "Daily" else 1)
            else:
                row["Trigger"] = "Meter"
                meter = ("Hours", "Miles", "Cycles")[int(r.random() * 3)]
                interval = {"Hours": 250, "Miles": 3000, "Cycles": 1000}[meter] * (1 + int(r.random() * 4))
                row["Meter Name"], row["Meter Interval"] = meter, f.num(interval)
                row["Last Meter Reading"] = f.num(round(r.random() * 90000, 1))
            start = self.today - timedelta(days=int(r.random() * 1000) + 20)
            row["Start Date"] = f.date(start)
            row["End Date"] = f.date(self.today + timedelta(days=int(r.random() * 1400) - 200)) \
                if r.random() < 0.25 else ""
            row["Next Due"] = f.date(self.today + timedelta(days=int(r.random() * 90)))
            steps = [pools.PROCEDURE_STEPS[int(r.random() * len(pools.PROCEDURE_STEPS))]
                     for _ in range(3 + int(r.random() * 4))]
            row["Procedure"] = "\n".join(f"{k}. {s}" for k, s in enumerate(steps, 1))
            row["Active"] = f.yesno(r.random() < 0.9)
            self.added_modified(ck, f, row)
            sinks["pm_schedules"].write(row)
            for _ in range(int(r.random() * 5)):
                due = start + timedelta(days=int(r.random() * max(1, (self.today - start).days)))
                done = datetime(due.year, due.month, due.day, 6 + int(r.random() * 12), int(r.random() * 60))
                self.write_pm_event(hist, hf, ck, pm, "", due, ck.fix(done), techs[int(r.random() * len(techs))].id,
                                    style == "meter")

    def write_pm_event(self, sink, f: Fmt, ck: Clock, pm: PmSchedule, wo: str, due: date, done: datetime,
                       by: str, meter: bool) -> None:
        u = f.r()
        sink.write({"PM Event ID": self.new_id("pm_history"), "PM ID": pm.id, "WO Number": wo,
                    "Due Date": f.date(due), "Completed Date": f.dt(done), "Completed By ID": by,
                    "Meter Reading": f.num(round(f.r() * 90000, 1)) if meter else "",
                    "Result": "Pass" if u < 0.8 else "Fail" if u < 0.92 else "Deferred",
                    "Notes": "" if f.r() < 0.6 else pools.LABOR_NOTES[int(f.r() * len(pools.LABOR_NOTES))],
                    "_modified": done})

    # -- children -------------------------------------------------------------------------------
    def write_note(self, sink, f: Fmt, ck: Clock, wo: str, asset: str, after: datetime, before: datetime | None,
                   techs) -> None:
        r = f.r
        logged = ck.between(after, before)
        body = pools.NOTE_BODIES[int(r() * len(pools.NOTE_BODIES))]
        if r() < 0.2:
            body += "\n" + pools.DESCRIPTION_SENTENCES[int(r() * len(pools.DESCRIPTION_SENTENCES))]
        sink.write({"Note ID": self.new_id("notes"), "WO Number": wo, "Asset ID": asset,
                    "Entry Type": ENTRY_TYPES[int(r() * 4)],
                    "Subject": pools.NOTE_SUBJECTS[int(r() * len(pools.NOTE_SUBJECTS))], "Body": body,
                    "Internal": f.yesno(r() < 0.4), "Logged At": f.dt(logged),
                    "Logged By ID": techs[int(r() * len(techs))].id, "_modified": logged})

    def attachment_name(self, r) -> tuple[str, str]:
        u = r()
        if u < 0.05 and self.unicode_ok:
            base, ext = pools.ATTACHMENT_BASES_UNICODE[int(r() * len(pools.ATTACHMENT_BASES_UNICODE))]
        elif u < 0.15:
            base, ext = pools.ATTACHMENT_BASES_LATIN1[int(r() * len(pools.ATTACHMENT_BASES_LATIN1))]
        else:
            base, ext = pools.ATTACHMENT_BASES[int(r() * len(pools.ATTACHMENT_BASES))]
        return base, ext

    def write_attachments(self, sink, f: Fmt, ck: Clock, parent_type: str, parent: str, after: datetime,
                          techs, k: int, before: datetime | None = None) -> None:
        r = f.r
        used = set()
        for j in range(k):
            base, ext = self.attachment_name(r)
            name = f"{base} {j + 1}.{ext}" if (base, ext) in used or r() < 0.3 else f"{base}.{ext}"
            used.add((base, ext))
            aid = self.new_id("attachments")
            n = int(aid.split("-")[1])
            data = bodies.body(ext, n, base)
            path = f"files/{parent}/{name}"
            up = ck.between(after, before)
            sink.write({"Attachment ID": aid, "Parent Type": parent_type, "Parent ID": parent, "File Name": name,
                        "Bundle Path": path, "Size": str(len(data)), "Content Type": bodies.CONTENT_TYPES[ext],
                        "SHA-256": hashlib.sha256(data).hexdigest(), "Uploaded At": f.dt(up),
                        "Uploaded By ID": techs[int(r() * len(techs))].id,
                        "Description": "" if r() < 0.5 else f"{base} uploaded from the field app",
                        "_body": data, "_body_path": path, "_modified": up})

    # -- work orders -----------------------------------------------------------------------------
    def status_path(self, status: str, r) -> list[str]:
        maybe = lambda p, s: [s] if r() < p else []
        if status == "New":
            return ["New"]
        if status == "Open":
            return ["New", "Open"]
        if status == "Scheduled":
            return ["New", "Open", "Scheduled"]
        if status == "In Progress":
            return ["New", "Open", *maybe(0.6, "Scheduled"), "In Progress"]
        if status in ("On Hold", "Awaiting Parts"):
            return ["New", "Open", "In Progress", status]
        if status == "Reassigned":
            return ["New", "Open", *maybe(0.5, "Scheduled"), "Reassigned"]
        if status == "Pending Approval":
            return ["New", "Pending Approval"]
        if status == "Cancelled":
            return ["New", *maybe(0.5, "Open"), "Cancelled"]
        mid = ["On Hold", "In Progress"] if r() < 0.15 else []
        path = ["New", "Open", *maybe(0.5, "Scheduled"), "In Progress", *mid, "Completed"]
        return path + ["Closed"] if status == "Closed" else path

    def write_work_orders(self, sinks: dict[str, Sink], count: int, progress: Callable[[int], None] | None = None,
                          recent_days: float | None = None) -> None:
        r = self.rng("work_orders").random
        f = self.fmt("work_orders")
        ck = self.clock("work_orders")
        lf, pf, sf, nf, af, hf = (self.fmt(n) for n in ("labor", "parts_used", "status_log", "notes",
                                                        "attachments", "pm_history"))
        wo_s, lab_s, part_s, st_s, note_s, att_s, hist_s = (sinks[n] for n in (
            "work_orders", "labor", "parts_used", "status_log", "notes", "attachments", "pm_history"))
        techs, reqs = self.technicians, self.requesters
        assets, customers, depts = self.assets, self.customers(), self.internal_depts()
        pms, parts = self.pms, self.parts
        nt, nr, na = len(techs), len(reqs), len(assets)
        by_id = {a.id: a for a in assets}
        pick_status = weighted(STATUS_WEIGHTS, STATUS_WEIGHTS.values())
        pick_prio = weighted(PRIORITIES, PRIORITY_WEIGHTS)
        pick_type = weighted(REQUEST_TYPES, REQUEST_WEIGHTS)
        pick_source = weighted(SOURCES, SOURCE_WEIGHTS)
        mine = udfs.for_entity("Work Order")
        open_window = timedelta(days=75)
        step = max(1, count // 10)
        sentences = pools.DESCRIPTION_SENTENCES
        lo_recent = ck.hi - timedelta(days=recent_days) if recent_days else None
        for i in range(count):
            if progress and i and i % step == 0:
                progress(i)
            wo = self.new_id("work_orders")
            status = ALL_STATUSES[i] if i < len(ALL_STATUSES) else pick_status(r())
            prio = PRIORITIES[i % 5] if i < 20 else pick_prio(r())
            rtype = REQUEST_TYPES[i % 4] if i < 20 else pick_type(r())
            source = SOURCES[i % 4] if i < 20 else pick_source(r())
            if lo_recent is not None:
                requested = ck.between(lo_recent)
            elif status in ("Completed", "Closed", "Cancelled"):
                requested = ck.between()
            else:
                requested = ck.between(ck.hi - open_window)
            pm = None
            if rtype == "Preventive" and pms and r() < 0.7:
                pm = pms[int(r() * len(pms))]
                asset = by_id.get(pm.asset)
                asset_id = pm.asset
                asset_account = asset.account if asset else ""
            elif r() < 0.8:
                a = assets[int(r() * na)]
                asset_id, asset_account = a.id, a.account
            else:
                asset_id, asset_account = "", ""
            account = asset_account or (customers[int(r() * len(customers))].id
                                        if customers and r() < 0.15 else "")
            tech = techs[int(r() * nt)]
            place = pools.FACILITIES[int(r() * len(pools.FACILITIES))]
            title = pools.WO_TITLES[int(r() * len(pools.WO_TITLES))].format(
                place=place, street=self.streets[int(r() * len(self.streets))],
                asset=pools.EQUIPMENT[int(r() * len(pools.EQUIPMENT))][0])
            if pm is not None:
                title = f"PM: {pm.name}"
            u = r()
            if u < 0.15:
                desc = ""
            else:
                desc = (" " if u < 0.7 else "\n").join(sentences[int(r() * len(sentences))]
                                                      for _ in range(1 + int(r() * 4)))
            # the status log: times climb from the request to the last change
            path = self.status_path(status, r)
            t = requested
            changes = []
            for s in path:
                changes.append((s, t))
                t = ck.fix(min(ck.hi, t + timedelta(hours=1 + r() * 96)))
            last = changes[-1][1]
            completed = next((tm for s, tm in changes if s == "Completed"), None)
            started = next((tm for s, tm in changes if s == "In Progress"), requested)
            modified = ck.between(last, last + timedelta(days=2)) if r() < 0.3 else last
            req_day = requested.date()
            row = {"WO Number": wo, "Title": title, "Description": desc, "Status": status, "Priority": prio,
                   "Request Type": rtype, "Requester ID": reqs[int(r() * nr)].id,
                   "Assigned To ID": "" if status in ("New", "Pending Approval") else tech.id,
                   "Asset ID": asset_id, "Account ID": account,
                   "Department ID": depts[int(r() * len(depts))].id if r() < 0.9 else "",
                   "Date Requested": f.dt(requested),
                   "Date Scheduled": f.date(req_day + timedelta(days=int(r() * 14)))
                   if "Scheduled" in path else "",
                   "Due Date": f.date(req_day + timedelta(days=1 + int(r() * 30))) if r() < 0.8 else "",
                   "Date Completed": f.dt(completed) if completed else "",
                   "Estimated Hours": f.num(round(0.5 + r() * 15.5, 1)) if r() < 0.8 else "",
                   "PM Schedule ID": pm.id if pm else "", "Source": source,
                   "Date Added": f.dt(ck.fix(requested + timedelta(minutes=int(r() * 20)))),
                   "Date Modified": f.dt(modified), "_modified": modified}
            udfs.fill(row, mine, f, self.today)
            wo_s.write(row)
            prev = ""
            for s, tm in changes:
                st_s.write({"Log ID": self.new_id("status_log"), "WO Number": wo, "From Status": prev,
                            "To Status": s, "Changed At": sf.dt(tm),
                            "Changed By ID": (tech.id if r() < 0.7 else reqs[int(r() * nr)].id),
                            "Comment": pools.STATUS_COMMENTS[int(r() * len(pools.STATUS_COMMENTS))],
                            "_modified": tm})
                prev = s
            if status in WORKED:
                end = completed or last
                for _ in range(2 + int(r() * 6)):
                    who = tech if r() < 0.75 else techs[int(r() * nt)]
                    work = ck.between(started, end)
                    u = r()
                    ltype = "Regular" if u < 0.8 else "Overtime" if u < 0.93 else "Contractor"
                    rate = (who.rate or 45.0) * (1.5 if ltype == "Overtime" else 1.0)
                    if ltype == "Contractor":
                        rate = 95.0 + int(r() * 60)
                    lab_s.write({"Labor ID": self.new_id("labor"), "WO Number": wo, "Technician ID": who.id,
                                 "Work Date": lf.date(work), "Start Time": lf.time(work) if r() < 0.8 else "",
                                 "Hours": lf.num(round(0.25 * (1 + int(r() * 32)), 2)),
                                 "Rate": lf.money(round(rate, 2)), "Labor Type": ltype,
                                 "Notes": pools.LABOR_NOTES[int(r() * len(pools.LABOR_NOTES))],
                                 "Date Added": lf.dt(ck.after(work, 3)), "_modified": work})
                for _ in range(int(r() * 4)):
                    p = parts[int(r() * len(parts))]
                    used = ck.between(started, end)
                    cost = -p.cost if r() < 0.01 else p.cost  # a rare vendor credit
                    part_s.write({"Line ID": self.new_id("parts_used"), "WO Number": wo, "Part Number": p.number,
                                  "Quantity": pf.num(1 + int(r() * 8) if r() < 0.9 else round(r() * 20, 1)),
                                  "Unit Cost": pf.money(cost), "Date Added": pf.dt(used), "_modified": used})
                if pm is not None and completed is not None:
                    self.write_pm_event(hist_s, hf, ck, pm, wo, req_day, completed, tech.id, False)
            for _ in range(int(r() * 3)):
                self.write_note(note_s, nf, ck, wo, "", requested, modified, techs)
            if r() < 0.07:
                self.write_attachments(att_s, af, ck, "Work Order", wo, requested, techs,
                                       1 + int(r() * 2), modified)
