"""Pure-logic tests of the client's rate limiter and token cost table (fake clock, no HTTP)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.costs import COSTS_CSV, CostTable, default_cost_table
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent
from flitstack_dagster.pipedrive.ratelimit import RateLimiter, daily_budget

PINNED_CSV = Path(__file__).resolve().parents[1] / "openapi" / "token_costs.csv"  # the pinned official table


class FakeClock:
    """Monotonic and wall clock in one; sleep() moves time forward."""

    def __init__(self, wall: float = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()) -> None:
        self.t = 1000.0
        self.wall0 = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.wall0 + self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.t += seconds


def limiter(clock: FakeClock, **kw) -> RateLimiter:
    kw.setdefault("arrival_margin", 0.0)
    return RateLimiter(clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.wall, **kw)


def max_in_window(times: list[float], window: float = 2.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


# --- daily budget arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan,seats,expected",
    [("lite", 1, 30_000), ("growth", 5, 300_000), ("premium", 2, 300_000), ("ultimate", 3, 630_000)],
)
def test_daily_budget_formula(plan, seats, expected):
    assert daily_budget(plan, seats) == expected


def test_unknown_plan_is_refused():
    with pytest.raises(ValueError, match="unknown Pipedrive plan"):
        RateLimiter("platinum")


# --- burst window -------------------------------------------------------------------------------


@pytest.mark.parametrize("plan,limit", [("lite", 20), ("growth", 40), ("premium", 100), ("ultimate", 120)])
def test_burst_never_exceeds_plan_limit_and_uses_it_fully(plan, limit):
    clock = FakeClock()
    rl = limiter(clock, plan=plan)
    sends = []
    start = clock.t
    for _ in range(limit * 5):
        t = rl.acquire(1)
        sends.append(clock.t)
        rl.release(t)
    assert max_in_window(sends) == limit
    # 5 windows' worth of requests: the first window needs no wait, so 4 windows of waiting
    assert clock.t - start == pytest.approx(8.0, abs=0.01)


def test_slot_counts_from_response_time_when_no_margin():
    clock = FakeClock()
    rl = limiter(clock, plan="lite", arrival_margin=None)
    tickets = [rl.acquire(1) for _ in range(20)]
    clock.t += 0.5  # responses take 0.5 s
    for t in tickets:
        rl.release(t)
    before = clock.t
    rl.acquire(1)
    # the window runs from the responses (t=+0.5), not from the sends
    assert clock.t - before == pytest.approx(2.0, abs=0.02)


def test_arrival_margin_bounds_the_stamp_of_a_slow_request():
    clock = FakeClock()
    rl = limiter(clock, plan="lite", arrival_margin=0.1)
    tickets = [rl.acquire(1) for _ in range(20)]
    clock.t += 5.0  # a very slow response: the server counted it at send + <= 0.1 s
    for t in tickets:
        rl.release(t)
    waited_before = clock.t
    rl.acquire(1)
    assert clock.t == waited_before  # slots freed at send + 0.1 + 2 s, long ago


def test_search_endpoints_have_their_own_limit_and_count_in_general():
    clock = FakeClock()
    rl = limiter(clock, plan="growth")
    sends = []
    for _ in range(30):
        t = rl.acquire(20, search=True)
        sends.append(clock.t)
        rl.release(t)
    assert max_in_window(sends) == 10
    assert rl.general.used(clock.t) == 10  # searches also occupy general slots


def test_headers_correct_the_model_for_requests_sent_elsewhere():
    clock = FakeClock()
    rl = limiter(clock, plan="growth")
    t = rl.acquire(1)
    # the server saw 35 requests in the window (34 from another process with the same token)
    rl.release(t, {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"})
    for _ in range(5):
        rl.release(rl.acquire(1))
    before = clock.t
    rl.acquire(1)  # the 6th must wait for the phantoms' reset
    assert clock.t - before == pytest.approx(1.0, abs=0.02)


def test_header_limit_replaces_the_plan_limit():
    clock = FakeClock()
    rl = limiter(clock, plan="ultimate")
    t = rl.acquire(1)
    rl.release(t, {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "19", "x-ratelimit-reset": "2"})
    assert rl.general.limit == 20
    sends = [clock.t]
    for _ in range(60):
        tt = rl.acquire(1)
        sends.append(clock.t)
        rl.release(tt)
    assert max_in_window(sends) == 20


def test_block_for_holds_every_slot():
    clock = FakeClock()
    rl = limiter(clock, plan="growth")
    rl.block_for(3.0)
    before = clock.t
    rl.acquire(1)
    assert clock.t - before == pytest.approx(3.0, abs=0.02)


# --- daily budget --------------------------------------------------------------------------------


def test_daily_reserve_stops_before_spending_into_it_and_resumes_next_day():
    clock = FakeClock()
    rl = limiter(clock, plan="lite", seats=1, daily_reserve_fraction=0.1)  # 30,000, reserve 3,000
    spent = 0
    with pytest.raises(DailyBudgetSpent) as err:
        while True:
            t = rl.acquire(20)
            spent += 20
            rl.release(t)
            clock.t += 0.1
    assert spent == 27_000  # every token up to the reserve, not one more
    e = err.value
    assert isinstance(e, UserError)
    msg = str(e)
    assert "27,000" in msg and "3,000" in msg and "30,000" in msg
    assert "2026-03-11 00:00 UTC" in msg  # next UTC midnight
    assert e.spent == 27_000 and e.reserve == 3_000
    # next day: the budget is back
    clock.wall0 += 86_400
    rl.release(rl.acquire(20))
    assert rl.spent_today == 20


def test_server_daily_429_blocks_until_reset():
    clock = FakeClock()
    rl = limiter(clock, plan="growth", seats=2)
    err = rl.server_budget_spent("GET /api/v2/deals")
    assert "daily API token budget is spent" in str(err)
    with pytest.raises(DailyBudgetSpent):
        rl.acquire(1)
    clock.wall0 += 86_400
    rl.release(rl.acquire(1))


def test_server_reported_tokens_left_respect_the_reserve():
    clock = FakeClock()
    rl = limiter(clock, plan="growth", seats=1, daily_reserve_fraction=0.1)  # 60,000, reserve 6,000
    t = rl.acquire(10)
    rl.release(t, {"x-daily-token-limit": "60000", "x-daily-tokens-left": "6005"})  # others spent the rest
    with pytest.raises(DailyBudgetSpent) as err:
        rl.acquire(10)
    assert "6,005" in str(err.value)


def test_budget_learned_from_headers_when_seats_unknown():
    clock = FakeClock()
    rl = limiter(clock, plan="growth", daily_reserve_fraction=0.5)
    assert rl.daily_budget is None
    rl.release(rl.acquire(1), {"x-daily-token-limit": "1000", "x-daily-tokens-left": "999"})
    assert rl.daily_budget == 1000 and rl.reserve == 500


def test_refund_gives_back_slot_and_tokens():
    clock = FakeClock()
    rl = limiter(clock, plan="lite", seats=1)
    t = rl.acquire(10)
    rl.refund(t)
    assert rl.spent_today == 0 and rl.general.used(clock.t) == 0


# --- cost table ----------------------------------------------------------------------------------


def test_vendored_costs_match_the_official_file():
    assert COSTS_CSV.read_bytes() == PINNED_CSV.read_bytes()


@pytest.mark.parametrize(
    "method,path,key,cost",
    [
        ("POST", "/api/v2/organizations", "POST /api/v2/organizations", 5),
        ("GET", "/api/v2/organizations", "GET /api/v2/organizations", 10),
        ("GET", "/api/v2/organizations/17", "GET /api/v2/organizations/{id}", 1),
        ("PATCH", "/api/v2/deals/3", "PATCH /api/v2/deals/{id}", 5),
        ("DELETE", "/api/v2/activities/9", "DELETE /api/v2/activities/{id}", 3),
        ("GET", "/api/v2/deals/search", "GET /api/v2/deals/search", 20),
        ("GET", "/api/v2/itemSearch/field", "GET /api/v2/itemSearch/field", 20),
        ("POST", "/api/v2/dealFields/abc123/options", "POST /api/v2/dealFields/{field_code}/options", 5),
        ("POST", "/v1/notes", "POST /v1/notes", 10),
        ("GET", "/v1/notes", "GET /v1/notes", 20),
        ("DELETE", "/v1/notes/5", "DELETE /v1/notes/{id}", 6),
        ("POST", "/v1/files", "POST /v1/files", 10),
        ("GET", "/v1/files/5/download", "GET /v1/files/{id}/download", 20),
        ("GET", "/v1/users/me", "GET /v1/users/me", 2),
        ("GET", "/v1/users/7", "GET /v1/users/{id}", 2),
        ("POST", "/v1/organizationRelationships", "POST /v1/organizationRelationships", 10),
        ("GET", "/api/v2/organizations?limit=500&cursor=x", "GET /api/v2/organizations", 10),
    ],
)
def test_cost_lookup(method, path, key, cost):
    op = default_cost_table().operation(method, path)
    assert (op.key, op.cost) == (key, cost)


def test_every_operation_in_the_table_matches_itself():
    table = default_cost_table()
    with open(COSTS_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(table.operations) == len(rows) > 300
    for op in table.operations:
        concrete = re.sub(r"\{[^}]+\}", "12345", op.template)
        found = table.lookup(op.method, concrete)
        assert found is not None
        # a concrete path may hit a more literal sibling only if that sibling has the same shape
        assert found.cost == op.cost or "{" in op.template


def test_literal_segments_beat_placeholders():
    table = CostTable.from_csv()
    assert table.operation("GET", "/api/v2/persons/search").operation_id == "searchPersons"
    assert table.operation("GET", "/api/v2/persons/42").operation_id == "getPerson"
    assert table.operation("GET", "/api/v2/deals/search").is_search
    assert not table.operation("GET", "/api/v2/deals/42").is_search


def test_unknown_operation_gets_a_conservative_cost():
    op = default_cost_table().operation("GET", "/api/v2/nothingHere")
    assert op.cost == 20 and op.operation_id == "unknown"
