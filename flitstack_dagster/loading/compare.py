"""One field, expected vs actual, after Pipedrive's own normalisation.

Pipedrive sanitises note HTML, rounds money to cents, answers times with or without seconds and
timestamps in two formats (v1 "YYYY-MM-DD HH:MM:SS", v2 RFC 3339), and fills some fields itself
(won_time on a won deal). A value that differs only that way is a match, with a note saying which
normalisation made it one; anything else is a mismatch, and a value that did not arrive is missing.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MATCH, MISMATCH, MISSING = "match", "mismatch", "missing"

# standard API fields -> how to compare them
KINDS = {
    "add_time": "datetime", "won_time": "datetime", "lost_time": "datetime", "close_time": "datetime",
    "due_date": "date", "expected_close_date": "date", "due_time": "time", "duration": "time",
    "value": "money", "note": "html", "content": "html", "emails": "contacts", "phones": "contacts",
    "address": "address", "done": "bool", "busy": "bool", "label_ids": "set",
    "org_id": "ref", "person_id": "ref", "deal_id": "ref", "owner_id": "int", "pipeline_id": "int", "stage_id": "int",
    "rel_owner_org_id": "ref", "rel_linked_org_id": "ref", "file_size": "int",
}
# custom field types -> comparison kind
CUSTOM_KINDS = {
    "enum": "enum", "set": "set", "monetary": "monetary", "double": "number", "date": "date", "time": "time",
    "text": "html", "varchar": "text", "varchar_auto": "text", "phone": "text", "org": "ref", "people": "ref",
    "deal": "ref", "user": "int", "address": "address",
}
# fields Pipedrive fills itself when the request leaves them out
SERVER_FILLED = {"add_time", "won_time", "lost_time", "close_time", "update_time", "owner_id", "currency"}


@dataclass(frozen=True)
class Outcome:
    outcome: str
    note: str | None = None


def empty(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {}


def compare(kind: str, expected: Any, actual: Any, *, field: str = "") -> Outcome:
    """Compare one value; `kind` from KINDS / CUSTOM_KINDS ("text" when unknown)."""
    if empty(expected):
        if empty(actual) or (kind == "money" and _num(actual) == 0) or (kind == "bool" and actual is False):
            return Outcome(MATCH)
        if field in SERVER_FILLED:
            return Outcome(MATCH, "set by Pipedrive")
        return Outcome(MISMATCH)
    if empty(actual) and not (kind in ("money", "number") and actual == 0):
        return Outcome(MISSING)
    if expected == actual:
        return Outcome(MATCH)
    fn = _COMPARERS.get(kind, _text)
    try:
        return fn(expected, actual)
    except (TypeError, ValueError, AttributeError, KeyError):
        return Outcome(MISMATCH)


def _text(e: Any, a: Any) -> Outcome:
    if str(e) == str(a):
        return Outcome(MATCH)
    if _ws(str(e)) == _ws(str(a)):
        return Outcome(MATCH, "whitespace-normalised")
    return Outcome(MISMATCH)


def _html(e: Any, a: Any) -> Outcome:
    r = _text(e, a)
    if r.outcome == MATCH:
        return r
    if html_text(str(e)) == html_text(str(a)):
        return Outcome(MATCH, "html-sanitised")
    return Outcome(MISMATCH)


def _number(e: Any, a: Any) -> Outcome:
    x, y = _num(e), _num(a)
    return Outcome(MATCH) if abs(x - y) <= 1e-9 * max(1.0, abs(x)) else Outcome(MISMATCH)


def _money(e: Any, a: Any) -> Outcome:
    x, y = _num(e), _num(a)
    if x == y:
        return Outcome(MATCH)
    return Outcome(MATCH, "rounded to cents") if round(x, 2) == round(y, 2) else Outcome(MISMATCH)


def _monetary(e: Any, a: Any) -> Outcome:
    ev, av = (e.get("value"), e.get("currency")) if isinstance(e, dict) else (e, None)
    if not isinstance(a, dict):
        return Outcome(MISMATCH)
    if ev is None and a.get("value") is None:
        return Outcome(MATCH)
    if av is not None and a.get("currency") and av != a.get("currency"):
        return Outcome(MISMATCH)
    if ev is None or a.get("value") is None:
        return Outcome(MISSING if a.get("value") is None else MISMATCH)
    return _money(ev, a.get("value"))


def _int(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH) if int(e) == int(_ref_id(a)) else Outcome(MISMATCH)


def _ref(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH) if int(_ref_id(e)) == int(_ref_id(a)) else Outcome(MISMATCH)


def _enum(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH) if int(e) == int(a) else Outcome(MISMATCH)


def _set(e: Any, a: Any) -> Outcome:
    es = {int(x) for x in (e if isinstance(e, list) else [e])}
    acts = {int(x) for x in (a if isinstance(a, list) else str(a).split(","))}
    if es == acts:
        return Outcome(MATCH, None if list(e) == list(a) else "order-normalised")
    return Outcome(MISMATCH)


def _date(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH) if str(e)[:10] == str(a)[:10] else Outcome(MISMATCH)


def _time(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH, "seconds dropped") if _hhmm(e) == _hhmm(a) else Outcome(MISMATCH)


def _datetime(e: Any, a: Any) -> Outcome:
    x, y = parse_instant(e), parse_instant(a)
    if x is None or y is None:
        return _text(e, a)
    return Outcome(MATCH, "timestamp format") if x == y else Outcome(MISMATCH)


def _bool(e: Any, a: Any) -> Outcome:
    return Outcome(MATCH) if _truthy(e) == _truthy(a) else Outcome(MISMATCH)


def _contacts(e: Any, a: Any) -> Outcome:
    def norm(items: Any) -> list[tuple[str, str, bool]]:
        return sorted((_ws(str(i.get("value", ""))).lower(), str(i.get("label") or ""), bool(i.get("primary")))
                      for i in (items or []) if isinstance(i, dict))
    if norm(e) == norm(a):
        return Outcome(MATCH)
    if [v for v, _, _ in norm(e)] == [v for v, _, _ in norm(a)]:
        return Outcome(MATCH, "labels normalised")
    return Outcome(MISMATCH)


def _address(e: Any, a: Any) -> Outcome:
    ev = e.get("value") if isinstance(e, dict) else e
    av = a.get("value") if isinstance(a, dict) else a
    return _text(ev, av)


_COMPARERS = {
    "text": _text, "html": _html, "number": _number, "money": _money, "monetary": _monetary, "int": _int,
    "ref": _ref, "enum": _enum, "set": _set, "date": _date, "time": _time, "datetime": _datetime, "bool": _bool,
    "contacts": _contacts, "address": _address,
}


# -- normalisers ---------------------------------------------------------------------------------------

_BLOCK = re.compile(r"<\s*(br|/p|p|/div|div|li|/li|tr|/tr)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def html_text(s: str) -> str:
    """The text a reader sees: line breaks for block tags, other tags dropped, entities decoded."""
    s = _BLOCK.sub("\n", s)
    s = _TAG.sub("", s)
    s = html.unescape(s).replace("\xa0", " ")
    return "\n".join(_ws(line) for line in s.splitlines() if line.strip())


def _ws(s: str) -> str:
    return " ".join(s.split())


def _num(v: Any) -> float:
    if isinstance(v, dict):
        v = v.get("value")
    return float(v)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(v)


def _hhmm(v: Any) -> str:
    h, m, *_ = str(v).split(":")
    return f"{int(h):02d}:{int(m):02d}"


def _ref_id(v: Any) -> Any:
    if isinstance(v, dict):
        return v.get("value", v.get("id"))
    return v


def parse_instant(v: Any) -> datetime | None:
    """An instant from v1 ("2026-11-20 14:15:00", UTC) or v2 ("2026-11-20T14:15:00Z") text, to the second."""
    if isinstance(v, datetime):
        d = v
    else:
        s = str(v).strip().replace(" ", "T", 1)
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            d = datetime.fromisoformat(s)
        except ValueError:
            return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(UTC).replace(microsecond=0)


def display(v: Any) -> str | None:
    """How a value is shown in the diff: text as is, everything else as compact JSON."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
