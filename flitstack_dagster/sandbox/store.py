"""The sandbox's state: one JSON document, written atomically (tmp + os.replace) on a short debounce
after each mutation and on shutdown, plus a folder of uploaded file bodies next to it.

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
import threading
from pathlib import Path
from typing import Any

from flitstack_dagster.sandbox.clock import Clock

STATE_VERSION = 1
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


class Store:
    """Holds the state dict; persists it (debounced) when a path is given."""

    def __init__(self, path: Path | None, clock: Clock, plan: str, seats: int, api_token: str | None,
                 debounce: float = 0.2) -> None:
        self.path = Path(path) if path else None
        self.clock = clock
        self.lock = threading.RLock()
        self.debounce = debounce
        self._dirty = False
        self._blobs: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        loaded = self._load()
        if loaded is None:
            self.state = new_account(clock, plan, seats, api_token)
            self._dirty = True
        else:
            self.state = loaded
            acct = self.state["account"]
            if api_token and api_token != acct["api_token"]:
                acct["api_token"] = api_token
                self._dirty = True
            if plan and plan != acct["plan"]:
                acct["plan"] = plan
                self._dirty = True
            if seats and seats != acct["seats"]:
                acct["seats"] = seats
                self._dirty = True
            # the sandbox clock survives restarts, so "tomorrow" stays tomorrow
            off = float(self.state.get("clock_offset", 0.0))
            if off > clock.offset:
                clock.advance(off - clock.offset)
        self.flush()

    # -- persistence -------------------------------------------------------------------------------------
    @property
    def blob_dir(self) -> Path | None:
        return self.path.with_name(self.path.name + ".files") if self.path else None

    def _load(self) -> dict | None:
        if not self.path or not self.path.exists():
            return None
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sandbox state version in {self.path}")
        return data

    def start(self) -> None:
        if self.path and self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="sandbox-state-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.debounce):
            if self._dirty:
                self.flush()

    def mark_dirty(self) -> None:
        self._dirty = True

    def flush(self) -> None:
        if not self.path:
            self._dirty = False
            return
        with self.lock:
            self.state["clock_offset"] = self.clock.offset
            text = json.dumps(self.state, separators=(",", ":"), ensure_ascii=False)
            self._dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        try:
            os.chmod(self.path, 0o600)  # the token lives in here
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
            self._flusher = None
        self.flush()

    def reset(self) -> None:
        with self.lock:
            acct = self.state["account"]
            self.state = new_account(self.clock, acct["plan"], acct["seats"], acct["api_token"])
            self._blobs.clear()
            if self.blob_dir and self.blob_dir.exists():
                for p in self.blob_dir.iterdir():
                    p.unlink()
            self._dirty = True
        self.flush()

    # -- file bodies -------------------------------------------------------------------------------------
    def put_blob(self, file_id: int, data: bytes) -> None:
        if self.blob_dir is None:
            self._blobs[file_id] = data
            return
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.blob_dir / f".{file_id}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.blob_dir / str(file_id))

    def get_blob(self, file_id: int) -> bytes | None:
        if self.blob_dir is None:
            return self._blobs.get(file_id)
        p = self.blob_dir / str(file_id)
        return p.read_bytes() if p.exists() else None

    # -- helpers -----------------------------------------------------------------------------------------
    def take_id(self, kind: str) -> int:
        return _take_id(self.state, kind)

    def records(self, kind: str) -> dict[str, dict]:
        return self.state["records"][kind]

    def get(self, kind: str, rid: Any, include_deleted: bool = False) -> dict | None:
        try:
            rec = self.state["records"][kind].get(str(int(rid)))
        except (TypeError, ValueError):
            return None
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
