"""Client-side rate limiting for Pipedrive: stay under the burst limit, never wait on 429s.

Burst limit: a rolling 2-second window per API token, sized from the plan (core/plans.py; search
endpoints 10, which also count against the general window). The limiter hands out slots before each
request:

- Pipedrive counts a request when it arrives. A slot is stamped with the latest moment that can be:
  the moment the request is written to the connection (`mark_sent`) plus `arrival_margin`, or the
  response time if the response is back sooner. The slot frees 2 s after its stamp, so the server
  never sees more than `limit` requests in any 2 s. What the margin must cover is how much later one
  request can be counted than another after leaving (network jitter, a busy server): it starts at
  0.05 s (the client loses ~2.5% of each window). A burst 429 (the server counted a request later
  than the model assumed) widens it by half that, up to 0.5 s, moves the slots in the window out
  with it and pauses every slot for one margin; the refused request itself waits its Retry-After.
  After 120 s without a burst 429 the margin steps back towards the start. With `pace=True` (the
  client's setting) slots are also granted no closer together than 2 s / limit, so requests reach
  the server evenly instead of in one burst per window that queues there (and is counted late);
  after an idle spell (between two entities) the pace resumes without a catch-up burst.
  `arrival_margin=None` stamps at the response time: safe on any network, at the price of the
  server's processing time per slot. One limiter can serve several clients (one per Dagster run);
- every response's `x-ratelimit-limit / -remaining / -reset` headers correct the model: a different
  limit replaces the plan's, and requests the server counted that this client did not send (another
  process with the same token) occupy slots until the server's reset.

Daily budget: 30,000 x plan multiplier (core/plans.py) x seats tokens per company per day, shared by
every integration. Pipedrive sends no header with the tokens left, so the limiter counts the tokens this client spends (per the operation's `x-token-cost`) and raises
DailyBudgetSpent *before* a request would spend into the reserve (`daily_reserve_fraction` of the
budget). Once the company's budget is spent Pipedrive answers every request with 429 until the next
UTC day; `budget_refusal` tells that 429 from a burst one by documented signals only
(`x-daily-requests-left: 0`, or a `Retry-After` reaching the next UTC midnight), and after one the
limiter refuses further requests until the reset (next UTC midnight, of `wall_clock`). A server that
also sends `x-daily-token-limit / x-daily-tokens-left` (the sandbox's `extended` signals) sharpens the
reserve with them — counting the requests still in flight, which its last figure does not include —
but nothing depends on them.

In flight: `InFlightGate` caps the requests in flight at what Little's law says the burst limit
needs (in flight = rate x latency, rate = limit / 2 s), from the latency the client measures, with
headroom; more would only queue in the limiter and add jitter to when requests leave.

`clock` (monotonic seconds), `sleep` and `wall_clock` (epoch seconds) are injectable for tests.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flitstack_dagster.core.plans import PLAN_TABLE, find_plan, plans_form

from .errors import DailyBudgetSpent

log = logging.getLogger(__name__)

PLAN_BURST = {p.name: p.burst for p in PLAN_TABLE}
SEARCH_BURST = 10
WINDOW_SECONDS = 2.0
PLAN_MULTIPLIER = {p.name: p.multiplier for p in PLAN_TABLE}
# How often a waiter re-checks when every slot is held by a request still in flight.
POLL_SECONDS = 0.01
ARRIVAL_MARGIN = 0.05  # starting margin (s); see the module docstring
MAX_ARRIVAL_MARGIN = 0.5
MARGIN_QUIET_SECONDS = 120.0  # a widened margin steps back after this long without a burst 429
LATENCY_SAMPLES = 200  # round trips per operation the quickest one is taken from (_late_stamp)
MIN_LATENCY_SAMPLES = 8
LATE_COUNT_SLACK = 0.01  # added to a late stamp: the quickest request's own wait before its count
# A burst window is 2 s: a 429 asking for a longer wait than this is not about the burst window.
BURST_RETRY_AFTER_MAX = 60.0
# How far apart the client's and Pipedrive's clocks may be when a Retry-After is held against midnight.
CLOCK_SKEW_SECONDS = 300.0


def normalize_plan(plan: str) -> str:
    """The plan's current name (an older name is taken as the plan it stands for)."""
    found = find_plan(plan)
    if found is None:
        raise ValueError(f"unknown Pipedrive plan {plan!r}; expected {plans_form()}")
    return found.name


def daily_budget(plan: str, seats: int) -> int:
    """Tokens per day for the company: 30,000 x plan multiplier x seats."""
    return find_plan(normalize_plan(plan)).daily_budget(seats)


class _Slot:
    __slots__ = ("stamp", "sent")

    def __init__(self, stamp: float, sent: float = 0.0) -> None:
        self.stamp = stamp  # when the server counted (at the latest) this request
        self.sent = sent  # when it left (its grant until mark_sent)


class _Window:
    """One rolling window of slots, plus phantom slots for requests the server saw from elsewhere.

    A slot's stamp is the latest moment the server can have counted its request: the send time plus
    `arrival_margin` (upper bound on the one-way delay to the server), lowered to the response time
    when the response is back earlier. With arrival_margin=None the stamp is the response time
    (always safe, whatever the network). A slot frees `window` seconds after its stamp.
    """

    def __init__(self, name: str, limit: int, window: float) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self.slots: list[_Slot] = []
        self.phantoms: list[float] = []  # expiry times
        self.blocked_until = 0.0  # after a 429/403: no slot before this (headers do not lift it)

    def prune(self, now: float) -> None:
        # slots stay listed a little past their window, so an answer can be checked against what
        # was in the window when its request left (see RateLimiter._observe_locked)
        edge = now - self.window - HISTORY_SECONDS
        if any(s.stamp <= edge for s in self.slots):
            self.slots = [s for s in self.slots if s.stamp > edge]
        if self.phantoms:
            self.phantoms = [t for t in self.phantoms if t > now]

    def live(self, now: float) -> list[_Slot]:
        """The slots still in the window at `now`."""
        self.prune(now)
        edge = now - self.window
        return [s for s in self.slots if s.stamp > edge]

    def used(self, now: float) -> int:
        return len(self.live(now)) + len(self.phantoms)

    def held_at(self, at: float) -> int:
        """This client's requests the model says may be in the server's window at `at`: sent by then
        and stamped (the latest they can have been counted) after `at` - 2 s."""
        edge = at - self.window
        return sum(1 for s in self.slots if s.sent <= at and s.stamp > edge)

    def wait_time(self, now: float) -> float:
        """0 when a slot is free now; else the time until one frees (or a short poll)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        used = self.used(now)
        if used < self.limit:
            return 0.0
        need = used - self.limit + 1
        expiries = sorted([s.stamp + self.window for s in self.live(now) if s.stamp != INF] + self.phantoms)
        if need <= len(expiries):
            return max(expiries[need - 1] - now, 1e-4)
        return POLL_SECONDS  # only requests still in flight would free a slot: re-check soon


INF = float("inf")
HISTORY_SECONDS = 2.0  # how long past its window a slot stays listed (longer than answers take)


@dataclass
class Ticket:
    """A granted slot; hand it back with RateLimiter.release."""

    slots: list[tuple[_Window, _Slot]]
    cost: int
    operation: str
    released: bool = field(default=False)

    @property
    def windows(self) -> list[_Window]:
        return [w for w, _ in self.slots]


def _parse_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def retry_after_seconds(headers) -> float | None:
    """The 429's `Retry-After` in seconds (Pipedrive sends a number of seconds), or None."""
    wait = _parse_float(headers.get("retry-after"))
    return None if wait is None else max(0.0, wait)


class RateLimiter:
    def __init__(
        self,
        plan: str = "growth",
        seats: int | None = None,
        *,
        daily_reserve_fraction: float = 0.0,
        window_seconds: float = WINDOW_SECONDS,
        burst_limit: int | None = None,
        search_limit: int = SEARCH_BURST,
        arrival_margin: float | None = ARRIVAL_MARGIN,
        max_arrival_margin: float = MAX_ARRIVAL_MARGIN,
        margin_quiet_seconds: float = MARGIN_QUIET_SECONDS,
        pace: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 <= daily_reserve_fraction < 1.0:
            raise ValueError("daily_reserve_fraction must be in [0, 1)")
        self.plan = normalize_plan(plan)
        self.seats = seats
        self.arrival_margin = arrival_margin
        self.base_arrival_margin = arrival_margin or 0.0
        self.margin_quiet_seconds = margin_quiet_seconds
        self.max_arrival_margin = max(max_arrival_margin, arrival_margin or 0.0)
        self.pace = pace
        self._next_send = 0.0  # pacing: the earliest moment the next slot may be granted
        self._margin_raised_at: float | None = None
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.general = _Window("general", burst_limit or PLAN_BURST[self.plan], window_seconds)
        self.search = _Window("search", search_limit, window_seconds)
        self.daily_reserve_fraction = daily_reserve_fraction
        self.daily_budget: int | None = daily_budget(self.plan, seats) if seats else None
        self.reserve = round((self.daily_budget or 0) * daily_reserve_fraction)
        self.spent_today = 0
        self.in_flight_tokens = 0  # granted, not answered yet: not in the server's tokens-left figure
        self._day = self._today()
        self._server_exhausted_day: str | None = None
        # the server's own count (x-daily-tokens-left / x-daily-token-limit), when it sends one (Pipedrive
        # does not; the sandbox's extended signals do): it includes what other integrations spent
        self.server_tokens_left: int | None = None
        self._server_left_day: str | None = None
        self._lock = threading.Lock()
        self._latencies: dict[str, deque[float]] = {}  # recent round trips per operation (_late_stamp)
        self.waited_seconds = 0.0  # total time callers spent waiting for a slot

    # -- daily budget -----------------------------------------------------------------------------

    def _now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), tz=UTC)

    def _today(self) -> str:
        return self._now_dt().date().isoformat()

    def resets_at(self) -> datetime:
        now = self._now_dt()
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            log.info("Pipedrive daily token budget reset (new day %s); %s tokens were spent", today,
                     self.spent_today)
            self._day = today
            self.spent_today = 0
            self._server_exhausted_day = None
            self.server_tokens_left = None
            self._server_left_day = None

    @property
    def usable_budget(self) -> int | None:
        return None if self.daily_budget is None else self.daily_budget - self.reserve

    def remaining_today(self) -> int | None:
        with self._lock:
            self._roll_day()
            usable = self.usable_budget
            return None if usable is None else max(0, usable - self.spent_today)

    def _budget_error(self, source: str, operation: str | None) -> DailyBudgetSpent:
        return DailyBudgetSpent(
            spent=self.spent_today,
            budget=self.daily_budget,
            reserve=self.reserve,
            resets_at=self.resets_at(),
            now=self._now_dt(),
            source=source,
            operation=operation,
            company_tokens_left=self.server_tokens_left if self._server_left_day == self._day else None,
        )

    def check_budget(self, cost: int, operation: str | None = None) -> None:
        """Raise DailyBudgetSpent if spending `cost` tokens now would cut into the reserve."""
        with self._lock:
            self._check_budget_locked(cost, operation)

    def _check_budget_locked(self, cost: int, operation: str | None) -> None:
        self._roll_day()
        if self._server_exhausted_day == self._day:
            raise self._budget_error("server", operation)
        usable = self.usable_budget
        if usable is not None and self.spent_today + cost > usable:
            raise self._budget_error("client", operation)
        if (self.server_tokens_left is not None and self._server_left_day == self._day
                and self.server_tokens_left - self.in_flight_tokens - cost < self.reserve):
            raise self._budget_error("client", operation)

    def budget_refusal(self, headers) -> bool:
        """Whether a 429 with these headers refuses for the spent daily budget rather than the burst
        window, by what Pipedrive documents: no requests left today, or a wait reaching the next
        UTC day. Anything else is a burst 429."""
        left = _parse_float(headers.get("x-daily-requests-left"))
        if left is not None and left <= 0:
            return True
        wait = retry_after_seconds(headers)
        if wait is None or wait <= BURST_RETRY_AFTER_MAX:
            return False
        now = self._now_dt()
        return now + timedelta(seconds=wait + CLOCK_SKEW_SECONDS) >= self.resets_at()

    def server_budget_spent(self, operation: str | None = None) -> DailyBudgetSpent:
        """The server said 429 for the daily budget: refuse requests until the reset."""
        with self._lock:
            self._roll_day()
            self._server_exhausted_day = self._day
            return self._budget_error("server", operation)

    # -- burst window ------------------------------------------------------------------------------

    def acquire(self, cost: int = 1, *, search: bool = False, operation: str = "") -> Ticket:
        """Block until a burst slot is free, then charge `cost` tokens; DailyBudgetSpent if none left."""
        windows = [self.general, self.search] if search else [self.general]
        while True:
            with self._lock:
                self._check_budget_locked(cost, operation)
                now = self.clock()
                wait = max(w.wait_time(now) for w in windows)
                if self.pace:
                    if not self._next_send:
                        self._next_send = now  # the first request: nothing to catch up on
                    wait = max(wait, self._next_send - now)
                if wait <= 0:
                    self._relax_margin_locked(now)
                    if self.pace:
                        # a late wake-up may catch up one interval, never more: after an idle spell (the
                        # next entity's start) requests resume at the even pace instead of in a burst
                        # that queues at the server and is counted late
                        interval = self.general.window / self.general.limit
                        self._next_send = max(now - interval, self._next_send) + interval
                    stamp = INF if self.arrival_margin is None else now + self.arrival_margin
                    slots = []
                    for w in windows:
                        slot = _Slot(stamp, now)
                        w.slots.append(slot)
                        slots.append((w, slot))
                    self.spent_today += cost
                    self.in_flight_tokens += cost
                    return Ticket(slots=slots, cost=cost, operation=operation)
            self.waited_seconds += wait
            self.sleep(wait)

    @property
    def _margin_step(self) -> float:
        return max(self.base_arrival_margin / 2, 0.01)

    def _relax_margin_locked(self, now: float) -> None:
        """A widened margin steps back towards the starting one after `margin_quiet_seconds` without a
        burst 429: one late count (a CPU spike on either side) should not cost a long load ~1% for good."""
        if (self.arrival_margin is None or self.arrival_margin <= self.base_arrival_margin
                or self._margin_raised_at is None or now - self._margin_raised_at < self.margin_quiet_seconds):
            return
        old = self.arrival_margin
        self.arrival_margin = max(self.base_arrival_margin, old - self._margin_step)
        self._margin_raised_at = now  # the next step back needs another quiet spell
        log.info("Pipedrive burst window quiet for %.0f s: arrival margin %.3f -> %.3f s",
                 self.margin_quiet_seconds, old, self.arrival_margin)

    def mark_sent(self, ticket: Ticket) -> None:
        """The request is leaving now (not when its slot was granted): stamp its slots from here."""
        if ticket.released:
            return
        with self._lock:
            now = self.clock()
            for _w, slot in ticket.slots:
                slot.sent = now
                if self.arrival_margin is not None:
                    slot.stamp = max(slot.stamp, now + self.arrival_margin)

    def burst_refused(self, *, search: bool = False) -> None:
        """The server answered 429 for the 2-s window: it counted a request later than the model
        assumed, so the arrival margin was too small for this network. Widen it by half the starting
        margin (once per refusal event, up to the max; doubling would give up ~2.5% of every later
        window for one late count), move the slots still in the window out by the same amount so the
        model agrees with the new margin at once, and hold every slot for one margin: time for the
        request the server counted late to leave its window. The refused request keeps its slot
        (the server did not count it, but it stands in for the one the model missed)."""
        with self._lock:
            now = self.clock()
            w = self.search if search else self.general
            if self.arrival_margin is None:
                return  # slots already count from the answer: nothing to widen
            if self._margin_raised_at is None or now - self._margin_raised_at >= self.general.window:
                self._margin_raised_at = now  # several in-flight requests refused together: one event
                old = self.arrival_margin
                self.arrival_margin = min(self.max_arrival_margin, old + self._margin_step)
                bump = self.arrival_margin - old
                if bump > 0:
                    for win in (self.general, self.search):
                        for slot in win.live(now):
                            if slot.stamp != INF:
                                slot.stamp += bump
                    log.info("Pipedrive burst 429: arrival margin %.3f -> %.3f s", old, self.arrival_margin)
            w.blocked_until = max(w.blocked_until, now + self.arrival_margin)

    def release(self, ticket: Ticket, headers: dict[str, str] | None = None, *, answered: bool = False) -> None:
        """The request's answer (or failure) is back: its slot counts from this moment at the latest.

        `answered`: a full answer (not a refusal): its round trip is timed against the quickest one of
        the same operation, and a slow one moves the slot's stamp out by the difference (see
        `_late_stamp`), since whatever held the answer up may have held up the counting too."""
        if ticket.released:
            return
        with self._lock:
            ticket.released = True
            self.in_flight_tokens = max(0, self.in_flight_tokens - ticket.cost)
            now = self.clock()
            late = self._late_stamp(ticket, now) if answered else None
            for _w, slot in ticket.slots:
                slot.stamp = min(slot.stamp, now)
                if late is not None and late > slot.stamp:
                    slot.stamp = late
            if headers:
                w, slot = ticket.slots[-1]
                self._observe_locked(w, headers, now, slot.sent)

    def _late_stamp(self, ticket: Ticket, now: float) -> float | None:
        """The latest moment the server can have counted this request, judged by its round trip.

        A round trip is the time to get counted plus the time from count to answer. The quickest
        round trip of the operation lately (`LATENCY_SAMPLES` answers) had next to no wait before
        the count; taking its count-to-answer time as everyone's, a request that came back X s slower
        was counted up to X s late: a stalled server (or a CPU-starved one) shows up here about
        150 ms after the send, long before the slot would free at send + 2 s + margin. Only ever moves
        a stamp later (up to the answer itself), so it can slow the limiter down, never cause a 429."""
        if self.arrival_margin is None:
            return None  # the slot already counts from the answer
        sent = ticket.slots[0][1].sent
        took = now - sent
        if took <= 0:
            return None
        samples = self._latencies.setdefault(ticket.operation, deque(maxlen=LATENCY_SAMPLES))
        samples.append(took)
        if len(samples) < MIN_LATENCY_SAMPLES:
            return None
        excess = took - min(samples)
        if excess <= self.arrival_margin:
            return None
        return min(now, sent + excess + LATE_COUNT_SLACK)

    def refund(self, ticket: Ticket) -> None:
        """The request never left (connection refused): free the slot and the tokens."""
        if ticket.released:
            return
        with self._lock:
            ticket.released = True
            self.in_flight_tokens = max(0, self.in_flight_tokens - ticket.cost)
            for w, slot in ticket.slots:
                if slot in w.slots:
                    w.slots.remove(slot)
            self.spent_today = max(0, self.spent_today - ticket.cost)

    def refund_tokens(self, ticket: Ticket) -> None:
        """The server refused the request (429) and charged nothing for it."""
        with self._lock:
            self.spent_today = max(0, self.spent_today - ticket.cost)

    def _observe_daily_locked(self, headers) -> None:
        limit = _parse_float(headers.get("x-daily-token-limit"))
        left = _parse_float(headers.get("x-daily-tokens-left"))
        self._roll_day()
        if limit is not None and limit > 0 and self.daily_budget is None:
            self.daily_budget = int(limit)
            self.reserve = round(self.daily_budget * self.daily_reserve_fraction)
            log.info("Pipedrive reports a daily budget of %d tokens; reserve %d", self.daily_budget, self.reserve)
        if left is not None:
            left_i = int(left)
            if self._server_left_day == self._day and self.server_tokens_left is not None:
                # answers arrive out of order under concurrency: the lowest figure is the latest
                left_i = min(left_i, self.server_tokens_left)
            self.server_tokens_left = left_i
            self._server_left_day = self._day

    def _observe_locked(self, w: _Window, headers, now: float, sent: float | None = None) -> None:
        self._observe_daily_locked(headers)
        limit = _parse_float(headers.get("x-ratelimit-limit"))
        remaining = _parse_float(headers.get("x-ratelimit-remaining"))
        reset = _parse_float(headers.get("x-ratelimit-reset"))
        if limit is not None and limit >= 1 and int(limit) != w.limit:
            log.info("Pipedrive reports a %s burst limit of %d per %.0f s (configured %d); using it",
                     w.name, int(limit), w.window, w.limit)
            w.limit = int(limit)
        if remaining is None:
            return
        # what the server's window held when it counted this request, against what the model held
        # when the request left: more means another process with the same token (or one of ours
        # counted later than its margin); those occupy slots until the server's reset
        w.prune(now)
        server_used = w.limit - int(remaining)
        own = w.held_at(sent) if sent is not None else len(w.live(now))
        extra = server_used - own
        if extra > 0:
            expiry = now + (reset if reset is not None and reset >= 0 else w.window)
            w.phantoms = [expiry] * extra
        else:
            w.phantoms = []

    def block_for(self, seconds: float, *, search: bool = False) -> None:
        """Hold every slot for `seconds` (after a 429/403 the server told us to wait)."""
        with self._lock:
            now = self.clock()
            w = self.search if search else self.general
            w.blocked_until = max(w.blocked_until, now + seconds)

    def snapshot(self) -> dict:
        with self._lock:
            now = self.clock()
            return {
                "plan": self.plan,
                "burst_limit": self.general.limit,
                "search_limit": self.search.limit,
                "in_window": self.general.used(now),
                "daily_budget": self.daily_budget,
                "reserve": self.reserve,
                "spent_today": self.spent_today,
                "arrival_margin": self.arrival_margin,
            }


def in_flight_for(limit: int, latency: float, window: float = WINDOW_SECONDS, headroom: float = 1.5,
                  floor: int = 4) -> int:
    """Little's law: requests in flight = rate x latency (rate = limit per window), with headroom for
    latency spread, at least `floor` and never more than `limit` (each in-flight request holds a slot)."""
    need = math.ceil(limit / window * max(latency, 0.0) * headroom) + 2
    return max(1, min(limit, max(floor, need)))


class InFlightGate:
    """How many requests may be in flight at once: fixed (`fixed`), or sized by Little's law from
    the measured latency (an exponentially weighted mean; until the first answer, `initial_latency`)."""

    def __init__(self, limit: int, *, fixed: int | None = None, initial_latency: float = 0.5,
                 window: float = WINDOW_SECONDS, smoothing: float = 0.1) -> None:
        self.limit, self.fixed, self.window, self.smoothing = limit, fixed, window, smoothing
        self.latency = initial_latency
        self.in_flight = 0
        self._cond = threading.Condition()

    @property
    def capacity(self) -> int:
        if self.fixed is not None:
            return self.fixed
        return in_flight_for(self.limit, self.latency, self.window)

    @property
    def max_capacity(self) -> int:
        """The most the gate can ever allow (worker threads beyond this would only wait)."""
        return self.fixed if self.fixed is not None else max(self.limit, 4)

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self.limit = limit
            self._cond.notify_all()

    def __enter__(self) -> InFlightGate:
        with self._cond:
            while self.in_flight >= self.capacity:
                self._cond.wait(0.5)
            self.in_flight += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def observe(self, seconds: float) -> None:
        """One request's latency (send to answer)."""
        with self._cond:
            before = self.capacity
            self.latency += self.smoothing * (seconds - self.latency)
            if self.capacity > before:
                self._cond.notify_all()
