"""Request values as Pipedrive's request schemas type them: integers that are not booleans, dates,
times, RFC 3339 timestamps, addresses and contacts, each checked into a 400 when wrong."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from flitstack_dagster.sandbox.errors import bad_request
from flitstack_dagster.sandbox.store import iso

ADDRESS_KEYS = {"value", "country", "admin_area_level_1", "admin_area_level_2", "locality", "sublocality",
                "route", "street_number", "subpremise", "postal_code"}


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_DATE_RX = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RX = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


def valid_time(v: Any, max_hours: int = 23) -> bool:
    """HH:MM[:SS] with minutes and seconds below 60; a duration may pass 23 hours, a time of day not."""
    m = _TIME_RX.match(v) if isinstance(v, str) else None
    return bool(m) and int(m[1]) <= max_hours and int(m[2]) < 60 and int(m[3] or 0) < 60


def valid_date(v: Any) -> bool:
    if not isinstance(v, str) or not _DATE_RX.match(v):
        return False
    try:
        date.fromisoformat(v)
        return True
    except ValueError:
        return False


def parse_ts(v: Any) -> float | None:
    """Accept RFC3339 (2021-01-01T00:00:00Z) and Pipedrive's 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not isinstance(v, str) or not v:
        return None
    s = v.strip().replace(" ", "T", 1)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ts = dt.timestamp()
        datetime.fromtimestamp(ts, tz=timezone.utc)  # a UTC offset can push it past year 1 or 9999
    except (ValueError, OverflowError, OSError):
        return None
    return ts


def check_type(name: str, kind: str, v: Any) -> Any:
    """Validate one body property; return the normalized value or raise 400."""
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if v is None:
        if nullable:
            return None
        raise bad_request(f"Invalid value for '{name}': must not be null")
    ok = True
    if kind == "str":
        ok = isinstance(v, str)
    elif kind == "int":
        ok = is_int(v)
    elif kind == "num":
        ok = is_num(v)
    elif kind == "bool":
        ok = isinstance(v, bool)
    elif kind == "int[]":
        ok = isinstance(v, list) and all(is_int(x) for x in v)
    elif kind == "obj":
        ok = isinstance(v, dict)
    elif kind == "obj[]":
        ok = isinstance(v, list) and all(isinstance(x, dict) for x in v)
    elif kind == "date":
        ok = valid_date(v)
    elif kind == "time":
        ok = valid_time(v)
    elif kind == "duration":
        ok = valid_time(v, max_hours=99)
    elif kind == "ts":
        ts = parse_ts(v)
        if ts is None:
            raise bad_request(f"Invalid value for '{name}': expected a timestamp like 2024-01-31T12:00:00Z")
        return iso(ts)
    elif kind == "address":
        ok = isinstance(v, dict) and set(v) <= ADDRESS_KEYS and all(
            isinstance(x, str) or x is None for x in v.values())
    elif kind == "contact[]":
        ok = isinstance(v, list) and all(
            isinstance(x, dict) and isinstance(x.get("value"), str)
            and set(x) <= {"value", "primary", "label"} for x in v)
        if ok:
            v = [{"value": x["value"], "primary": bool(x.get("primary", i == 0)), "label": x.get("label", "work")}
                 for i, x in enumerate(v)]
    elif kind == "marketing":
        ok = v in ("no_consent", "unsubscribed", "subscribed", "archived")
    elif kind == "deal_status":
        ok = v in ("open", "won", "lost")
    if not ok:
        raise bad_request(f"Invalid value for '{name}': expected {kind}")
    return v
