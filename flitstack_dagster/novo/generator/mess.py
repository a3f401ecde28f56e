"""Injects each problem of the spec's "What real exports get wrong" list at a known rate.

For every (file, problem) pair the injector picks `rate` of the file's eligible rows with a
deterministic stride (an accumulator, started at a random offset inside the first 1/rate rows, or
inside the file when it is shorter), so `--mess 0.05` gives 5 % of the rows each problem and every
problem at least once. A row a problem cannot apply to (no email to pad) passes the turn to the next
row. Every injection is logged: {problem, file, id, column, value, row_number}, where row_number is
the record's number in the file (1 = first record after the header).

Caps keep bundles small: `long_text` at most LONG_TEXT_CAP per file, `attachment_oversize` at most
OVERSIZE_CAP in all and only with --large-attachments.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter as Tally
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flitstack_dagster.novo import columns
from flitstack_dagster.novo.generator import bodies, pools, udfs
from flitstack_dagster.novo.generator.fmt import Fmt
from flitstack_dagster.novo.generator.world import ID_FORMS, ORPHAN_ID_BASE

LONG_TEXT_CAP = 2000
OVERSIZE_CAP = 3
LOG_VALUE_MAX = 200

PROBLEMS = (
    "orphan_reference", "duplicate_id", "hierarchy_cycle", "deep_hierarchy", "invalid_email", "shared_email",
    "padded_email", "odd_name", "impossible_date", "far_date", "blank_required_date", "negative_number",
    "absurd_number", "unknown_status", "unknown_priority", "unknown_pick_value", "unknown_choice_value",
    "attachment_missing_body", "attachment_size_mismatch", "attachment_hash_mismatch", "attachment_hostile_path",
    "attachment_oversize", "cp1252_text", "bom_text", "long_text",
)

ORPHAN_COLUMNS = {
    "accounts.csv": (("Department ID", "departments"),),
    "contacts.csv": (("Account ID", "accounts"), ("Department ID", "departments")),
    "assets.csv": (("Parent Asset ID", "assets"), ("Account ID", "accounts")),
    "work_orders.csv": (("Asset ID", "assets"), ("Requester ID", "contacts"), ("Assigned To ID", "contacts"),
                        ("Account ID", "accounts"), ("PM Schedule ID", "pm_schedules")),
    "labor.csv": (("WO Number", "work_orders"), ("Technician ID", "contacts")),
    "parts_used.csv": (("Part Number", "inventory"), ("WO Number", "work_orders")),
    "status_log.csv": (("Changed By ID", "contacts"), ("WO Number", "work_orders")),
    "notes.csv": (("Logged By ID", "contacts"),),
    "pm_schedules.csv": (("Asset ID", "assets"), ("Assigned To ID", "contacts")),
    "pm_history.csv": (("PM ID", "pm_schedules"),),
    "inventory.csv": (("Vendor Account ID", "accounts"),),
    "asset_parts.csv": (("Part Number", "inventory"), ("Asset ID", "assets")),
    "attachments.csv": (("Uploaded By ID", "contacts"),),
}
DUPLICATE_CHANGES = {
    "accounts.csv": "Phone", "contacts.csv": "Job Title", "assets.csv": "Status", "work_orders.csv": "Status",
    "pm_schedules.csv": "Estimated Hours", "inventory.csv": "Qty On Hand", "labor.csv": "Hours",
}
IMPOSSIBLE_DATE_COLUMNS = {
    "work_orders.csv": ("Due Date", "Date Scheduled", "Date Requested"), "assets.csv": ("Install Date",),
    "labor.csv": ("Work Date",), "pm_schedules.csv": ("Next Due",), "pm_history.csv": ("Due Date",),
    "contacts.csv": ("Date Added",), "notes.csv": ("Logged At",),
}
FAR_DATE_COLUMNS = {
    "work_orders.csv": ("Date Requested", "Due Date", "Date Completed"), "assets.csv": ("Install Date",),
    "labor.csv": ("Work Date",), "pm_schedules.csv": ("End Date", "Next Due"), "notes.csv": ("Logged At",),
    "attachments.csv": ("Uploaded At",),
}
REQUIRED_DATES = {
    "work_orders.csv": "Date Requested", "labor.csv": "Work Date", "status_log.csv": "Changed At",
    "notes.csv": "Logged At", "pm_schedules.csv": "Start Date", "attachments.csv": "Uploaded At",
    "accounts.csv": "Date Added", "contacts.csv": "Date Added", "assets.csv": "Date Added",
    "pm_history.csv": "Completed Date",
}
NEGATIVE = {"labor.csv": ("Hours", "-3"), "work_orders.csv": ("Estimated Hours", "-2.5"),
            "parts_used.csv": ("Quantity", "-4"), "inventory.csv": ("Qty On Hand", "-12"),
            "pm_schedules.csv": ("Meter Interval", "-500"), "contacts.csv": ("Hourly Rate", "-45.00")}
ABSURD = {"labor.csv": ("Hours", "99999"), "work_orders.csv": ("Estimated Hours", "99999"),
          "parts_used.csv": ("Quantity", "1000000"), "assets.csv": ("Latitude", "999.123456"),
          "inventory.csv": ("Unit Cost", "$9,999,999.99"), "contacts.csv": ("Hourly Rate", "99,999.00"),
          "pm_schedules.csv": ("Estimated Hours", "8760")}
UNKNOWN_STATUSES = ("In-Progress", "closed ", "DONE", "Waiting on Vendor", "Pending", "Re-opened", "Comp.")
UNKNOWN_PRIORITIES = ("Urgent", "P1", "Critical", "ASAP", "med", "3 - Normal")
UNKNOWN_CHOICES = {
    "assets.csv": ("Asset Class", ("Building", "Fixture", "Vehicel")),
    "contacts.csv": ("Role", ("Supervisor", "Tech", "Requestor")),
    "labor.csv": ("Labor Type", ("Holiday", "Standby", "OT")),
    "notes.csv": ("Entry Type", ("Text Message", "Visit", "Fax")),
    "work_orders.csv": ("Source", ("Mobile App", "Fax", "311 Portal")),
    "accounts.csv": ("Account Type", ("Partner", "Prospect")),
    "pm_history.csv": ("Result", ("Incomplete", "OK")),
    "departments.csv": ("Department Type", ("External",)),
}
CP1252_COLUMNS = {"work_orders.csv": "Title", "assets.csv": "Asset Name", "notes.csv": "Body",
                  "accounts.csv": "Account Name", "contacts.csv": "Job Title"}
BOM_COLUMNS = {"work_orders.csv": "Title", "contacts.csv": "Last Name", "notes.csv": "Subject",
               "assets.csv": "Asset Name"}
LONG_COLUMNS = {"work_orders.csv": "Description", "notes.csv": "Body"}
HOSTILE_PATHS = ("../../etc/passwd", "/etc/passwd", "files/../../secret.txt", "..\\..\\Windows\\win.ini",
                 "C:\\Windows\\System32\\drivers\\etc\\hosts", "files/WO-000001/../../../outside.txt")


class Hit:
    """One candidate row for one problem: helpers to change it and log the change."""

    def __init__(self, mess: Mess, sink, row: dict, extras: list, problem: str, rng: random.Random):
        self.mess, self.sink, self.row, self.extras, self.problem, self.rng = mess, sink, row, extras, problem, rng

    @property
    def file(self) -> str:
        return self.sink.name

    def id_of(self, row: dict) -> str:
        spec = columns.BY_FILE[self.file]
        if spec.id_column:
            return row.get(spec.id_column, "")
        return "|".join(row.get(c.label, "") for c in spec.columns if c.required)

    def set(self, column: str, value: str, row: dict | None = None, offset: int = 0) -> bool:
        target = self.row if row is None else row
        target[column] = value
        self.mess.log(self.problem, self.file, self.id_of(target), column, value, self.sink.rows + 1 + offset)
        return True

    def choice(self, seq):
        return seq[int(self.rng.random() * len(seq))]

    def add_row(self, row: dict) -> int:
        self.extras.append(row)
        return len(self.extras)  # its offset from the original row


def _clean_copy(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_") or k == "_modified"}


# -- the problems -----------------------------------------------------------------------------------
def orphan_reference(h: Hit) -> bool:
    column, entity = h.choice(ORPHAN_COLUMNS[h.file])
    value = ID_FORMS[entity](ORPHAN_ID_BASE + int(h.rng.random() * 9_000_000))
    return h.set(column, value)


def duplicate_id(h: Hit) -> bool:
    spec = columns.BY_FILE[h.file]
    when = h.row.get("_modified")
    if when is None:
        return False
    dup = _clean_copy(h.row)
    later = h.rng.random() < 0.6
    moved = when + timedelta(days=(1 + h.rng.random() * 30) * (1 if later else -1))
    moved = moved.replace(microsecond=0)
    dup[spec.modified_column] = h.mess.fmt.dt(moved)
    dup["_modified"] = moved
    change = DUPLICATE_CHANGES[h.file]
    if change == "Status" and h.file == "assets.csv":
        dup[change] = "Inactive" if h.row.get(change) == "Active" else "Active"
    elif change == "Status":
        dup[change] = "Open" if h.row.get(change) == "On Hold" else "On Hold"
    elif change in ("Phone", "Job Title"):
        dup[change] = (dup.get(change) or "") + " (updated)"
    else:
        dup[change] = str(1 + int(h.rng.random() * 9))
    offset = h.add_row(dup)
    return h.set(spec.modified_column, dup[spec.modified_column], dup, offset)


def hierarchy_cycle(h: Hit) -> bool:
    kids = h.row.get("_children") or []
    me = h.row["Asset ID"]
    return h.set("Parent Asset ID", kids[0] if kids else me)


def deep_hierarchy(h: Hit) -> bool:
    depth = h.row.get("_depth", 1)
    length = max(6 - depth, 1) + int(h.rng.random() * 4)
    parent = h.row["Asset ID"]
    offset = 0
    for k in range(1, length + 1):
        extra = _clean_copy(h.row)
        extra["Asset ID"] = h.mess.new_id("assets")
        extra["Asset Name"] = f"{h.row['Asset Name']} – sub-assembly {k}"
        extra["Asset Class"] = "Equipment"
        extra["Parent Asset ID"] = parent
        parent = extra["Asset ID"]
        offset = h.add_row(extra)
    last = h.extras[-1]
    h.mess.log(h.problem, h.file, last["Asset ID"], "Parent Asset ID", f"{last['Parent Asset ID']} (depth {depth + length})",
               h.sink.rows + 1 + offset)
    return True


def _email_local(row: dict) -> str:
    email = row.get("Email", "").strip()
    if "@" in email:
        return email.split("@")[0].lower()
    first = row.get("First Name") or row.get("Account Name") or "info"
    return "".join(ch for ch in first.lower() if ch.isalnum() and ch.isascii()) or "info"


def invalid_email(h: Hit) -> bool:
    local = _email_local(h.row)
    forms = (f"{local}@", f"{local} smith@springfield.gov", f"{local}.springfield.gov", f"{local}@@springfield.gov",
             f"{local}@springfield", f"mailto:{local}@springfield.gov", f"{local}@springfield..gov")
    return h.set("Email", h.choice(forms))


def shared_email(h: Hit) -> bool:
    seen = h.mess.emails
    mine = h.row.get("Email", "").strip().lower()
    others = [e for e in seen[-20:] if e.strip().lower() != mine]
    if not others:
        if mine:
            seen.append(h.row["Email"])
        return False
    return h.set("Email", h.choice(others))


def padded_email(h: Hit) -> bool:
    email = h.row.get("Email", "").strip() or f"{_email_local(h.row)}@springfield.gov"
    forms = (f"  {email.upper()} ", f" {email}  ", email.upper(), f"\t{email}")
    return h.set("Email", h.choice(forms))


def _odd(text: str, h: Hit) -> str:
    u = h.rng.random()
    if u < 0.25:
        return text.swapcase()
    if u < 0.5:
        return f"  {text.upper()}  "
    if u < 0.75:
        return "  " + "   ".join(text.lower().split(" ")) + " "
    return text.lower() + "   "


def odd_name(h: Hit) -> bool:
    if h.file == "accounts.csv":
        return h.set("Account Name", _odd(h.row["Account Name"], h))
    col = "First Name" if h.row.get("First Name") and h.rng.random() < 0.5 else "Last Name"
    if not h.row.get(col):
        return False
    return h.set(col, _odd(h.row[col], h))


def _date_like(h: Hit, column: str, ymd: tuple[int, int, int], iso_ok: bool = True) -> str:
    y, m, d = ymd
    if iso_ok and h.rng.random() < 0.3:
        value = f"{y:04d}-{m:02d}-{d:02d}"
    else:
        value = f"{d:02d}/{m:02d}/{y:04d}" if h.mess.date_order == "DMY" else f"{m:02d}/{d:02d}/{y:04d}"
    if columns.BY_FILE[h.file].column(column).type == columns.ColType.DATETIME:
        value += f" {8 + int(h.rng.random() * 9):02d}:{int(h.rng.random() * 60):02d}"
    return value


def impossible_date(h: Hit) -> bool:
    column = h.choice(IMPOSSIBLE_DATE_COLUMNS[h.file])
    ymd = h.choice(((2026, 2, 30), (2025, 4, 31), (2026, 2, 29), (2025, 6, 31), (2026, 11, 31), (2026, 9, 31)))
    return h.set(column, _date_like(h, column, ymd))


def far_date(h: Hit) -> bool:
    column = h.choice(FAR_DATE_COLUMNS[h.file])
    ymd = h.choice(((1900, 1, 1), (1899, 12, 31), (1901, 6, 15), (2199, 12, 31), (2999, 1, 1), (1970, 1, 1),
                    (1, 1, 1)))
    return h.set(column, _date_like(h, column, ymd))


def blank_required_date(h: Hit) -> bool:
    return h.set(REQUIRED_DATES[h.file], h.choice(("", "", "N/A", "NULL")))


def negative_number(h: Hit) -> bool:
    column, value = NEGATIVE[h.file]
    if h.file == "pm_schedules.csv" and not h.row.get(column):
        return False
    return h.set(column, value)


def absurd_number(h: Hit) -> bool:
    column, value = ABSURD[h.file]
    return h.set(column, value)


def unknown_status(h: Hit) -> bool:
    return h.set("Status", h.choice(UNKNOWN_STATUSES))


def unknown_priority(h: Hit) -> bool:
    return h.set("Priority", h.choice(UNKNOWN_PRIORITIES))


def unknown_pick_value(h: Hit) -> bool:
    entity = columns.BY_FILE[h.file].udf_entity
    picks = [u for u in udfs.for_entity(entity) if u.data_type in ("Pick List", "Multi Pick List")]
    u = h.choice(picks)
    outside = h.choice((f"{u.choices[0]} (old)", "Other", "TBD", f"{u.label} 99"))
    if u.data_type == "Multi Pick List":
        outside = f"{u.choices[0]}; {outside}"
    return h.set(u.column, outside)


def unknown_choice_value(h: Hit) -> bool:
    column, values = UNKNOWN_CHOICES[h.file]
    return h.set(column, h.choice(values))


def _has_body(row: dict) -> bool:
    return row.get("_body") is not None or row.get("_body_chunks") is not None


def attachment_missing_body(h: Hit) -> bool:
    if not _has_body(h.row):
        return False
    h.row["_body"] = h.row["_body_chunks"] = None
    return h.set("Bundle Path", h.row["Bundle Path"])


def attachment_size_mismatch(h: Hit) -> bool:
    if not _has_body(h.row):
        return False
    size = int(h.row["Size"])
    return h.set("Size", str(size + h.choice((1, 17, 1024, -7)) if size > 7 else size + 5))


def attachment_hash_mismatch(h: Hit) -> bool:
    if not _has_body(h.row):
        return False
    return h.set("SHA-256", hashlib.sha256(h.row["SHA-256"].encode() + b"tampered").hexdigest())


def attachment_hostile_path(h: Hit) -> bool:
    h.row["_body"] = h.row["_body_chunks"] = None  # nothing is ever written outside the bundle
    return h.set("Bundle Path", h.choice(HOSTILE_PATHS))


def attachment_oversize(h: Hit) -> bool:
    if not _has_body(h.row):
        return False
    n = int(h.rng.random() * 1000)
    sha, size = hashlib.sha256(), 0
    for piece in bodies.large_pdf_chunks(n):
        sha.update(piece)
        size += len(piece)
    name = f"Scanned drawings {h.row['Attachment ID']}.pdf"
    path = f"files/{h.row['Parent ID']}/{name}"
    h.row.update({"File Name": name, "Bundle Path": path, "_body_path": path, "Content Type": "application/pdf",
                  "SHA-256": sha.hexdigest(), "_body": None, "_body_chunks": lambda: bodies.large_pdf_chunks(n)})
    return h.set("Size", str(size))


def cp1252_text(h: Hit) -> bool:
    column = CP1252_COLUMNS[h.file]
    sample = h.choice(pools.CP1252_SAMPLES)
    old = h.row.get(column, "")
    return h.set(column, f"{old} {sample}" if old and h.rng.random() < 0.6 else sample)


def bom_text(h: Hit) -> bool:
    column = BOM_COLUMNS[h.file]
    old = h.row.get(column, "")
    if not old:
        return False
    bom = "\ufeff" if h.mess.encoding != "cp1252" else "ï»¿"  # the UTF-8 BOM read as Windows-1252
    return h.set(column, bom + old)


def long_text(h: Hit) -> bool:
    column = LONG_COLUMNS[h.file]
    size = 20_000 + int(h.rng.random() * 40_000)
    start = int(h.rng.random() * 1000)
    return h.set(column, h.mess.long_source[start:start + size])


HANDLERS: dict[str, tuple[Callable[[Hit], bool], tuple[str, ...]]] = {
    "orphan_reference": (orphan_reference, tuple(ORPHAN_COLUMNS)),
    "duplicate_id": (duplicate_id, tuple(DUPLICATE_CHANGES)),
    "hierarchy_cycle": (hierarchy_cycle, ("assets.csv",)),
    "deep_hierarchy": (deep_hierarchy, ("assets.csv",)),
    "invalid_email": (invalid_email, ("contacts.csv", "accounts.csv")),
    "shared_email": (shared_email, ("contacts.csv",)),
    "padded_email": (padded_email, ("contacts.csv", "accounts.csv")),
    "odd_name": (odd_name, ("contacts.csv", "accounts.csv")),
    "impossible_date": (impossible_date, tuple(IMPOSSIBLE_DATE_COLUMNS)),
    "far_date": (far_date, tuple(FAR_DATE_COLUMNS)),
    "blank_required_date": (blank_required_date, tuple(REQUIRED_DATES)),
    "negative_number": (negative_number, tuple(NEGATIVE)),
    "absurd_number": (absurd_number, tuple(ABSURD)),
    "unknown_status": (unknown_status, ("work_orders.csv",)),
    "unknown_priority": (unknown_priority, ("work_orders.csv",)),
    "unknown_pick_value": (unknown_pick_value, ("work_orders.csv", "assets.csv", "contacts.csv", "accounts.csv")),
    "unknown_choice_value": (unknown_choice_value, tuple(UNKNOWN_CHOICES)),
    "attachment_missing_body": (attachment_missing_body, ("attachments.csv",)),
    "attachment_size_mismatch": (attachment_size_mismatch, ("attachments.csv",)),
    "attachment_hash_mismatch": (attachment_hash_mismatch, ("attachments.csv",)),
    "attachment_hostile_path": (attachment_hostile_path, ("attachments.csv",)),
    "attachment_oversize": (attachment_oversize, ("attachments.csv",)),
    "cp1252_text": (cp1252_text, tuple(CP1252_COLUMNS)),
    "bom_text": (bom_text, tuple(BOM_COLUMNS)),
    "long_text": (long_text, tuple(LONG_COLUMNS)),
}
# Order matters where problems touch the same row: duplicates copy the row after the others.
ORDER = tuple(p for p in PROBLEMS if p != "duplicate_id") + ("duplicate_id",)
assert set(HANDLERS) == set(PROBLEMS)


class _Turn:
    __slots__ = ("acc", "cap", "count", "handler", "problem", "rng")

    def __init__(self, problem, handler, acc, rng, cap):
        self.problem, self.handler, self.acc, self.rng, self.count, self.cap = problem, handler, acc, rng, 0, cap


class Mess:
    def __init__(self, rate: float, seed: int, date_order: str, encoding: str, tz, expected: dict[str, int],
                 new_id: Callable[[str], str], large_attachments: bool = False, log_path: Path | None = None):
        self.rate = rate
        self.date_order = date_order
        self.encoding = encoding
        self.new_id = new_id
        self.fmt = Fmt(random.Random(f"{seed}:mess:fmt"), date_order, tz)
        self.emails: list[str] = []
        self.tally: Tally = Tally()
        self.total = 0
        self._log = open(log_path, "w", encoding="utf-8", newline="\n") if log_path else None
        if self._log:
            self._log.write("[")
        r = random.Random(f"{seed}:mess:long")
        words = []
        size = 0
        while size < 62_000:
            line = " ".join(pools.DESCRIPTION_SENTENCES[int(r.random() * len(pools.DESCRIPTION_SENTENCES))]
                            for _ in range(1 + int(r.random() * 4)))
            words.append(line)
            size += len(line) + 1
        self.long_source = "\n".join(words)
        self.turns: dict[str, list[_Turn]] = {}
        for problem in ORDER:
            if problem == "attachment_oversize" and not large_attachments:
                continue
            handler, files = HANDLERS[problem]
            for file in files:
                rng = random.Random(f"{seed}:mess:{file}:{problem}")
                stride = math.ceil(1 / rate) if rate > 0 else 1
                window = max(1, min(expected.get(file, stride), stride))
                j = int(rng.random() * window)
                cap = OVERSIZE_CAP if problem == "attachment_oversize" else \
                    LONG_TEXT_CAP if problem == "long_text" else None
                self.turns.setdefault(file, []).append(_Turn(problem, handler, 1 - (j + 0.5) * rate, rng, cap))

    def process(self, sink, row: dict) -> list[dict]:
        turns = self.turns.get(sink.name)
        if not turns:
            return [row]
        rate = self.rate
        extras: list[dict] = []
        for t in turns:
            if t.acc + rate < 1:
                t.acc += rate
                continue
            if t.cap is not None and t.count >= t.cap:
                continue
            if t.handler(Hit(self, sink, row, extras, t.problem, t.rng)):
                t.acc += rate - 1
                t.count += 1
        if sink.name == "contacts.csv" and row.get("Email", "").strip():
            self.emails.append(row["Email"])
            if len(self.emails) > 100:
                del self.emails[:50]
        return [row, *extras]

    def log(self, problem: str, file: str, id_: str, column: str, value: str, row_number: int) -> None:
        self.tally[problem] += 1
        self.total += 1
        if self._log is None:
            return
        shown = value if len(value) <= LOG_VALUE_MAX else value[:LOG_VALUE_MAX] + f"… ({len(value)} characters)"
        entry = {"problem": problem, "file": file, "id": id_, "column": column, "value": shown,
                 "row_number": row_number}
        self._log.write(("\n" if self.total == 1 else ",\n") + json.dumps(entry, sort_keys=True, ensure_ascii=False))

    def close(self) -> None:
        if self._log:
            self._log.write("\n]\n" if self.total else "]\n")
            self._log.close()
            self._log = None
