"""The sandbox's 2-second burst window as the spec states it: rolling, counted on arrival, searches
count against the general window too (unit level, a hand-driven clock)."""

from __future__ import annotations

from flitstack_dagster.sandbox.ratelimit import BURST_LIMIT, SEARCH_BURST_LIMIT, RateLimiter


class HandClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


def test_a_search_needs_room_in_the_general_window_too():
    clock = HandClock()
    rl = RateLimiter(clock)
    for _ in range(BURST_LIMIT["lite"]):
        assert rl.try_acquire("lite", search=False)[0]
    allowed, limit, remaining, _ = rl.try_acquire("lite", search=True)
    assert (allowed, limit, remaining) == (False, SEARCH_BURST_LIMIT, 0)
    assert len(rl.general) == BURST_LIMIT["lite"]  # never more than the plan allows
    assert len(rl.search) == 0  # a refused search is not counted either


def test_a_search_counts_in_both_windows_and_reports_the_tighter_remaining():
    clock = HandClock()
    rl = RateLimiter(clock)
    for _ in range(15):
        rl.try_acquire("lite", search=False)
    allowed, limit, remaining, _ = rl.try_acquire("lite", search=True)
    assert allowed and limit == SEARCH_BURST_LIMIT
    assert remaining == 4  # general: 20 - 16, search: 10 - 1
    assert len(rl.general) == 16 and len(rl.search) == 1


def test_the_window_rolls_a_request_leaves_exactly_two_seconds_after_it_was_counted():
    clock = HandClock()
    rl = RateLimiter(clock)
    for i in range(BURST_LIMIT["growth"]):
        clock.t = 1000.0 + i * 0.05
        assert rl.try_acquire("growth", search=False)[0]
    clock.t = 1001.999
    assert not rl.try_acquire("growth", search=False)[0]  # the first is still in its window
    clock.t = 1002.0
    assert rl.try_acquire("growth", search=False)[0]  # the first has left: one slot, not a whole window
    assert not rl.try_acquire("growth", search=False)[0]


def test_a_clock_set_hours_into_the_past_neither_blocks_nor_refuses():
    # a simulated clock behind real time (a test's "noon today" in the evening, on a machine up for
    # minutes) must not read as a block or a full window that never ends
    import time

    from flitstack_dagster.sandbox.clock import Clock

    clock = Clock(offset=-(time.monotonic() + 10 * 3600.0))  # further back than the machine's uptime
    limiter = RateLimiter(clock)
    assert limiter.blocked_for() == 0.0
    assert limiter.try_acquire("ultimate", False)[0]
    before = clock.monotonic()
    clock.advance(5.0)
    assert clock.monotonic() - before >= 5.0
