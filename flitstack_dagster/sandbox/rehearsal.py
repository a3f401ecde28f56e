"""Rehearsal mode: a real load against the sandbox on a simulated clock, so days of Pipedrive's daily
budget and its burst window pass in minutes.

The product's client never learns it talks to a sandbox: it takes its time from injectable functions
(`clock`, `sleep`, `wall_clock`), and `SimulatedTime` supplies them. Its `sleep` does not sleep: it asks
the sandbox's admin side channel to move the sandbox clock forward by the wait (and moves its own
reading with it), so a wait for the burst window or for the next budget day costs no real time.
`rehearse()` runs a load and, where a real migration would stop for the spent budget and resume the
next day, moves the simulated clock to the next day instead and carries on.

    sim = SimulatedTime.of(server)              # or SimulatedTime(base_url, admin_headers)
    client = PipedriveClient(url, token, plan="growth", seats=3, **sim.client_kwargs())
    days = rehearse(lambda: load(client), sim)  # the load must be resumable, as the real one is
    check_day_plan(server.usage()["tokens_by_day"], "growth", 3, reserve=0.1)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from flitstack_dagster.core.plans import find_plan
from flitstack_dagster.mapping.calendar import days_needed, usable_daily
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent

MAX_DAYS = 400  # a load that needs more simulated days than this does not finish: a bug, not a plan


class SimulatedTime:
    """The time of a rehearsal: real time plus the sandbox clock's offset, which only `sleep` moves.

    Several threads may wait at once (the client's concurrent requests): each wait moves the clock to
    the end of that wait, never by the sum of the waits, as real waits overlap; a wait that another
    one already moved the clock past costs nothing. `min_advance` (seconds) makes each move at least
    that long, so one move covers the paced waits of the requests right behind it: a long rehearsal
    then sends one clock move per several requests instead of one each, and its simulated time runs
    a little faster than the load's own pace (the budget days are what it checks)."""

    def __init__(self, base_url: str, admin_headers: Mapping[str, str], min_advance: float = 0.0) -> None:
        self._http = httpx.Client(base_url=base_url, headers=dict(admin_headers), timeout=30)
        self._lock = threading.Lock()
        self.min_advance = min_advance
        self.offset = float(self._clock("GET")["offset"])
        self.jumped = 0.0  # simulated seconds the waits skipped
        self.moves = 0  # clock moves sent to the sandbox

    @classmethod
    def of(cls, server: Any, min_advance: float = 0.0) -> "SimulatedTime":
        """For a `SandboxServer` (its admin channel takes the account's token)."""
        return cls(server.base_url, {"x-api-token": server.api_token}, min_advance)

    def _clock(self, method: str, body: dict | None = None) -> dict:
        r = self._http.request(method, "/_sandbox/clock", json=body)
        r.raise_for_status()
        return r.json()["data"]

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        until = self.monotonic() + seconds
        with self._lock:
            left = until - self.monotonic()
            if left <= 0:
                return  # a wait that ended later already moved the clock past this one's end
            step = max(left, self.min_advance)
            ahead = self._clock("POST", {"advance": step})
            self.jumped += step
            self.moves += 1
            self.offset = float(ahead["offset"])

    def sleep_until(self, moment: datetime) -> None:
        self.sleep(moment.timestamp() - self.time() + 1.0)

    def client_kwargs(self) -> dict[str, Callable]:
        """The keyword arguments that put a `PipedriveClient` on this time."""
        return {"clock": self.monotonic, "sleep": self.sleep, "wall_clock": self.time}

    def close(self) -> None:
        self._http.close()


def rehearse(load: Callable[[], Any], sim: SimulatedTime, max_days: int = MAX_DAYS) -> int:
    """Run `load` until it finishes; each time the daily budget stops it, move the simulated clock to
    the budget's reset and run it again (the load picks up where it stopped, as a resumed run does).
    Returns how many budget stops it took."""
    stops = 0
    while True:
        try:
            load()
            return stops
        except DailyBudgetSpent as stop:
            stops += 1
            if stops > max_days:
                raise
            resets = stop.resets_at or datetime.fromtimestamp(sim.time(), tz=UTC)
            sim.sleep_until(resets)


@dataclass(frozen=True)
class DayPlanCheck:
    days: int  # simulated days the load spent tokens on
    days_planned: int  # what the calendar says the tokens need
    usable_daily: int  # the budget less the reserve
    over: dict[str, int]  # days that spent more than the usable budget

    @property
    def ok(self) -> bool:
        # a day ends short of the usable budget by less than one request's cost, so the spend may
        # reach one day past the exact arithmetic's, never more
        return not self.over and self.days <= self.days_planned + 1


def check_day_plan(tokens_by_day: Mapping[str, int], plan: str, seats: int, reserve: float) -> DayPlanCheck:
    """The rehearsal's spend per simulated day against the migration calendar: no day over the usable
    budget, and the days the calendar plans for the tokens spent (see `ok`)."""
    p = find_plan(plan)
    if p is None:
        raise ValueError(f"unknown plan {plan!r}")
    usable = usable_daily(p, seats, reserve)
    spent = {day: t for day, t in sorted(tokens_by_day.items()) if t > 0}
    return DayPlanCheck(days=len(spent), days_planned=days_needed(sum(spent.values()), p, seats, reserve),
                        usable_daily=usable, over={d: t for d, t in spent.items() if t > usable})
