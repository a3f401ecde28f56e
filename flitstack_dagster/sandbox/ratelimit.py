"""Token-based rate limits as Pipedrive applies them.

- every request spends its operation's `x-token-cost` (token_costs.csv, vendored from the official
  specs) against a daily company budget of 30,000 x plan multiplier x seats, reset at the next UTC day
  of the sandbox clock; past it every request gets 429 until the reset;
- a rolling 2-second burst limit per token (the plan's, from the one plan table;
  search endpoints 10);
- a client that keeps sending after repeated 429s is blocked with 403 for a while.

Signal modes: `documented` (the default) answers with only what Pipedrive documents: the
`x-ratelimit-limit / -remaining / -reset` and `x-daily-requests-left` headers, and a 429 with
`Retry-After` and Pipedrive's generic error body, for the burst window and for a spent daily budget
alike. `extended` (opt-in) also sends the sandbox's own insight: `x-daily-token-limit`,
`x-daily-tokens-left` and an error `code` telling the two 429s apart. No real account sends those.
"""

from __future__ import annotations

import csv
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from flitstack_dagster.core.plans import PLAN_TABLE

PLAN_MULTIPLIER = {p.name: p.multiplier for p in PLAN_TABLE}
BURST_LIMIT = {p.name: p.burst for p in PLAN_TABLE}
CUSTOM_FIELD_CAP = {p.name: p.field_cap for p in PLAN_TABLE}
SEARCH_BURST_LIMIT = 10
BURST_WINDOW = 2.0
DAILY_BASE = 30_000
SIGNAL_MODES = ("documented", "extended")


def check_signals(mode: str) -> str:
    if mode not in SIGNAL_MODES:
        raise ValueError(f"signals must be one of {', '.join(SIGNAL_MODES)}")
    return mode


@dataclass(frozen=True)
class Operation:
    api: str  # v1 / v2
    method: str
    template: str  # /v1/notes/{id}, /api/v2/deals/{id}
    cost: int
    operation_id: str
    regex: re.Pattern

    @property
    def is_search(self) -> bool:
        return "search" in self.template.lower()


def _compile(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile("^" + rx + "/?$")


def load_costs(path: Path | None = None) -> list[Operation]:
    path = path or Path(__file__).with_name("token_costs.csv")
    ops: list[Operation] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tpl = row["path"]
            if row["api_version"] == "v2" and not tpl.startswith("/api/"):
                tpl = "/api" + tpl
            ops.append(Operation(row["api_version"], row["method"].upper(), tpl, int(row["x_token_cost"]),
                                 row["operationId"], _compile(tpl)))
    # literal segments win over {params}: /v1/users/me before /v1/users/{id}
    ops.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
    return ops


class CostTable:
    def __init__(self, path: Path | None = None) -> None:
        self.ops = load_costs(path)
        # by method and segment count: a request tries a handful of templates, not all of them
        self._by_shape: dict[tuple[str, int], list[Operation]] = {}
        for op in self.ops:
            self._by_shape.setdefault((op.method, op.template.strip("/").count("/")), []).append(op)

    def match(self, method: str, path: str) -> Operation | None:
        if path.startswith("/api/v1/"):
            path = path[4:]
        for op in self._by_shape.get((method, path.strip("/").count("/")), ()):
            if op.regex.match(path):
                return op
        return None


class RateLimiter:
    def __init__(self, clock, block_after: int = 20, block_window: float = 10.0, block_seconds: float = 60.0):
        self.clock = clock
        self.lock = threading.Lock()
        self.general: deque[float] = deque()
        self.search: deque[float] = deque()
        self.recent_429: deque[float] = deque()
        self.blocked_until = 0.0
        self.block_after = block_after
        self.block_window = block_window
        self.block_seconds = block_seconds

    def reset(self) -> None:
        with self.lock:
            self.general.clear()
            self.search.clear()
            self.recent_429.clear()
            self.blocked_until = 0.0

    @staticmethod
    def _trim(q: deque, now: float) -> None:
        while q and q[0] <= now - BURST_WINDOW:
            q.popleft()

    def blocked_for(self) -> float:
        now = self.clock.monotonic()
        with self.lock:
            return max(0.0, self.blocked_until - now)

    def note_429(self) -> bool:
        """Record a 429; True when the client just earned a block."""
        now = self.clock.monotonic()
        with self.lock:
            self.recent_429.append(now)
            while self.recent_429 and self.recent_429[0] <= now - self.block_window:
                self.recent_429.popleft()
            if len(self.recent_429) >= self.block_after:
                self.blocked_until = now + self.block_seconds
                self.recent_429.clear()
                return True
        return False

    def try_acquire(self, plan: str, search: bool) -> tuple[bool, int, int, float]:
        """-> (allowed, limit, remaining, reset_seconds); for a search the limit is the search one.

        A request is counted when it arrives, in a rolling window of the last 2 s (one counted at t
        leaves the window at t + 2 s); a refused request is not counted. A search needs room in the
        search window and in the general one (it counts against both), so the general window never
        holds more than the plan's limit; its `remaining` is the smaller of the two."""
        now = self.clock.monotonic()
        general_limit = BURST_LIMIT[plan]
        with self.lock:
            self._trim(self.general, now)
            windows = [(self.general, general_limit)]
            if search:
                self._trim(self.search, now)
                windows.insert(0, (self.search, SEARCH_BURST_LIMIT))
            head = windows[0][1]
            for q, limit in windows:
                if len(q) >= limit:
                    return False, head, 0, max(q[0] + BURST_WINDOW - now, 0.0)
            for q, _ in windows:
                q.append(now)
            remaining = min(limit - len(q) for q, limit in windows)
            reset = min(q[0] + BURST_WINDOW - now for q, _ in windows)
            return True, head, remaining, max(reset, 0.0)

    def peek(self, plan: str, search: bool) -> tuple[int, int, float]:
        """-> (limit, remaining, reset_seconds) of the burst window now, counting nothing (for the
        headers of a request refused for another reason)."""
        now = self.clock.monotonic()
        with self.lock:
            windows = [(self.general, BURST_LIMIT[plan])]
            if search:
                windows.insert(0, (self.search, SEARCH_BURST_LIMIT))
            for q, _ in windows:
                self._trim(q, now)
            remaining = max(0, min(limit - len(q) for q, limit in windows))
            reset = min((q[0] + BURST_WINDOW - now for q, _ in windows if q), default=BURST_WINDOW)
            return windows[0][1], remaining, max(reset, 0.0)


def daily_budget(plan: str, seats: int) -> int:
    return DAILY_BASE * PLAN_MULTIPLIER[plan] * max(1, int(seats))
