"""How values are written: the spec's allowed forms of dates, date-times, money, numbers, yes/no.

One `Fmt` per file, on that file's random stream: each file has a dominant date-time form and
mixes in the others, as real exports that went through spreadsheets do.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from datetime import date as calendar_date  # `date` is a method of Fmt
from zoneinfo import ZoneInfo

_DT_FORMS = ("slash_12h", "slash_24h", "slash_secs", "iso_space", "iso_t", "iso_z", "iso_offset")
_YES = ("Yes", "Y", "True", "1", "yes", "TRUE", "y")
_NO = ("No", "N", "False", "0", "no", "FALSE", "n")
NULLS = ("N/A", "n/a", "NULL", "-")


class Fmt:
    def __init__(self, rng: random.Random, date_order: str, tz: ZoneInfo):
        self.r = rng.random
        self.rng = rng
        self.dmy = date_order == "DMY"
        self.tz = tz
        self.dominant = _DT_FORMS[rng.randrange(len(_DT_FORMS))]
        self.slash_dates = rng.random() < 0.8  # most files write slash dates

    # -- dates -------------------------------------------------------------------------------
    def slash(self, y: int, m: int, d: int) -> str:
        return f"{d:02d}/{m:02d}/{y:04d}" if self.dmy else f"{m:02d}/{d:02d}/{y:04d}"

    def date(self, d: calendar_date | None) -> str:
        if d is None:
            return self.null()
        if self.slash_dates ^ (self.r() < 0.15):
            return self.slash(d.year, d.month, d.day)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"

    def dt(self, t: datetime | None) -> str:
        """`t` is a naive wall time in the tenant's zone."""
        if t is None:
            return self.null()
        form = self.dominant if self.r() < 0.7 else _DT_FORMS[int(self.r() * len(_DT_FORMS))]
        if form == "slash_12h":
            h = t.hour % 12 or 12
            return f"{self.slash(t.year, t.month, t.day)} {h}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"
        if form == "slash_24h":
            return f"{self.slash(t.year, t.month, t.day)} {t.hour:02d}:{t.minute:02d}"
        if form == "slash_secs":
            return f"{self.slash(t.year, t.month, t.day)} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        if form == "iso_space":
            return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"
        if form == "iso_t":
            return t.strftime("%Y-%m-%dT%H:%M:%S")
        aware = t.replace(tzinfo=self.tz)
        if form == "iso_z":
            return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return aware.isoformat(timespec="seconds")

    def time(self, t: datetime) -> str:
        if self.r() < 0.5:
            h = t.hour % 12 or 12
            return f"{h}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"
        return f"{t.hour:02d}:{t.minute:02d}"

    # -- numbers -----------------------------------------------------------------------------
    def money(self, x: float | None) -> str:
        if x is None:
            return self.null()
        neg = x < 0
        a = abs(x)
        u = self.r()
        if neg:
            return f"({a:,.2f})" if u < 0.5 else f"-{a:.2f}"
        if u < 0.4:
            return f"${a:,.2f}"
        if u < 0.75:
            return f"{a:.2f}"
        return f"{a:,.2f}"

    def num(self, x: float | None, places: int = 2) -> str:
        if x is None:
            return self.null()
        if isinstance(x, int) or float(x).is_integer():
            x = int(x)
            return f"{x:,}" if abs(x) >= 1000 and self.r() < 0.5 else str(x)
        s = f"{x:,.{places}f}" if abs(x) >= 1000 and self.r() < 0.5 else f"{x:.{places}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s

    def yesno(self, b: bool) -> str:
        u = self.r()
        if u < 0.6:
            return "Yes" if b else "No"
        pool = _YES if b else _NO
        return pool[int(self.r() * len(pool))]

    def null(self) -> str:
        return "" if self.r() < 0.9 else NULLS[int(self.r() * len(NULLS))]


def ambiguous_or_missing(t: datetime, tz: ZoneInfo) -> bool:
    """True for a wall time that does not exist (spring forward) or exists twice (fall back)."""
    a = t.replace(tzinfo=tz, fold=0)
    b = t.replace(tzinfo=tz, fold=1)
    return a.utcoffset() != b.utcoffset()


class Clock:
    """Random wall times (naive, tenant zone) inside a window, mostly during working hours."""

    def __init__(self, rng: random.Random, tz: ZoneInfo, lo_utc: datetime, hi_utc: datetime):
        self.rng = rng
        self.tz = tz
        self.lo = lo_utc.astimezone(tz).replace(tzinfo=None)
        self.hi = hi_utc.astimezone(tz).replace(tzinfo=None)
        self.span = (self.hi - self.lo).total_seconds()
        self._odd_hours: dict[tuple[int, int, int, int], bool] = {}

    def fix(self, t: datetime) -> datetime:
        if t < self.lo:
            t = self.lo + timedelta(minutes=1 + self.rng.random() * 30)
        if t > self.hi:
            t = self.hi - timedelta(minutes=1 + self.rng.random() * 30)
        key = (t.year, t.month, t.day, t.hour)
        bad = self._odd_hours.get(key)
        if bad is None:  # transitions fall on whole hours: one zoneinfo lookup per hour, then cached
            bad = self._odd_hours[key] = ambiguous_or_missing(t.replace(minute=0, second=0, microsecond=0),
                                                              self.tz) or ambiguous_or_missing(
                t.replace(minute=59, second=59, microsecond=0), self.tz)
        if bad:
            t = t + timedelta(hours=2) if t + timedelta(hours=2) <= self.hi else t - timedelta(hours=2)
        return t.replace(microsecond=0) if t.microsecond else t

    def between(self, a: datetime | None = None, b: datetime | None = None, work_hours: bool = True) -> datetime:
        a = self.lo if a is None or a < self.lo else a
        b = self.hi if b is None or b > self.hi else b
        if b <= a:
            return self.fix(a)
        t = a + timedelta(seconds=self.rng.random() * (b - a).total_seconds())
        if work_hours and self.rng.random() < 0.85:
            t2 = t.replace(hour=6 + int(self.rng.random() * 12), minute=int(self.rng.random() * 60),
                           second=int(self.rng.random() * 60))
            if a <= t2 <= b:
                t = t2
        return self.fix(t)

    def after(self, a: datetime, max_days: float, work_hours: bool = True) -> datetime:
        return self.between(a, min(self.hi, a + timedelta(days=max_days)), work_hours)
