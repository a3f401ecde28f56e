"""PM recurrence -> occurrence dates inside the migration window, DST-correct in the tenant's zone.

Three styles, all normalised to one RFC 5545 RRULE (the "recurrence as structured text" the rebuild
reference shows):
- `rrule`: the Recurrence Rule column holds an RRULE (`FREQ=MONTHLY;BYDAY=1MO`, optionally with
  `RRULE:` prefix or a `DTSTART` line); it wins over Frequency/Every.
- `phrase`: the Recurrence Rule column holds an English phrase (older tenants): `Every 2 weeks on
  Monday`, `Monthly on day 15`, `Every 3 months`, `Daily`, `Every weekday`, `Every Monday and
  Thursday`, `Monthly on the first Monday`, `Quarterly`, `Yearly on March 15`, … (see
  `phrase_to_rrule`). A phrase it does not understand is **not guessed**: None, and the caller
  quarantines the schedule with its text.
- `frequency`: no rule; Frequency (`Daily|Weekly|Monthly|Yearly`) and Every (interval, default 1).

Occurrences are generated with python-dateutil from DTSTART = the schedule's Start Date (local
wall time, midnight unless the rule sets a time) and kept when their local date falls in
[window_start, window_end) and on/before End Date. Wall times are local: a 09:00 occurrence stays
09:00 in the tenant's zone across a DST change (its UTC time moves by an hour).
For speed, DTSTART is fast-forwarded by whole periods close to the window (implicit BY* parts made
explicit first, so the phase and the set of dates do not change); rules with COUNT are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

Style = Literal["rrule", "phrase", "frequency"]


@dataclass(frozen=True)
class Recurrence:
    style: Style
    rrule: str  # normalised RRULE body, e.g. "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"
    source_text: str  # what the export said
    dtstart_line: str | None = None  # an explicit DTSTART line given with the rule


@dataclass(frozen=True)
class Occurrence:
    local_date: date
    local_time: time | None  # None: an all-day occurrence
    utc: datetime | None  # the instant, for timed occurrences

    @property
    def utc_date(self) -> date:
        return self.utc.date() if self.utc else self.local_date


class RecurrenceError(ValueError):
    """A recurrence that cannot be read; the message quotes it."""


_FREQ = {"daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY", "yearly": "YEARLY", "annually": "YEARLY"}
_DAYS = {
    "monday": "MO", "mon": "MO", "tuesday": "TU", "tue": "TU", "tues": "TU", "wednesday": "WE", "wed": "WE",
    "thursday": "TH", "thu": "TH", "thur": "TH", "thurs": "TH", "friday": "FR", "fri": "FR",
    "saturday": "SA", "sat": "SA", "sunday": "SU", "sun": "SU",
}
_NUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "other": 2,
}
_ORD = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": -1}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_N = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|other)"
_DAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|rsday|urday|sday)?s?"


def _num(s: str | None) -> int:
    if not s:
        return 1
    return int(s) if s.isdigit() else _NUM[s]


def _days(text: str) -> list[str] | None:
    parts = [p for p in re.split(r"\s*(?:,|\band\b|&|/)\s*", text.strip()) if p]
    out = []
    for p in parts:
        p = p.rstrip("s") if p.rstrip("s") in _DAYS else p
        if p not in _DAYS:
            return None
        if _DAYS[p] not in out:
            out.append(_DAYS[p])
    return out or None


def _rule(freq: str, interval: int = 1, **by: str) -> str:
    parts = [f"FREQ={freq}"]
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    parts += [f"{k.upper()}={v}" for k, v in by.items()]
    return ";".join(parts)


def phrase_to_rrule(phrase: str) -> str | None:
    """An English recurrence phrase -> RRULE body, or None when it is not understood (not guessed)."""
    t = re.sub(r"\s+", " ", phrase.strip().lower()).rstrip(".")
    t = t.replace("bi-weekly", "biweekly").replace("semi-annually", "semiannually")
    simple = {
        "daily": _rule("DAILY"), "every day": _rule("DAILY"), "weekly": _rule("WEEKLY"), "every week": _rule("WEEKLY"),
        "biweekly": _rule("WEEKLY", 2), "monthly": _rule("MONTHLY"), "every month": _rule("MONTHLY"),
        "quarterly": _rule("MONTHLY", 3), "semiannually": _rule("MONTHLY", 6), "twice a year": _rule("MONTHLY", 6),
        "yearly": _rule("YEARLY"), "annually": _rule("YEARLY"), "every year": _rule("YEARLY"),
        "every weekday": _rule("WEEKLY", BYDAY="MO,TU,WE,TH,FR"), "weekdays": _rule("WEEKLY", BYDAY="MO,TU,WE,TH,FR"),
        "every business day": _rule("WEEKLY", BYDAY="MO,TU,WE,TH,FR"),
    }
    if t in simple:
        return simple[t]
    if m := re.fullmatch(rf"every {_N} days?", t):
        return _rule("DAILY", _num(m[1]))
    # weekly, optional days
    if m := re.fullmatch(rf"(?:weekly|biweekly|every week|every {_N} weeks?)(?: on (.+))?", t):
        interval = 2 if t.startswith("biweekly") else _num(m[1])
        if m[2] is None:
            return _rule("WEEKLY", interval)
        days = _days(m[2])
        return _rule("WEEKLY", interval, BYDAY=",".join(days)) if days else None
    if m := re.fullmatch(rf"every ({_DAY}(?:\s*(?:,|and|&)\s*{_DAY})*)", t):
        days = _days(m[1])
        return _rule("WEEKLY", BYDAY=",".join(days)) if days else None
    # monthly: on day N / on the Nth / on the last day / on the first Monday
    if m := re.fullmatch(rf"(?:monthly|quarterly|every month|every {_N} months?)(?: on (.+))?", t):
        interval = 3 if t.startswith("quarterly") else _num(m[1])
        if m[2] is None:
            return _rule("MONTHLY", interval)
        on = m[2].removeprefix("the ").strip()
        if d := re.fullmatch(r"(?:day )?(\d{1,2})(?:st|nd|rd|th)?(?: day)?", on):
            n = int(d[1])
            return _rule("MONTHLY", interval, BYMONTHDAY=str(n)) if 1 <= n <= 31 else None
        if on in ("last day", "last day of the month"):
            return _rule("MONTHLY", interval, BYMONTHDAY="-1")
        if d := re.fullmatch(rf"(first|1st|second|2nd|third|3rd|fourth|4th|last) ({_DAY})", on):
            days = _days(d[2])
            return _rule("MONTHLY", interval, BYDAY=f"{_ORD[d[1]]}{days[0]}") if days and len(days) == 1 else None
        return None
    if m := re.fullmatch(rf"(?:yearly|annually|every year|every {_N} years?)(?: on ([a-z]+) (\d{{1,2}})(?:st|nd|rd|th)?)?", t):
        interval = _num(m[1])
        if m[2] is None:
            return _rule("YEARLY", interval)
        if m[2] not in _MONTHS or not 1 <= int(m[3]) <= 31:
            return None
        return _rule("YEARLY", interval, BYMONTH=str(_MONTHS[m[2]]), BYMONTHDAY=m[3])
    return None


def parse_recurrence(rule_text: str | None, frequency: str | None, every: float | None) -> Recurrence:
    """Pick the style and normalise it to an RRULE. Raises RecurrenceError when it cannot."""
    text = (rule_text or "").strip()
    if text:
        if "FREQ=" in text.upper():
            dtstart_line = None
            body = None
            for line in re.split(r"[\r\n]+", text):
                line = line.strip()
                if line.upper().startswith("DTSTART"):
                    dtstart_line = line
                elif "FREQ=" in line.upper():
                    body = re.sub(r"^RRULE:", "", line, flags=re.I).strip().rstrip(";")
            if not body:
                raise RecurrenceError(f"recurrence rule '{text}' has no RRULE line")
            rec = Recurrence("rrule", body.upper(), text, dtstart_line)
            try:  # validate now, so an invalid RRULE is quarantined like an unreadable phrase
                rrulestr(_with_dtstart(rec, datetime(2000, 1, 1)), forceset=False)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise RecurrenceError(f"recurrence rule '{text}' is not a valid RRULE: {exc}") from exc
            _check_can_occur(rec.rrule, f"recurrence rule '{text}'")
            return rec
        r = phrase_to_rrule(text)
        if r is None:
            raise RecurrenceError(f"recurrence phrase '{text}' is not understood")
        _check_can_occur(r, f"recurrence phrase '{text}'")
        return Recurrence("phrase", r, text)
    f = (frequency or "").strip().lower()
    if f not in _FREQ:
        raise RecurrenceError(f"no recurrence: Frequency '{frequency or ''}' and no Recurrence Rule")
    n = 1 if every is None else every
    if n != int(n) or n < 1:
        raise RecurrenceError(f"Every '{every}' is not a positive whole number")
    return Recurrence("frequency", _rule(_FREQ[f], int(n)), f"{frequency} every {int(n)}")


# RRULE parts whose values must fall in these ranges (negative counts from the end) for a date to exist
_RANGES = {"BYMONTHDAY": 31, "BYMONTH": 12, "BYYEARDAY": 366, "BYWEEKNO": 53}


def _check_can_occur(body: str, what: str) -> None:
    """A rule that parses but can never produce a date (day 40, every 0 weeks, COUNT=0) is unreadable too:
    otherwise its schedule would silently yield no activity."""
    p = _parts(body)
    for key in ("INTERVAL", "COUNT"):
        if key in p and (not p[key].isdigit() or int(p[key]) < 1):
            raise RecurrenceError(f"{what} has {key}={p[key]}: no date can come of it")
    for key, top in _RANGES.items():
        for v in filter(None, p.get(key, "").split(",")):
            n = int(v) if re.fullmatch(r"[+-]?\d+", v) else 0
            if not (1 <= abs(n) <= top and (n > 0 or key != "BYMONTH")):
                raise RecurrenceError(f"{what} has {key}={v}: no date can come of it")


def _with_dtstart(rec: Recurrence, dtstart: datetime) -> str:
    if rec.dtstart_line:
        return f"{rec.dtstart_line}\nRRULE:{rec.rrule}"
    return f"DTSTART:{dtstart.strftime('%Y%m%dT%H%M%S')}\nRRULE:{rec.rrule}"


def _parts(body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in body.split(";"):
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k.strip().upper()] = v.strip()
    return out


def _fast_forward(body: str, dtstart: datetime, target: datetime) -> tuple[str, datetime]:
    """Move DTSTART by whole periods towards `target` without changing the set of occurrences."""
    p = _parts(body)
    freq = p.get("FREQ")
    if "COUNT" in p or freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY") or target <= dtstart:
        return body, dtstart
    try:
        n = int(p.get("INTERVAL", "1"))
    except ValueError:
        return body, dtstart
    if n < 1:
        return body, dtstart
    day_parts = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")
    tod = dtstart.time()
    if freq == "DAILY":
        k = (target - dtstart).days // n - 1
        return (body, dtstart + timedelta(days=k * n)) if k > 0 else (body, dtstart)
    if freq == "WEEKLY":
        if "BYDAY" not in p:
            p["BYDAY"] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][dtstart.weekday()]
        k = (target - dtstart).days // (7 * n) - 1
        if k <= 0:
            return body, dtstart
        new = dtstart + timedelta(days=7 * n * k)
    elif freq == "MONTHLY":
        if not any(x in p for x in day_parts):
            p["BYMONTHDAY"] = str(dtstart.day)
        months = (target.year - dtstart.year) * 12 + target.month - dtstart.month
        k = months // n - 1
        if k <= 0:
            return body, dtstart
        first = date(dtstart.year, dtstart.month, 1) + relativedelta(months=k * n)
        new = datetime.combine(first, tod)
    else:
        if not any(x in p for x in day_parts):
            p["BYMONTHDAY"] = str(dtstart.day)
            p.setdefault("BYMONTH", str(dtstart.month))
        k = (target.year - dtstart.year) // n - 1
        if k <= 0:
            return body, dtstart
        new = datetime.combine(date(dtstart.year + k * n, 1, 1), tod)
    if "BYHOUR" not in p and tod != time(0):
        p["BYHOUR"], p["BYMINUTE"], p["BYSECOND"] = str(tod.hour), str(tod.minute), str(tod.second)
    return ";".join(f"{k}={v}" for k, v in p.items()), new


def occurrences(
    rec: Recurrence,
    start: date,
    window_start: date,
    window_end: date,
    tz: str,
    end: date | None = None,
) -> list[Occurrence]:
    """Occurrences whose local date is in [window_start, window_end) and <= end (when given)."""
    zone = ZoneInfo(tz)
    last = window_end - timedelta(days=1)
    if end is not None:
        last = min(last, end)
    if last < window_start:
        return []
    lo = datetime.combine(window_start, time(0))
    hi = datetime.combine(last, time(23, 59, 59))
    try:
        if rec.dtstart_line:
            rule = rrulestr(_with_dtstart(rec, datetime.combine(start, time(0))))
            aware = getattr(rule, "_dtstart", None) is not None and rule._dtstart.tzinfo is not None
            if aware:
                lo_a, hi_a = lo.replace(tzinfo=zone) - timedelta(days=1), hi.replace(tzinfo=zone) + timedelta(days=1)
                raw = [d.astimezone(zone).replace(tzinfo=None) for d in rule.between(lo_a, hi_a, inc=True)]
            else:
                raw = rule.between(lo, hi, inc=True)
            timed = "T" in rec.dtstart_line.upper() and not rec.dtstart_line.upper().endswith("T000000")
        else:
            body = re.sub(r";UNTIL=(\d{8}(?:T\d{6})?)Z", r";UNTIL=\1", rec.rrule)
            body, dtstart = _fast_forward(body, datetime.combine(start, time(0)), lo)
            rule = rrulestr(f"DTSTART:{dtstart.strftime('%Y%m%dT%H%M%S')}\nRRULE:{body}")
            raw = rule.between(lo, hi, inc=True)
            parts = _parts(rec.rrule)
            timed = any(k in parts for k in ("BYHOUR", "BYMINUTE"))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RecurrenceError(f"recurrence '{rec.source_text}' cannot be expanded: {exc}") from exc
    out = []
    for d in raw:
        if not (window_start <= d.date() <= last):
            continue
        if timed:
            utc = d.replace(tzinfo=zone).astimezone(timezone.utc)
            out.append(Occurrence(d.date(), d.time(), utc))
        else:
            out.append(Occurrence(d.date(), None, None))
    return out


def window(exported_at: datetime, tz: str, days: int) -> tuple[date, date]:
    """The PM window: [local date of exported_at, + days) in the tenant's zone."""
    start = exported_at.astimezone(ZoneInfo(tz)).date()
    return start, start + timedelta(days=days)
