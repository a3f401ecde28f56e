"""Deciding which budget-stopped migration runs to re-launch, from the stops and the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flitstack_dagster.loading.relaunch import (
    BudgetStop,
    Failure,
    due_relaunches,
    is_budget_stop,
    next_midnight,
    resets_at_of,
    resume_at,
    stop_from_failures,
    waiting_note,
)
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent

STOPPED = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
RESET = datetime(2026, 11, 21, tzinfo=UTC)


def _loader_failure(step: str = "loaded_deals", metadata: dict | None = None) -> Failure:
    """The description defs/loading.py raises today, with the real DailyBudgetSpent message."""
    err = DailyBudgetSpent(spent=240_000, budget=300_000, reserve=60_000, resets_at=RESET, now=STOPPED)
    return Failure(step, f"{step} stopped after 1,200/5,000 records: {err}. Everything loaded so far is "
                         "recorded; re-materialize the partition after the budget resets.",
                   metadata or {"tokens_spent": 4_800, "total": 5_000})


def test_loader_budget_failure_is_recognised_and_its_reset_read_from_the_message():
    f = _loader_failure()
    assert is_budget_stop(f)
    assert resets_at_of(f) == RESET


def test_metadata_names_the_stop_and_reset_when_the_loader_writes_them():
    f = Failure("loaded_notes", "anything", {"stopped_by": "daily_budget", "budget_resets_at": "2026-11-22T00:00:00+00:00"})
    assert is_budget_stop(f)
    assert resets_at_of(f) == datetime(2026, 11, 22, tzinfo=UTC)
    assert resets_at_of(Failure("x", "", {"budget_resets_at": RESET.timestamp()})) == RESET


def test_other_failures_are_not_budget_stops():
    f = Failure("loaded_deals", "HTTP 400 from Pipedrive: field 'value' must be a number", {})
    assert not is_budget_stop(f)
    assert resets_at_of(f) is None


def test_a_run_is_a_budget_stop_only_if_every_failed_step_is_one():
    both = stop_from_failures("full-x", "r1", STOPPED, [_loader_failure("loaded_deals"), _loader_failure("loaded_notes")])
    assert both == BudgetStop("full-x", "r1", STOPPED, RESET, ("loaded_deals", "loaded_notes"))
    mixed = [_loader_failure(), Failure("loaded_files", "upload refused: file too large", {})]
    assert stop_from_failures("full-x", "r1", STOPPED, mixed) is None
    assert stop_from_failures("full-x", "r1", STOPPED, []) is None


def test_next_midnight_in_the_account_timezone():
    assert next_midnight(STOPPED) == RESET
    chicago = next_midnight(STOPPED, "America/Chicago")  # 09:30 local on the 20th
    assert chicago == datetime(2026, 11, 21, tzinfo=ZoneInfo("America/Chicago"))
    assert chicago.astimezone(UTC) == datetime(2026, 11, 21, 6, tzinfo=UTC)
    assert next_midnight(datetime(2026, 11, 21, tzinfo=UTC)) == datetime(2026, 11, 22, tzinfo=UTC)  # strictly after


def test_resume_at_is_the_later_of_the_loader_reset_and_the_account_midnight():
    stop = BudgetStop("full-x", "r1", STOPPED, RESET)
    assert resume_at(stop) == RESET
    assert resume_at(stop, "America/Chicago").astimezone(UTC) == datetime(2026, 11, 21, 6, tzinfo=UTC)
    assert resume_at(stop, "Europe/Berlin") == RESET  # Berlin's midnight comes first: wait for the loader's
    assert resume_at(BudgetStop("full-x", "r1", STOPPED, None)) == RESET  # unknown reset: next midnight


def test_due_only_after_the_reset_and_once_per_partition():
    a1 = BudgetStop("full-a", "r1", STOPPED - timedelta(days=1), RESET - timedelta(days=1))
    a2 = BudgetStop("full-a", "r2", STOPPED, RESET)
    b = BudgetStop("delta-b", "r3", STOPPED, RESET)
    assert due_relaunches([a1, a2, b], RESET - timedelta(seconds=1)) == []  # a1 is superseded by a2
    assert due_relaunches([a1, a2, b], RESET) == [b, a2]
    note = waiting_note([a2], RESET - timedelta(hours=2))
    assert note == "full-a: waiting for the budget reset at 2026-11-21 00:00 UTC"
    assert waiting_note([a2], RESET) == ""
