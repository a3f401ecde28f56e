"""What each record plan costs: folded facts cost no request of their own, the rest is unchanged."""

from flitstack_dagster.mapping.model import FOLDS, RECORD_PLANS, Mapping
from flitstack_dagster.mapping.profile import Inventory, SourceProfile
from flitstack_dagster.mapping.scope import FOLDED, RECORD_PLAN_COSTS, calendar_section, run_calendar


def profile() -> SourceProfile:
    inv = Inventory(counts={"work_orders": 100, "labor": 300, "parts_used": 100, "status_log": 400, "notes": 130},
                    note_entry_types={"Call": 70, "Note": 60}, note_entry_types_on_work_orders={"Call": 70, "Note": 50},
                    work_orders_with_history=95)
    return SourceProfile(run_key="full-x", inventory=inv)


def _by(plan: str) -> dict[str, int]:
    cost = next(c for c in RECORD_PLAN_COSTS if c.name == plan)
    return {r.what: r.requests for r in cost.estimate(profile(), Mapping(), None, reserve=0.2).rows
            if r.entity != FOLDED}


def test_every_plan_has_a_cost_and_folds_what_the_model_says():
    assert [c.name for c in RECORD_PLAN_COSTS] == list(RECORD_PLANS) == list(FOLDS)
    complete, balanced, compact = _by("complete"), _by("balanced"), _by("compact")
    assert complete["status changes"] == 400 and complete["parts used"] == 100
    assert "status changes" not in balanced and "parts used" not in balanced and balanced["labor entries"] == 300
    assert balanced["timeline notes (one per work order with a status change or parts line)"] == 95
    assert "labor entries" not in compact and not any(w.startswith("timeline notes") for w in compact)
    assert compact["activity-log calls/emails/meetings"] == 70 == balanced["activity-log calls/emails/meetings"]
    assert compact["activity-log notes on assets"] == 10  # the entries on a work order are lines of its deal


def test_the_calendar_names_the_plan_the_approval_chose():
    cal = run_calendar(profile(), Mapping(), None, reserve=0.2)
    assert {r.record_plan for r in cal.rows} == set(RECORD_PLANS)
    text = "\n".join(calendar_section(cal, "compact"))
    assert "`compact` (chosen at approval)" in text and "`balanced` (chosen" not in text
    assert cal.row("compact", "premium").tokens < cal.row("balanced", "premium").tokens < cal.row("complete", "premium").tokens
