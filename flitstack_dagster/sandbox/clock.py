"""The sandbox clock: real time plus a test-controlled offset.

Everything time-dependent in the sandbox (timestamps on records, the daily token budget, the 2-second
burst window, 403 blocks, fault latency excepted) reads this clock, so tests can jump ahead with
`advance(seconds)` or `next_day()` instead of sleeping. In a rehearsal (rehearsal.py) the product's
client takes its time from the same offset and moves it, through the admin side channel, whenever it
would wait: the plan's burst window and daily budget then pass on this clock, not in real time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


class Clock:
    def __init__(self, offset: float = 0.0) -> None:
        self._offset = float(offset)
        # rolling windows start from zero-valued state, so their time must never be negative: they
        # move with advance() but not with a start offset that puts "now" in the past
        self._start_offset = self._offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        """Wall-clock seconds since the epoch, shifted by the offset."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """Monotonic seconds, moved forward by every advance() (for rolling windows)."""
        return time.monotonic() + self._offset - self._start_offset

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def today(self) -> str:
        return self.now_dt().date().isoformat()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += float(seconds)

    def seconds_to_next_day(self) -> float:
        now = self.now_dt()
        midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
        return (midnight - now).total_seconds()

    def next_day(self) -> None:
        """Jump to one second past the next UTC midnight."""
        self.advance(self.seconds_to_next_day() + 1.0)
