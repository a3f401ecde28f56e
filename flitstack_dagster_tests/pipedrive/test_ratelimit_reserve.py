"""The daily reserve holds with requests in flight: the server's tokens-left figure does not count
them yet, so the limiter must, or concurrent requests near the line spend into the reserve."""

from __future__ import annotations

import pytest

from flitstack_dagster.pipedrive.errors import DailyBudgetSpent
from flitstack_dagster.pipedrive.ratelimit import RateLimiter


def _limiter(left: int) -> RateLimiter:
    """A limiter that learned from one answer: budget 1,000 (reserve 200), `left` tokens left."""
    lim = RateLimiter("growth", daily_reserve_fraction=0.2)
    first = lim.acquire(1)
    lim.release(first, {"x-daily-token-limit": "1000", "x-daily-tokens-left": str(left)})
    assert lim.reserve == 200 and lim.in_flight_tokens == 0
    return lim


def test_requests_in_flight_count_against_the_reserve():
    lim = _limiter(left=215)
    a = lim.acquire(10)  # 215 - 10 = 205 stays above the reserve
    with pytest.raises(DailyBudgetSpent):
        lim.acquire(10)  # 215 - 10 in flight - 10 = 195: would spend into the reserve
    lim.release(a, {"x-daily-tokens-left": "205"})  # the server counted it: nothing in flight now
    b = lim.acquire(5)  # 205 - 5 = 200: exactly down to the reserve, allowed
    assert lim.in_flight_tokens == 5
    lim.refund(b)  # never sent: no longer in flight
    assert lim.in_flight_tokens == 0


def test_a_lone_request_may_spend_down_to_the_reserve():
    lim = _limiter(left=210)
    t = lim.acquire(10)
    lim.release(t, {"x-daily-tokens-left": "200"})
    with pytest.raises(DailyBudgetSpent):
        lim.acquire(1)
