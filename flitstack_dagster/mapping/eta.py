"""The days of Pipedrive's token budget a run still needs: its records left, priced with the estimate of the
record plan the mapping chose (approved, else proposed), over what the account may spend a day (plan, seats
and reserve, as the calendar counts)."""

from __future__ import annotations

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.plans import find_plan
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.mapping import store
from flitstack_dagster.mapping.archive import run_archive_scope
from flitstack_dagster.mapping.calendar import days_needed, usable_daily
from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS, run_calendar


def tokens_left(by_entity: dict[str, tuple[int, int]], per_entity: dict[str, dict[str, int]]) -> int:
    """Records left per entity × the estimate's tokens per record of that entity."""
    left = 0.0
    for entity, (done, total) in by_entity.items():
        est = per_entity.get(entity)
        if est and est["records"]:
            left += (total - done) * est["tokens"] / est["records"]
    return round(left)


def eta_text(paths: Paths, run_key: str, by_entity: dict[str, tuple[int, int]]) -> str:
    """One line: days of token budget left, and what they are counted from."""
    try:
        profile = store.load_profile(paths, run_key)
    except UserError:
        return "ETA: unknown until the bundle is profiled (materialize `source_profile`, or `flitstack migrate`)"
    try:
        audit = store.load_audit(paths, run_key)
    except UserError:
        audit = None
    mapping = store.current_mapping(paths, profile, audit)
    try:
        archive = run_archive_scope(paths, run_key, mapping)
    except UserError as e:
        return f"ETA: unknown for now — {e}"
    cal = run_calendar(profile, mapping, audit, archive=archive)
    cost = next((rp for rp in RECORD_PLAN_COSTS if rp.name == mapping.record_plan), RECORD_PLAN_COSTS[0])
    estimate = cost.estimate(profile, mapping, audit, reserve=cal.reserve, archive=archive)
    left = tokens_left(by_entity, estimate.by_entity()) if by_entity else estimate.tokens
    plan = find_plan(cal.plan)
    if plan is None:
        return f"ETA: about {left:,} tokens left; the account's plan is unknown (set PIPEDRIVE_PLAN)"
    if left <= 0:
        return "ETA: every shaped record is done"
    days = days_needed(left, plan, cal.seats, cal.reserve)
    whole = "" if by_entity else " for the whole bundle (not shaped yet)"
    return (f"ETA: {days} day{'s' if days != 1 else ''} of token budget{whole} — about {left:,} tokens left "
            f"(record plan {cost.name}{'' if mapping.approved_by else ', proposed'}) at {usable_daily(plan, cal.seats, cal.reserve):,} "
            f"usable a day ({plan.label}, {cal.seats} seats, {cal.reserve:.0%} reserve)")


__all__ = ["eta_text", "tokens_left"]
