"""The sandbox's state: an embedded SQLite database (WAL mode) with one committed transaction per
request, plus a folder of uploaded file bodies next to it.

The account documents (counters, usage, fields, users, clock) and the small kinds (pipelines, stages,
activity types, relationships) are held in memory and written through; the records of the large kinds
(organizations, persons, deals, activities, notes, files) live only in the database and are read when a
request reaches them (rows.py), so memory stays flat however many records the account holds. Each
request ends with `Store.commit()`, which stores exactly the records the request changed and the
account documents that changed, in one transaction, before the answer is sent: whatever the sandbox
acknowledged survives a kill -9 of its process. A legacy `state.json` next to the database is migrated
into it once.

A fresh state is a fresh "company account": company id and domain, an admin and four other users, a
default pipeline with its default stages, the standard deal/person/organization/activity fields,
the standard activity types and an API token. Custom-field keys are 40-hex strings derived from
the account's own seed, so two accounts never share keys.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.rows import (LINK_COLUMNS, ROW_KINDS, SCHEMA, RowTable, dump, upgrade, wipe_search,
                                            write_search_doc)
from flitstack_dagster.sandbox.rows import columns as row_columns
from flitstack_dagster.sandbox.rows import texts as text_rows

STATE_VERSION = 1
PAGE_CACHE_KIB = 64 * 1024  # the database's page cache
ENTITY_KINDS = (
    "organizations",
    "persons",
    "deals",
    "activities",
    "pipelines",
    "stages",
    "notes",
    "files",
    "activityTypes",
    "organizationRelationships",
)
FIELD_ENTITIES = ("deal", "person", "organization", "activity")

USERS = [
    ("Alex Morgan", "admin@springfield.example", True),
    ("Jordan Lee", "jordan.lee@springfield.example", False),
    ("Priya Shah", "priya.shah@springfield.example", False),
    ("Sam Ortiz", "sam.ortiz@springfield.example", False),
    ("Casey Nguyen", "casey.nguyen@springfield.example", False),
]

DEFAULT_STAGES = [
    ("Qualified", 100),
    ("Contact Made", 100),
    ("Demo Scheduled", 100),
    ("Proposal Made", 100),
    ("Negotiations Started", 100),
]

ACTIVITY_TYPES = [
    ("Call", "call", "call"),
    ("Meeting", "meeting", "meeting"),
    ("Task", "task", "task"),
    ("Deadline", "deadline", "deadline"),
    ("Email", "email", "email"),
    ("Lunch", "lunch", "lunch"),
]

# (field_code, field_name, field_type, options-or-None, subfields-or-None)
_ADDRESS_SUB = [
    ("value", "Full address", "varchar"),
    ("subpremise", "Apartment/suite no", "varchar"),
    ("street_number", "House number", "varchar"),
    ("route", "Street/road name", "varchar"),
    ("sublocality", "District/sublocality", "varchar"),
    ("locality", "City/town/village/locality", "varchar"),
    ("admin_area_level_1", "State/county", "varchar"),
    ("admin_area_level_2", "Region", "varchar"),
    ("country", "Country", "varchar"),
    ("postal_code", "ZIP/Postal code", "varchar"),
    ("formatted_address", "Full/combined address", "varchar"),
]
_MONEY_SUB = lambda label: [  # noqa: E731
    ("value", f"Amount of {label}", "double"),
    ("currency", f"Currency of {label}", "varchar"),
]
_VISIBLE_TO = [{"id": 1, "label": "Owner & followers"}, {"id": 3, "label": "Entire company"}]

STANDARD_FIELDS: dict[str, list[tuple]] = {
    "deal": [
        ("id", "ID", "int", None, None),
        ("title", "Title", "varchar", None, None),
        ("creator_user_id", "Creator", "user", None, None),
        ("owner_id", "Owner", "user", None, None),
        ("value", "Value", "monetary", None, _MONEY_SUB("Value")),
        ("weighted_value", "Weighted value", "monetary", None, _MONEY_SUB("Weighted value")),
        ("probability", "Probability", "double", None, None),
        ("org_id", "Organization", "org", None, None),
        ("pipeline_id", "Pipeline", "int", None, None),
        ("person_id", "Contact person", "people", None, None),
        ("stage_id", "Stage", "stage", None, None),
        ("status", "Status", "status",
         [{"id": 1, "label": "open"}, {"id": 2, "label": "won"},
          {"id": 3, "label": "lost"}, {"id": 4, "label": "deleted"}], None),
        ("add_time", "Deal created", "date", None, None),
        ("update_time", "Update time", "date", None, None),
        ("stage_change_time", "Last stage change", "date", None, None),
        ("next_activity_date", "Next activity date", "date", None, None),
        ("last_activity_date", "Last activity date", "date", None, None),
        ("won_time", "Won time", "date", None, None),
        ("lost_time", "Lost time", "date", None, None),
        ("close_time", "Deal closed on", "date", None, None),
        ("lost_reason", "Lost reason", "varchar_options", None, None),
        ("visible_to", "Visible to", "visible_to", _VISIBLE_TO, None),
        ("expected_close_date", "Expected close date", "date", None, None),
        ("label_ids", "Label", "set", [], None),
        ("origin", "Source origin", "varchar", None, None),
        ("channel", "Source channel", "enum", [], None),
    ],
    "person": [
        ("id", "ID", "int", None, None),
        ("name", "Name", "varchar", None, None),
        ("first_name", "First name", "varchar", None, None),
        ("last_name", "Last name", "varchar", None, None),
        ("owner_id", "Owner", "user", None, None),
        ("org_id", "Organization", "org", None, None),
        ("emails", "Email", "varchar", None, None),
        ("phones", "Phone", "phone", None, None),
        ("label_ids", "Labels", "set", [], None),
        ("add_time", "Person created", "date", None, None),
        ("update_time", "Update time", "date", None, None),
        ("visible_to", "Visible to", "visible_to", _VISIBLE_TO, None),
        ("job_title", "Job title", "varchar", None, None),
        ("birthday", "Birthday", "date", None, None),
        ("postal_address", "Postal address", "address", None, _ADDRESS_SUB),
        ("notes", "Notes", "text", None, None),
        ("marketing_status", "Marketing status", "enum",
         [{"id": 1, "label": "no_consent"}, {"id": 2, "label": "unsubscribed"},
          {"id": 3, "label": "subscribed"}, {"id": 4, "label": "archived"}], None),
    ],
    "organization": [
        ("id", "ID", "int", None, None),
        ("name", "Name", "varchar", None, None),
        ("owner_id", "Owner", "user", None, None),
        ("address", "Address", "address", None, _ADDRESS_SUB),
        ("label_ids", "Labels", "set", [], None),
        ("add_time", "Organization created", "date", None, None),
        ("update_time", "Update time", "date", None, None),
        ("visible_to", "Visible to", "visible_to", _VISIBLE_TO, None),
        ("people_count", "People", "int", None, None),
        ("open_deals_count", "Open deals", "int", None, None),
    ],
    "activity": [
        ("subject", "Subject", "varchar", None, None),
        ("type", "Type", "varchar_options", None, None),
        ("owner_id", "Assigned to user", "user", None, None),
        ("creator_user_id", "Creator", "user", None, None),
        ("deal_id", "Deal", "deal", None, None),
        ("lead_id", "Lead", "lead", None, None),
        ("person_id", "Contact person", "people", None, None),
        ("org_id", "Organization", "org", None, None),
        ("project_id", "Project", "project", None, None),
        ("due_date", "Due date", "date", None, None),
        ("due_time", "Due time", "time", None, None),
        ("duration", "Duration", "time", None, None),
        ("busy", "Free/busy", "enum", [{"id": 1, "label": "Free"}, {"id": 2, "label": "Busy"}], None),
        ("done", "Done", "boolean", None, None),
        ("marked_as_done_time", "Marked as done time", "date", None, None),
        ("location", "Location", "address", None, _ADDRESS_SUB),
        ("public_description", "Public description", "text", None, None),
        ("note", "Note", "text", None, None),
        ("priority", "Priority", "enum", [], None),
        ("add_time", "Add time", "date", None, None),
        ("update_time", "Update time", "date", None, None),
    ],
}


def iso(ts: float) -> str:
    """v2 timestamp: 2021-01-01T00:00:00Z."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_time(ts: float) -> str:
    """v1 timestamp: 2021-01-01 00:00:00 (UTC)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _std_field(entity: str, code: str, name: str, ftype: str, options, subfields) -> dict:
    f: dict[str, Any] = {
        "field_name": name,
        "field_code": code,
        "description": None,
        "field_type": ftype,
        "options": copy.deepcopy(options),
        "subfields": [{"field_code": c, "field_name": n, "field_type": t} for c, n, t in subfields]
        if subfields
        else None,
        "is_custom_field": False,
        "is_optional_response_field": False,
        "ui_visibility": {"add_visible_flag": True, "details_visible_flag": True},
    }
    if entity == "deal":
        f["ui_visibility"].update(
            {"projects_detail_visible_flag": False, "show_in_pipelines": {"show_in_all": True, "pipeline_ids": []}}
        )
        f["important_fields"] = {"enabled": False, "stage_ids": []}
        f["required_fields"] = {"enabled": False, "stage_ids": [], "statuses": {}}
    elif entity in ("person", "organization"):
        f["important_fields"] = {"enabled": False}
        f["required_fields"] = {"enabled": False}
    return f


def new_account(clock: Clock, plan: str, seats: int, api_token: str | None) -> dict:
    now = clock.now()
    seed = secrets.token_hex(16)
    company_id = 10_000_000 + secrets.randbelow(80_000_000)
    company_domain = f"springfield-{seed[:6]}"
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "account": {
            "company_id": company_id,
            "company_name": "Springfield Facilities (sandbox)",
            "company_domain": company_domain,
            "seed": seed,
            "plan": plan,
            "seats": seats,
            "api_token": api_token or secrets.token_hex(20),
            "created": iso(now),
        },
        "users": [],
        "next_id": {k: 1 for k in ENTITY_KINDS},
        "next_field_id": 1,
        "next_option_id": 1,
        "records": {k: {} for k in ENTITY_KINDS},
        "fields": {},
        "usage": {"day": clock.today(), "tokens_today": 0, "ops": {}},
        "clock_offset": clock.offset,
    }
    for i, (name, email, admin) in enumerate(USERS):
        state["users"].append(
            {
                "id": company_id % 1000 * 10_000 + i + 1,
                "name": name,
                "email": email,
                "default_currency": "USD",
                "locale": "en_US",
                "lang": 1,
                "phone": None,
                "activated": True,
                "last_login": iso(now),
                "created": v1_time(now),
                "modified": v1_time(now),
                "has_created_company": admin,
                "access": [{"app": "sales", "admin": admin, "permission_set_id": "sandbox"}],
                "active_flag": True,
                "timezone_name": "Europe/Berlin",
                "timezone_offset": "+01:00",
                "role_id": 1,
                "icon_url": None,
                "is_you": admin,
                "is_deleted": False,
                "is_admin": admin,
            }
        )
    # fields
    for entity, specs in STANDARD_FIELDS.items():
        state["fields"][entity] = [_std_field(entity, *s) for s in specs]
        for f in state["fields"][entity]:
            f["id"] = state["next_field_id"]
            state["next_field_id"] += 1
    # default pipeline + stages
    pid = _take_id(state, "pipelines")
    state["records"]["pipelines"][str(pid)] = {
        "id": pid,
        "name": "Pipeline",
        "order_nr": 1,
        "is_deleted": False,
        "is_deal_probability_enabled": False,
        "add_time": iso(now),
        "update_time": iso(now),
    }
    for n, (sname, prob) in enumerate(DEFAULT_STAGES, start=1):
        sid = _take_id(state, "stages")
        state["records"]["stages"][str(sid)] = {
            "id": sid,
            "order_nr": n,
            "name": sname,
            "is_deleted": False,
            "deal_probability": prob,
            "pipeline_id": pid,
            "is_deal_rot_enabled": False,
            "days_to_rotten": None,
            "add_time": iso(now),
            "update_time": iso(now),
        }
    for n, (name, key, icon) in enumerate(ACTIVITY_TYPES, start=1):
        tid = _take_id(state, "activityTypes")
        state["records"]["activityTypes"][str(tid)] = {
            "id": tid,
            "order_nr": n,
            "name": name,
            "key_string": key,
            "icon_key": icon,
            "active_flag": True,
            "color": None,
            "is_custom_flag": False,
            "add_time": v1_time(now),
            "update_time": None,
            "is_deleted": False,
        }
    return state


def _take_id(state: dict, kind: str) -> int:
    i = state["next_id"][kind]
    state["next_id"][kind] = i + 1
    return i


def custom_field_key(state: dict, entity: str) -> str:
    n = state["next_field_id"]
    return hashlib.sha1(f"{state['account']['seed']}:{entity}:{n}".encode()).hexdigest()


# what a read request can change; the rest of the documents only change on writes
_READ_DOCS = ("usage", "clock_offset")
# large documents the API changes rarely: users never, fields only by taking a field or option id
_RARE_DOCS = ("fields", "users")
_FIELD_COUNTERS = ("next_field_id", "next_option_id")
_UPSERT = ("INSERT INTO records (kind, id, created, body, deleted, update_time, {links}) "
           "VALUES (?, ?, ?, ?, ?, ?, {marks}) ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, "
           "deleted = excluded.deleted, update_time = excluded.update_time, {sets}").format(
    links=", ".join(LINK_COLUMNS), marks=", ".join("?" * len(LINK_COLUMNS)),
    sets=", ".join(f"{c} = excluded.{c}" for c in LINK_COLUMNS))


def _dump(value: Any) -> str:
    return dump(value)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Table(dict):
    """The records of one small entity kind (pipelines, stages, ...), by id string, held in memory.
    Remembers every id a request reaches by key, so the store writes exactly those records when the
    request commits."""

    def __init__(self, store: "Store", kind: str, items: dict | None = None) -> None:
        super().__init__(items or {})
        self._store = store
        self._kind = kind

    def __getitem__(self, key: str) -> dict:
        self._store.touch(self._kind, key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._store.touch(self._kind, key)
        return super().get(key, default)

    def __setitem__(self, key: str, value: dict) -> None:
        if not super().__contains__(key):
            self._store.created(self._kind, key)
        self._store.touch(self._kind, key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._store.touch(self._kind, key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._store.touch(self._kind, key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


class Store:
    """The account documents and small kinds in memory, the large kinds' records in the database
    (rows.py); every request's changes are written through in one transaction. Without a path the
    database lives in memory.

    `path` names the database; a `.json` path (the old state document) is read as its `.sqlite`
    sibling, and the document itself, when present and not yet migrated, is migrated into it.
    """

    def __init__(self, path: Path | None, clock: Clock, plan: str, seats: int, api_token: str | None,
                 replace_token: bool = True) -> None:
        self.path = Path(path).with_suffix(".sqlite") if path else None
        self.clock = clock
        self.lock = threading.RLock()
        self._blobs: dict[int, bytes] = {}
        self._touched: set[tuple[str, str]] = set()
        self._new: dict[tuple[str, str], int] = {}  # creation sequence of the records not yet written
        self._saved: dict[str, str] = {}
        self._seq = 0
        self._migrating: Path | None = None
        self._wipe = False  # the next commit starts by deleting every stored record (a reset)
        self._fields_dirty = False  # a field changed in place: the next commit writes the fields
        self._db: sqlite3.Connection | None = self._open()
        loaded = self._load()
        if loaded is None:
            self._adopt(new_account(clock, plan, seats, api_token), fresh=True)
        else:
            self._adopt(loaded, fresh=False)
            acct = self.state["account"]
            if replace_token and api_token and api_token != acct["api_token"]:
                acct["api_token"] = api_token
            if plan and plan != acct["plan"]:
                acct["plan"] = plan
            if seats and seats != acct["seats"]:
                acct["seats"] = seats
            # the sandbox clock survives restarts, so "tomorrow" stays tomorrow
            off = float(self.state.get("clock_offset", 0.0))
            if off > clock.offset:
                clock.advance(off - clock.offset)
        self.commit(everything=True)
        if self.path:
            for p in (self.path, self.path.with_name(self.path.name + "-wal")):
                try:
                    os.chmod(p, 0o600)  # the token lives in here
                except OSError:
                    pass

    # -- the database ------------------------------------------------------------------------------------
    @property
    def blob_dir(self) -> Path | None:
        return self.path.with_name(self.path.name + ".files") if self.path else None

    @property
    def legacy_path(self) -> Path | None:
        return self.path.with_suffix(".json") if self.path else None

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.executescript(SCHEMA)
            upgrade(db)
            return db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit is in the WAL file before the answer goes out, so it survives a kill of
            # the process; FULL would also fsync it (power loss) and caps the sandbox near 200 writes/s
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")  # bounded: the memory does not grow with the records
            db.executescript(SCHEMA)
            upgrade(db)
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{self.path} is not a sandbox database ({e}); move it away or pass another --state") from e
        return db

    def _load(self) -> dict | None:
        if self.path is None:
            return None
        docs = {name: json.loads(body) for name, body in self._db.execute("SELECT name, body FROM docs")}
        if "account" not in docs:
            return self._migrate_legacy()
        if docs.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sandbox state version in {self.path}")
        state = dict(docs)
        state["records"] = {k: {} for k in ENTITY_KINDS}
        small = [k for k in ENTITY_KINDS if k not in ROW_KINDS]
        rows = self._db.execute(f"SELECT kind, id, body FROM records WHERE kind IN ({','.join('?' * len(small))})",
                                small)
        for kind, rid, body in rows:
            state["records"].setdefault(kind, {})[str(rid)] = json.loads(body)
        self._seq = self._db.execute("SELECT coalesce(max(created), 0) FROM records").fetchone()[0]
        return state

    def _migrate_legacy(self) -> dict | None:
        """Read the old JSON document, if any; `_adopt(fresh=True)` then writes it all in one commit."""
        legacy = self.legacy_path
        if legacy is None or not legacy.exists():
            return None
        data = json.loads(legacy.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sandbox state version in {legacy}")
        self._migrating = legacy
        return data

    def _table(self, kind: str) -> Table | RowTable:
        if kind in ROW_KINDS:
            return RowTable(self._db, kind, lambda key, kind=kind: self.created(kind, key))
        return Table(self, kind)

    def _adopt(self, state: dict, fresh: bool) -> None:
        """Take `state` as the live state; a fresh (or migrated) one is written whole."""
        fresh = fresh or self._migrating is not None
        self.state = state
        records = state["records"]
        for kind in set(ENTITY_KINDS) | set(records):
            items = records.get(kind, {})
            records[kind] = self._table(kind)
            if fresh:
                for key in sorted(items, key=int):
                    records[kind][key] = items[key]
            elif kind not in ROW_KINDS:
                dict.update(records[kind], items)
        if fresh:
            self._saved.clear()
        legacy = self._migrating
        if legacy is not None:
            self.commit(everything=True)
            old_blobs = legacy.with_name(legacy.name + ".files")
            if old_blobs.is_dir() and not self.blob_dir.exists():
                os.replace(old_blobs, self.blob_dir)
            os.replace(legacy, legacy.with_name(legacy.name + ".migrated"))
            self._migrating = None

    def _row_tables(self) -> list[RowTable]:
        return [t for t in self.state["records"].values() if isinstance(t, RowTable)]

    def touch(self, kind: str, key: Any) -> None:
        """Note that this request reached record `key` of `kind` (it may change it)."""
        table = self.state["records"].get(kind) if hasattr(self, "state") else None
        if isinstance(table, RowTable):
            table.touch(key)
        else:
            self._touched.add((kind, str(key)))

    def created(self, kind: str, key: str) -> None:
        self._seq += 1
        self._new[(kind, key)] = self._seq

    def commit(self, records: bool = True, everything: bool = False) -> None:
        """Write what this request changed in one transaction: the records it reached and the changed
        documents (with `records=False`, for a read, only usage and the clock; with `everything`, every
        document is compared, users and fields included)."""
        with self.lock:
            if self._db is None:
                return
            self.state["clock_offset"] = self.clock.offset
            docs = {n: _dump(self.state[n]) for n in self._doc_names(records, everything)}
            docs = {n: body for n, body in docs.items() if self._saved.get(n) != body}
            rows = self._record_rows() if records else []
            if not records:
                self._settle()  # a read changes no record, whatever it reached
            if not docs and not rows and not self._wipe:
                self._settle()
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if self._wipe:
                    db.execute("DELETE FROM records")
                    db.execute("DELETE FROM texts")
                    wipe_search(db)
                db.executemany("INSERT INTO docs (name, body) VALUES (?, ?) "
                               "ON CONFLICT (name) DO UPDATE SET body = excluded.body", docs.items())
                for kind, rid, rec, body, before in rows:
                    self._write_row(kind, rid, rec, body, before)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._saved.update(docs)
            self._wipe = False
            self._settle()

    def _settle(self) -> None:
        self._touched.clear()
        self._new.clear()
        for table in self._row_tables():
            table.settle()

    def _write_row(self, kind: str, rid: int, rec: dict | None, body: str | None, before: str | None) -> None:
        db = self._db
        if body is None:
            db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, rid))
        else:
            created = self._new.get((kind, str(rid)), 0)
            db.execute(_UPSERT, (kind, rid, created, body, *row_columns(rec)))
        if kind in ROW_KINDS:
            was = json.loads(before) if before else None
            old = text_rows(kind, was) if was else []
            new = text_rows(kind, rec) if rec is not None else []
            write_search_doc(db, kind, rid, rec, was)
            if old != new:
                db.execute("DELETE FROM texts WHERE kind = ? AND id = ?", (kind, rid))
                db.executemany("INSERT INTO texts (kind, field, value, id) VALUES (?, ?, ?, ?)",
                               [(kind, f, v, rid) for f, v in new])

    def _doc_names(self, records: bool, everything: bool) -> list[str]:
        if not records:
            return list(_READ_DOCS)
        names = [k for k in self.state if k != "records" and k not in _RARE_DOCS]
        fields_moved = any(self._saved.get(k) != _dump(self.state[k]) for k in _FIELD_COUNTERS)
        if everything or fields_moved or self._fields_dirty:
            names += [k for k in _RARE_DOCS if k in self.state]
            self._fields_dirty = False
        return names

    def _record_rows(self) -> list[tuple[str, int, dict | None, str | None, str | None]]:
        """(kind, id, record or None, body, body before) of every record this request changed."""
        rows = []
        for kind, key in list(self._touched):
            table = self.state["records"].get(kind)
            rec = dict.get(table, key) if table is not None else None
            try:
                rid = int(key)
            except ValueError:
                continue  # a lookup by a key that is no id; nothing stored under it
            if not -(2**63) <= rid < 2**63:
                continue
            rows.append((kind, rid, rec, None if rec is None else _dump(rec), None))
        for table in self._row_tables():
            rows += [(table.kind, rid, rec, body, before) for rid, rec, body, before in table.changes()]
        return rows

    def fields_changed(self) -> None:
        """A field or option changed without taking an id: the next commit writes the fields too."""
        self._fields_dirty = True

    def mark_dirty(self) -> None:
        """Something outside a request changed the state (clock, usage, a patched record): commit it."""
        self.commit(everything=True)

    def start(self) -> None:
        """Nothing runs in the background: every request commits before it answers."""

    def flush(self) -> None:
        self.commit(everything=True)

    def close(self) -> None:
        with self.lock:
            if self._db is None:
                return
            self.commit(everything=True)
            if self.path is not None:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    def reset(self) -> None:
        with self.lock:
            acct = self.state["account"]
            self._wipe = True  # in the same transaction as the new account
            self._settle()
            self._adopt(new_account(self.clock, acct["plan"], acct["seats"], acct["api_token"]), fresh=True)
            self.commit(everything=True)
            self._blobs.clear()  # after the commit: a kill in between leaves bodies no record names
            if self.blob_dir and self.blob_dir.exists():
                for p in self.blob_dir.iterdir():
                    p.unlink()

    # -- losing acknowledged writes (a fault mode) -------------------------------------------------------
    def forget_creates(self, count: int, kind: str | None = None) -> list[tuple[str, int]]:
        """Lose the `count` most recent creates (of `kind`, or of any kind), newest first, as a store
        that lost acknowledged writes would: the records vanish and each kind's id counter rewinds to
        the lowest lost id, so the next creates get the same ids again."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if kind is not None and kind not in ENTITY_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ENTITY_KINDS)}")
        with self.lock:
            self.commit()
            lost = self._newest_creates(count, kind)
            for k, rid in lost:
                self.state["records"][k].pop(str(rid), None)
                if k == "files":
                    self._drop_blob(rid)
                self.state["next_id"][k] = min(self.state["next_id"][k], rid)
            self.commit()
            return lost

    def _newest_creates(self, count: int, kind: str | None) -> list[tuple[str, int]]:
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self._db.execute(f"SELECT kind, id FROM records {where} ORDER BY created DESC LIMIT ?",
                                [*args, count])
        return [(k, rid) for k, rid in rows]

    # -- file bodies -------------------------------------------------------------------------------------
    def put_blob(self, file_id: int, data: bytes) -> None:
        """Store a file body; on disk (fsync) before the upload is acknowledged."""
        if self.blob_dir is None:
            self._blobs[file_id] = data
            return
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.blob_dir / f".{file_id}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.blob_dir / str(file_id))
        _fsync_dir(self.blob_dir)

    def get_blob(self, file_id: int) -> bytes | None:
        if self.blob_dir is None:
            return self._blobs.get(file_id)
        p = self.blob_dir / str(file_id)
        return p.read_bytes() if p.exists() else None

    def _drop_blob(self, file_id: int) -> None:
        self._blobs.pop(file_id, None)
        if self.blob_dir is not None:
            (self.blob_dir / str(file_id)).unlink(missing_ok=True)

    # -- helpers -----------------------------------------------------------------------------------------
    def take_id(self, kind: str) -> int:
        return _take_id(self.state, kind)

    def records(self, kind: str) -> dict[str, dict]:
        return self.state["records"][kind]

    def get(self, kind: str, rid: Any, include_deleted: bool = False) -> dict | None:
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= rid < 2**63:  # no id the database cannot hold: not even remembered as reached
            return None
        rec = self.state["records"][kind].get(str(rid))
        if rec is None or (rec.get("is_deleted") and not include_deleted):
            return None
        return rec

    def user(self, uid: Any) -> dict | None:
        for u in self.state["users"]:
            if u["id"] == uid:
                return u
        return None

    @property
    def admin_user(self) -> dict:
        return next(u for u in self.state["users"] if u["is_admin"])
