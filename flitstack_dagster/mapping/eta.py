"""The days of Pipedrive's token budget a run still needs: its records left, priced with the estimate of the
record plan the mapping chose (approved, else proposed), over what the account may spend a day (plan, seats
and reserve, as the calendar counts)."""

from __future__ import annotations

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.plans import find_plan
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.mapping import store
from flitstack_dagster.mapping.archive import run_archive_scope
from flitstack_dagster.mapping.calendar import days_needed, usable_daily
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS, run_calendar


def tokens_left(by_entity: dict[str, tuple[int, int]], per_entity: dict[str, dict[str, int]]) -> int:
    """Records left per entity × the estimate's tokens per record of that entity."""
    left = 0.0
    for entity, (done, total) in by_entity.items():
        est = per_entity.get(entity)
        if est and est["records"]:
            left += (total - done) * est["tokens"] / est["records"]
    return round(left)


def step_rates(per_entity: dict[str, dict[str, int]]) -> dict[str, float]:
    """Load step (`loaded_deals`) -> the estimate's tokens per record of its entity."""
    out = {}
    for e in ENTITIES:
        est = per_entity.get(e.name)
        if est and est["records"]:
            out[e.load_asset] = est["tokens"] / est["records"]
    return out


def spend_vs_plan(steps, rates: dict[str, float]) -> str | None:
    """`tokens 12,400 of ~24,800 estimated (+1.2% vs plan)`: what the loads in `steps` (ledger progress)
    spent against what the chosen plan's estimate expected for the records they did, and in all."""
    mine = [p for p in steps if p.step in rates]
    if not mine:
        return None
    spent = sum(p.tokens for p in mine)
    expected = sum(p.done * rates[p.step] for p in mine)
    total = round(sum(p.total * rates[p.step] for p in mine))
    off = f" ({(spent - expected) / expected:+.1%} vs plan)" if expected else ""
    return f"tokens {spent:,} of ~{total:,} estimated{off}"


def _profile_and_audit(paths: Paths, run_key: str):
    """The run's profile (UserError before profiling) and its account audit (None before the audit)."""
    profile = store.load_profile(paths, run_key)
    try:
        return profile, store.load_audit(paths, run_key)
    except UserError:
        return profile, None


def _estimate(paths: Paths, run_key: str, profile, audit, mapping: Mapping):
    """The calendar, the chosen record plan's costs and its estimate for the run, the archive counted."""
    archive = run_archive_scope(paths, run_key, mapping)
    cal = run_calendar(profile, mapping, audit, archive=archive)
    cost = next((rp for rp in RECORD_PLAN_COSTS if rp.name == mapping.record_plan), RECORD_PLAN_COSTS[0])
    return cal, cost, cost.estimate(profile, mapping, audit, reserve=cal.reserve, archive=archive)


def plan_rates(paths: Paths, run_key: str) -> dict[str, float]:
    """step_rates of the approved record plan's estimate for the run ({} until it is profiled and approved)."""
    mapping = store.load_approved(paths)
    if mapping is None:
        return {}
    try:
        profile, audit = _profile_and_audit(paths, run_key)
        return step_rates(_estimate(paths, run_key, profile, audit, mapping)[2].by_entity())
    except UserError:
        return {}


def eta_text(paths: Paths, run_key: str, by_entity: dict[str, tuple[int, int]], steps=()) -> str:
    """One line: days of token budget left, and what they are counted from; with the loads' ledger
    progress (`steps`), what they spent against the approved plan's estimate."""
    try:
        profile, audit = _profile_and_audit(paths, run_key)
    except UserError:
        return "ETA: unknown until the bundle is profiled (materialize `source_profile`, or `flitstack migrate`)"
    mapping = store.current_mapping(paths, profile, audit)
    try:
        cal, cost, estimate = _estimate(paths, run_key, profile, audit, mapping)
    except UserError as e:
        return f"ETA: unknown for now — {e}"
    left = tokens_left(by_entity, estimate.by_entity()) if by_entity else estimate.tokens
    plan = find_plan(cal.plan)
    if plan is None:
        return f"ETA: about {left:,} tokens left; the account's plan is unknown (set PIPEDRIVE_PLAN)"
    spend = spend_vs_plan(steps, step_rates(estimate.by_entity())) if mapping.approved_by else None
    spent = f"; loads so far: {spend}" if spend else ""
    if left <= 0:
        return f"ETA: every shaped record is done{spent}"
    days = days_needed(left, plan, cal.seats, cal.reserve)
    whole = "" if by_entity else " for the whole bundle (not shaped yet)"
    return (f"ETA: {days} day{'s' if days != 1 else ''} of token budget{whole} — about {left:,} tokens left "
            f"(record plan {cost.name}{'' if mapping.approved_by else ', proposed'}) at {usable_daily(plan, cal.seats, cal.reserve):,} "
            f"usable a day ({plan.label}, {cal.seats} seats, {cal.reserve:.0%} reserve){spent}")


__all__ = ["eta_text", "plan_rates", "spend_vs_plan", "step_rates", "tokens_left"]
