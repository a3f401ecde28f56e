"""Rehearsal mode: the product's client on a simulated clock the sandbox moves, so a load whose daily
budget runs out moves to the next simulated day instead of sleeping, and finishes; its spend per day
stays within the plan's budget less the reserve. And the large kinds, now read from the database per
request, still page stably under concurrent deletes."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.rehearsal import SimulatedTime, check_day_plan, rehearse
from flitstack_dagster.sandbox.server import SandboxServer

ORG_COST = 5  # POST /api/v2/organizations, from the official cost table


def _resumable_load(client: PipedriveClient, count: int, made: list[int]):
    """Create `count` organizations; run again after a stop, it creates only the ones still missing."""
    def load() -> None:
        while len(made) < count:
            made.append(client.create_organization({"name": f"Rehearsal org {len(made)}"}).id)
    return load


def _live_org_ids(sb: SandboxServer) -> list[int]:
    with httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        ids, cursor = [], None
        while True:
            page = c.get("/api/v2/organizations", params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
            ids += [r["id"] for r in page["data"]]
            cursor = page["additional_data"]["next_cursor"]
            if not cursor:
                return ids


def test_a_load_past_its_daily_budget_moves_to_the_next_simulated_day_and_finishes(tmp_path) -> None:
    # lite, 1 seat: 30,000 tokens a day; keeping all but 150 for others, 30 creates fit in a day
    reserve, count = 0.995, 100
    with SandboxServer(state_path=tmp_path / "state.sqlite", plan="lite", seats=1, clock=Clock()) as sb:
        sim = SimulatedTime.of(sb)
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, daily_reserve_fraction=reserve,
                                 **sim.client_kwargs())
        made: list[int] = []
        started = time.monotonic()
        stops = rehearse(_resumable_load(client, count, made), sim)
        real = time.monotonic() - started
        by_day = sb.usage()["tokens_by_day"]
        client.close()
        sim.close()
        assert sorted(_live_org_ids(sb)) == sorted(made) and len(made) == count
    assert stops == 3 and sim.jumped > 2 * 86_400  # three budget resets passed on the sandbox clock
    assert real < 60  # ...and none of them in real time
    assert sum(by_day.values()) == count * ORG_COST and len(by_day) == 4
    check = check_day_plan(by_day, "lite", 1, reserve)
    assert check.ok and check.usable_daily == 150 and check.days == check.days_planned == 4
    assert all(tokens <= 150 for tokens in by_day.values())


def test_a_budget_spent_by_others_stops_the_load_on_pipedrives_429_and_the_next_day_resumes_it(tmp_path) -> None:
    """Documented signals only: the client cannot see what others spent; the server's 429 says so."""
    with SandboxServer(plan="lite", seats=1, clock=Clock()) as sb:
        sb.set_tokens_spent(30_000 - 4 * ORG_COST)  # other integrations leave room for four creates
        sim = SimulatedTime.of(sb)
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, **sim.client_kwargs())
        made: list[int] = []
        stops = rehearse(_resumable_load(client, 10, made), sim)
        by_day = sb.usage()["tokens_by_day"]
        client.close()
        sim.close()
    assert stops == 1 and len(made) == 10
    first, second = sorted(by_day)
    assert by_day[first] == 30_000 and by_day[second] == 6 * ORG_COST
    assert check_day_plan({second: by_day[second]}, "lite", 1, 0.0).ok


def test_the_burst_window_is_waited_out_on_the_simulated_clock(tmp_path) -> None:
    """lite allows 20 requests per 2 s: 300 creates need 30 s of windows; every wait is a clock jump."""
    with SandboxServer(plan="lite", seats=1, clock=Clock()) as sb:
        sim = SimulatedTime.of(sb)
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, **sim.client_kwargs())
        made: list[int] = []
        assert rehearse(_resumable_load(client, 300, made), sim) == 0
        client.close()
        sim.close()
        assert client.rate_limited_responses == 0 and len(made) == 300
    waited = client.limiter.waited_seconds
    # the waits went to the clock, not to sleep (less the moments of real time each took to ask for its move)
    assert waited >= 15 and sim.jumped == pytest.approx(waited, abs=0.5)


def test_a_day_over_the_usable_budget_fails_the_day_plan() -> None:
    check = check_day_plan({"2026-01-01": 27_001, "2026-01-02": 100}, "lite", 1, 0.1)
    assert not check.ok and check.over == {"2026-01-01": 27_001}
    with pytest.raises(ValueError):
        check_day_plan({}, "no such plan", 1, 0.1)


@pytest.mark.parametrize("sort", [{}, {"sort_by": "update_time"}, {"sort_by": "update_time", "sort_direction": "desc"}])
def test_cursor_pages_stay_stable_while_another_client_deletes(tmp_path, sort) -> None:
    with SandboxServer(state_path=tmp_path / "state.sqlite", plan="ultimate", seats=5) as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as c:
        ids = [c.post("/api/v2/deals", json={"title": f"D{i}"}).json()["data"]["id"] for i in range(90)]
        sb.advance_clock(2.5)  # a fresh burst window for the pages and the deletes
        doomed = ids[1::2]
        seen: list[int] = []

        def delete_odd() -> None:
            with httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}) as other:
                for rid in doomed:
                    assert other.delete(f"/api/v2/deals/{rid}").status_code == 200

        deleter = threading.Thread(target=delete_odd)
        cursor = None
        deleter.start()
        while True:
            page = c.get("/api/v2/deals", params={"limit": 7, **sort, **({"cursor": cursor} if cursor else {})}).json()
            seen += [r["id"] for r in page["data"]]
            cursor = page["additional_data"]["next_cursor"]
            if not cursor:
                break
        deleter.join()
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(ids[0::2]) <= set(seen)  # no record that stayed was skipped


def test_one_clock_move_covers_the_short_waits_behind_it() -> None:
    """With min_advance, paced waits (each to a moment 0.1 s after the last) that an earlier move already
    passed send nothing; without it each wait moves the clock."""
    with SandboxServer(plan="lite", seats=1, clock=Clock()) as sb:
        sim = SimulatedTime.of(sb, min_advance=1.0)
        before = sim.monotonic()
        for k in range(1, 6):
            sim.sleep(before + 0.1 * k - sim.monotonic())
        assert sim.moves == 1 and sim.jumped == pytest.approx(1.0) and sim.monotonic() - before >= 1.0
        sim.sleep(2.0)  # longer than the minimum: moved by what is left of it
        assert sim.moves == 2 and 2.5 < sim.jumped <= 3.0
        exact = SimulatedTime.of(sb)
        exact.sleep(0.1)
        exact.sleep(0.1)
        assert exact.moves == 2
        sim.close()
        exact.close()
