"""Which migration runs to re-launch once Pipedrive's daily token budget has reset.

A load that spends the day's budget (minus the reserve) stops cleanly; this module decides, from
those stops and the current time, which partitions may start again. Plain Python: the Dagster
sensor (`defs/sensors.py`) only gathers the stops and turns the answer into run requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# What the load asset's dg.Failure carries when the budget stopped it (metadata keys).
STOPPED_BY_KEY = "stopped_by"
STOPPED_BY_BUDGET = "daily_budget"
RESETS_AT_KEY = "budget_resets_at"
# `DailyBudgetSpent`'s message: "... The budget resets at 2026-11-21 00:00 UTC ..."
_RESETS_IN_TEXT = re.compile(r"resets at (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC")


@dataclass(frozen=True)
class Failure:
    """One failed step of a run: what the asset raised (description and plain metadata values)."""

    step: str
    description: str
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class BudgetStop:
    """A migration run whose last load stopped because the day's budget was spent."""

    partition: str
    run_id: str  # the stopped Dagster run: one re-launch per stop
    stopped_at: datetime  # aware
    resets_at: datetime | None  # as the loader's rate limiter computed it, when known
    steps: tuple[str, ...] = ()


def is_budget_stop(failure: Failure) -> bool:
    """The loader says so in metadata; older failures are recognised by their message."""
    if failure.metadata.get(STOPPED_BY_KEY) == STOPPED_BY_BUDGET:
        return True
    text = failure.description.lower()
    return "stopped" in text and "budget" in text


def resets_at_of(failure: Failure) -> datetime | None:
    """The reset instant the loader recorded (metadata first, else the message), or None."""
    value = failure.metadata.get(RESETS_AT_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    match = _RESETS_IN_TEXT.search(failure.description)
    if match:
        return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return None


def stop_from_failures(partition: str, run_id: str, stopped_at: datetime,
                       failures: Iterable[Failure]) -> BudgetStop | None:
    """A BudgetStop when every failed step of the run stopped for the budget; None otherwise.

    A run that also failed for another reason needs a person, not a re-launch.
    """
    failures = list(failures)
    if not failures or not all(is_budget_stop(f) for f in failures):
        return None
    resets = [r for r in (resets_at_of(f) for f in failures) if r is not None]
    return BudgetStop(partition, run_id, _aware(stopped_at), max(resets) if resets else None,
                      tuple(f.step for f in failures))


def next_midnight(after: datetime, timezone: str = "UTC") -> datetime:
    """The first midnight in `timezone` strictly after `after` (aware, in that zone)."""
    zone = ZoneInfo(timezone)
    local = _aware(after).astimezone(zone)
    day = local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def resume_at(stop: BudgetStop, account_timezone: str = "UTC") -> datetime:
    """When the stop may be re-launched: the later of the loader's reset and the account's midnight.

    Taking the later one never starts early: a re-launch before the real reset would only stop again.
    """
    candidates = [next_midnight(stop.stopped_at, account_timezone)]
    if stop.resets_at is not None:
        candidates.append(_aware(stop.resets_at))
    return max(candidates)


def due_relaunches(stops: Iterable[BudgetStop], now: datetime, account_timezone: str = "UTC") -> list[BudgetStop]:
    """The stops whose budget has reset by `now`, one per partition (the latest stop), by partition."""
    latest: dict[str, BudgetStop] = {}
    for stop in stops:
        if stop.partition not in latest or stop.stopped_at > latest[stop.partition].stopped_at:
            latest[stop.partition] = stop
    now = _aware(now)
    return sorted((s for s in latest.values() if now >= resume_at(s, account_timezone)), key=lambda s: s.partition)


def waiting_note(stops: Iterable[BudgetStop], now: datetime, account_timezone: str = "UTC") -> str:
    """One line per stop not due yet: `full-x: waiting for the budget reset at 2026-11-21 00:00 UTC`."""
    now = _aware(now)
    lines = [
        f"{s.partition}: waiting for the budget reset at {resume_at(s, account_timezone).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        for s in sorted(stops, key=lambda s: s.partition)
        if now < resume_at(s, account_timezone)
    ]
    return "; ".join(lines)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
