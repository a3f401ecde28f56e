"""The limiter's pacing, send-time stamps, adaptive arrival margin, and the Little's-law in-flight gate
(fake clock, no HTTP)."""

from __future__ import annotations

import pytest

from flitstack_dagster.pipedrive.ratelimit import InFlightGate, RateLimiter, in_flight_for


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def make(clock: Clock, **kw) -> RateLimiter:
    return RateLimiter(clock=clock.now, sleep=clock.sleep, wall_clock=lambda: 1.7e9 + clock.t, **kw)


def test_pacing_spreads_a_window_evenly_instead_of_one_burst():
    clock = Clock()
    rl = make(clock, plan="lite", pace=True, arrival_margin=0.0)  # 20 per 2 s -> one per 0.1 s
    sends = []
    for _ in range(40):
        rl.release(rl.acquire(1))
        sends.append(clock.t)
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert max(gaps) == pytest.approx(0.1, abs=1e-6)
    assert sends[-1] - sends[0] == pytest.approx(3.9, abs=1e-6)  # still 20 per 2 s, no slower


def test_without_pacing_the_first_window_goes_at_once():
    clock = Clock()
    rl = make(clock, plan="lite", arrival_margin=0.0)
    for _ in range(20):
        rl.acquire(1)
    assert clock.t == 100.0


def test_a_slot_counts_from_when_the_request_left_not_when_it_was_granted():
    clock = Clock()
    rl = make(clock, plan="lite", arrival_margin=0.05)
    tickets = [rl.acquire(1) for _ in range(20)]
    clock.t += 0.5  # the requests left half a second after their slots were granted
    for t in tickets:
        rl.mark_sent(t)
    clock.t += 5.0  # slow answers
    for t in tickets:
        rl.release(t)
    assert [s.stamp for _, s in tickets[0].slots] == [pytest.approx(100.55)]


def test_a_burst_refusal_widens_the_margin_by_half_a_step_once_per_window_up_to_the_max():
    clock = Clock()
    rl = make(clock, plan="growth", arrival_margin=0.05, max_arrival_margin=0.1)
    rl.burst_refused()
    rl.burst_refused()  # the same refusal event (requests in flight together)
    assert rl.arrival_margin == pytest.approx(0.075)
    for _ in range(5):
        clock.t += 2.5
        rl.burst_refused()
    assert rl.arrival_margin == pytest.approx(0.1)


def test_a_burst_refusal_moves_the_slots_in_the_window_out_by_the_new_margin():
    clock = Clock()
    rl = make(clock, plan="growth", arrival_margin=0.05)
    t = rl.acquire(1)
    rl.mark_sent(t)  # stamped 100.05
    rl.burst_refused()
    assert t.slots[0][1].stamp == pytest.approx(100.075)


def test_a_burst_refusal_pauses_the_pool_for_one_margin_and_a_header_does_not_lift_it():
    clock = Clock()
    rl = make(clock, plan="growth", arrival_margin=0.05)
    rl.release(rl.acquire(1))
    rl.burst_refused()
    # an answer in flight comes back saying the window has room: the pause holds anyway
    rl.release(_ticket(rl), {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "30"})
    before = clock.t
    rl.acquire(1)
    assert clock.t - before == pytest.approx(0.075, abs=1e-6)


def _ticket(rl: RateLimiter):
    """A ticket for a request granted before the pause (bypasses acquire's wait)."""
    from flitstack_dagster.pipedrive.ratelimit import Ticket, _Slot

    slot = _Slot(rl.clock())
    rl.general.slots.append(slot)
    return Ticket(slots=[(rl.general, slot)], cost=1, operation="")


def test_after_an_idle_spell_pacing_resumes_evenly_without_a_catch_up_burst():
    clock = Clock()
    rl = make(clock, plan="ultimate", pace=True, arrival_margin=0.0)
    for _ in range(10):
        rl.release(rl.acquire(1))
    clock.t += 5.0  # the next entity starts after a pause
    sends = []
    for _ in range(10):
        rl.release(rl.acquire(1))
        sends.append(clock.t)
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    # at most one request catches up one interval; the rest are one interval (2 s / 120) apart
    assert sum(1 for g in gaps if g < 2 / 120 - 1e-9) <= 1
    assert sends[-1] - sends[0] >= 8 * 2 / 120 - 1e-9


@pytest.mark.parametrize("limit,latency,expected", [(40, 0.15, 7), (120, 0.15, 16), (120, 1.0, 92), (20, 5.0, 20),
                                                    (40, 0.0, 4)])
def test_in_flight_follows_littles_law(limit, latency, expected):
    # rate = limit / 2 s; in flight = ceil(rate x latency x 1.5) + 2, between 4 and the limit
    assert in_flight_for(limit, latency) == expected


def test_gate_capacity_adapts_to_the_measured_latency():
    gate = InFlightGate(120, initial_latency=0.5)
    high = gate.capacity
    for _ in range(100):
        gate.observe(0.15)
    assert gate.capacity < high and gate.capacity == in_flight_for(120, gate.latency)
    assert InFlightGate(120, fixed=3).capacity == 3


def test_a_widened_margin_steps_back_after_a_quiet_spell_never_below_the_start():
    clock = Clock()
    rl = make(clock, plan="growth", arrival_margin=0.05, margin_quiet_seconds=60)
    rl.burst_refused()
    clock.t += 2.5
    rl.burst_refused()
    assert rl.arrival_margin == pytest.approx(0.1)
    clock.t += 30
    rl.release(rl.acquire(1))
    assert rl.arrival_margin == pytest.approx(0.1)  # not quiet long enough
    clock.t += 31
    rl.release(rl.acquire(1))
    assert rl.arrival_margin == pytest.approx(0.075)
    rl.release(rl.acquire(1))
    assert rl.arrival_margin == pytest.approx(0.075)  # one step per quiet spell
    clock.t += 61
    rl.release(rl.acquire(1))
    clock.t += 61
    rl.release(rl.acquire(1))
    assert rl.arrival_margin == pytest.approx(0.05)


def test_an_answer_is_checked_against_the_window_its_request_left_in_not_the_one_it_came_back_in():
    clock = Clock()
    rl = make(clock, plan="lite", pace=True, arrival_margin=0.0)
    start = clock.t
    for _ in range(20):  # one per 0.1 s
        rl.release(rl.acquire(1))
    clock.t = start + 2.0
    t = rl.acquire(1)  # the first request has just left the window: the server holds 20 with this one
    clock.t += 0.15  # its answer comes back after the first requests have left the window too
    rl.release(t, {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"})
    assert rl.general.phantoms == []  # nobody else is using the token


def test_requests_counted_that_this_client_did_not_send_hold_slots_until_the_reset():
    clock = Clock()
    rl = make(clock, plan="lite", pace=True, arrival_margin=0.0)
    for _ in range(5):
        rl.release(rl.acquire(1))
    t = rl.acquire(1)
    clock.t += 0.15
    rl.release(t, {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "10", "x-ratelimit-reset": "1"})
    assert len(rl.general.phantoms) == 4  # 10 counted, 6 sent by this client


def _round_trip(clock: Clock, rl: RateLimiter, seconds: float, operation: str = "POST /api/v2/deals"):
    t = rl.acquire(1, operation=operation)
    rl.mark_sent(t)
    sent = clock.t
    clock.t += seconds
    rl.release(t, answered=True)
    return t.slots[0][1].stamp - sent


def test_a_slow_answer_moves_its_slot_out_by_how_much_slower_it_was():
    clock = Clock()
    rl = make(clock, plan="ultimate", arrival_margin=0.05)
    for _ in range(10):
        assert _round_trip(clock, rl, 0.15) == pytest.approx(0.05)  # quick answers: send + margin
    # 120 ms slower than the quickest: the server may have counted it up to 120 ms late
    assert _round_trip(clock, rl, 0.27) == pytest.approx(0.12 + 0.01)
    assert _round_trip(clock, rl, 0.18) == pytest.approx(0.05)  # within the margin: unchanged
    # another operation has its own quickest round trip (a file upload is not a late count)
    for _ in range(10):
        assert _round_trip(clock, rl, 0.9, "POST /v1/files") == pytest.approx(0.05)


def test_refusals_are_not_timed():
    clock = Clock()
    rl = make(clock, plan="ultimate", arrival_margin=0.05)
    for _ in range(10):
        _round_trip(clock, rl, 0.15)
    for _ in range(10):
        t = rl.acquire(1, operation="POST /api/v2/deals")
        rl.mark_sent(t)
        clock.t += 0.002
        rl.release(t)  # a 429: back at once, says nothing about how long counting takes
    assert _round_trip(clock, rl, 0.16) == pytest.approx(0.05)
