"""The migration calendar: days of Pipedrive's token budget per record plan × Pipedrive plan × seats,
older plan names taken as the plans they stand for, the scope document's Calendar section for a
generated bundle audited against the sandbox, and `flitstack calendar RUN`."""

from __future__ import annotations

import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.core import duck
from flitstack_dagster.core.plans import PLAN_TABLE, find_plan, plan_in
from flitstack_dagster.core.settings import SettingError, check_plan, pipedrive_settings
from flitstack_dagster.mapping import store
from flitstack_dagster.mapping.audit import audit_account, plan_key
from flitstack_dagster.mapping.eta import eta_text
from flitstack_dagster.mapping.calendar import (
    ON_PLAN,
    calendar_table,
    days_exact,
    days_needed,
    migration_calendar,
    usable_daily,
)
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.model import RECORD_PLANS
from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS, estimate_requests, run_calendar, scope_document
from flitstack_dagster.mapping.yamlio import write_proposal
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.ratelimit import daily_budget, normalize_plan
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster_tests.reliability import kit

PREMIUM, LITE, PROFESSIONAL = find_plan("premium"), find_plan("lite"), find_plan("professional")
GOOD = {"PIPEDRIVE_BASE_URL": "https://acme.pipedrive.com", "PIPEDRIVE_API_TOKEN": "0123456789abcdef"}


# --- arithmetic -------------------------------------------------------------------------------------


def test_days_of_a_city_on_premium_with_five_seats_and_a_fifth_kept():
    # 100,000 work orders at 72 tokens; 30,000 × 5 × 5 = 750,000 a day, 600,000 usable
    assert usable_daily(PREMIUM, 5, 0.2) == 600_000
    assert days_exact(7_200_000, PREMIUM, 5, 0.2) == pytest.approx(12.0)
    assert days_needed(7_200_000, PREMIUM, 5, 0.2) == 12
    assert days_needed(7_200_001, PREMIUM, 5, 0.2) == 13  # a started day is a day


def test_days_round_up_and_exact_budgets_do_not():
    assert days_needed(90_000, LITE, 1, 0.0) == 3  # 30,000 a day, exactly three
    assert days_needed(1_000_000, PREMIUM, 5, 0.2) == 2 and days_exact(1_000_000, PREMIUM, 5, 0.2) == pytest.approx(5 / 3)
    # professional: 90,000 tokens a seat; 5 seats, a quarter kept: 450,000 - 112,500 = 337,500 usable
    assert usable_daily(PROFESSIONAL, 5, 0.25) == 337_500
    assert days_needed(675_000, PROFESSIONAL, 5, 0.25) == 2 and days_needed(675_001, PROFESSIONAL, 5, 0.25) == 3
    assert days_needed(0, LITE, 1, 0.9) == 0


def test_the_calendar_covers_every_plan_marks_the_account_and_prices_more_seats():
    cal = migration_calendar({"complete": 1_000_000}, seats=5, reserve=0.2, plan="Power")
    assert cal.plan == "premium" and [r.plan.name for r in cal.rows] == [p.name for p in PLAN_TABLE]
    row = cal.row("complete", "premium")
    assert row.on_plan and sum(r.on_plan for r in cal.rows) == 1
    assert (row.days, row.days_with(5), row.days_with(10)) == (2, 1, 1)  # 1,200,000 usable at 10 seats
    lite = cal.row("complete", "lite")  # 150,000 a day, 120,000 usable: 9 days; 10 seats 5; 15 seats 3
    assert (lite.days, lite.days_with(5), lite.days_with(10)) == (9, 5, 3)
    headers, rows = calendar_table(cal)
    assert headers[-3:] == ["+5 seats", "+10 seats", "account"] and len(rows) == len(PLAN_TABLE)
    marked = [r for r in rows if r[-1] == ON_PLAN]
    assert marked == [["complete", "premium (power)", "750,000", "600,000", "1,000,000", 2, "1.67",
                       "1 (saves 1 day)", "1 (saves 1 day)", ON_PLAN]]
    assert [r for r in rows if r[1] == "lite (essential)"][0][7:9] == ["5 (saves 4 days)", "3 (saves 6 days)"]


def test_an_unknown_account_plan_marks_no_row():
    cal = migration_calendar({"complete": 10}, seats=1, reserve=0.0, plan=None)
    assert cal.plan is None and not any(r.on_plan for r in cal.rows)


# --- plan names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("given,plan,budget_5_seats", [
    ("essential", "lite", 150_000), (" Advanced ", "growth", 300_000), ("professional", "professional", 450_000),
    ("POWER", "premium", 750_000), ("enterprise", "ultimate", 1_050_000), ("premium", "premium", 750_000),
])
def test_older_plan_names_are_taken_everywhere_a_plan_is_read(given, plan, budget_5_seats):
    assert check_plan(given) == normalize_plan(given) == plan
    assert pipedrive_settings({**GOOD, "PIPEDRIVE_PLAN": given}).plan == plan
    assert daily_budget(given, 5) == budget_5_seats
    assert plan_key(f"{given}_yearly") == plan_in(f"{given} (monthly)").name == plan


def test_a_plan_pipedrive_never_sold_is_refused():
    with pytest.raises(SettingError, match="PIPEDRIVE_PLAN must be one of lite, growth, premium, ultimate"):
        check_plan("gold")
    assert plan_key("Gold") is None


# --- the scope document and the CLI for a generated bundle ---------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A registered run of a generated bundle, staged and profiled, with its account audited on the
    sandbox (plan given by an older name, 3 seats)."""
    tmp = tmp_path_factory.mktemp("calendar")
    paths, run_key = kit.staged_run(tmp, 120, 11)
    with duck.connect(paths.duckdb) as con:
        profile = profile_source(con, run_key)
    with SandboxServer(plan="premium", seats=3) as s, \
            PipedriveClient(s.base_url, s.api_token, plan="premium", seats=3) as client:
        audit = audit_account(client, plan="Power", seats=3)
    store.save_profile(paths, run_key, profile)
    store.save_audit(paths, run_key, audit)
    return paths, run_key, profile, audit


@pytest.mark.slow
def test_the_scope_document_plans_the_calendar(generated):
    _paths, _run, profile, audit = generated
    mapping = propose_mapping(profile, audit)
    doc = scope_document(profile, mapping, audit, reserve=0.25)
    section = doc.split("## Calendar", 1)[1]
    tokens = estimate_requests(profile, mapping, audit).tokens
    assert tokens > 0 and tuple(rp.name for rp in RECORD_PLAN_COSTS) == RECORD_PLANS  # every plan costed, in order
    assert "3 seats, on premium (power); a 25% reserve" in section
    days = days_needed(tokens, PREMIUM, 3, 0.25)
    assert (f"| complete | premium (power) | 450,000 | 337,500 | {tokens:,} | {days} | "
            f"{days_exact(tokens, PREMIUM, 3, 0.25):.2f} |") in section
    rows = [line for line in section.splitlines() if line.startswith("| complete |")]
    assert len(rows) == len(PLAN_TABLE) and [r for r in rows if ON_PLAN in r] == [
        r for r in rows if "premium (power)" in r]


def test_flitstack_calendar_prints_the_same_table(generated, monkeypatch, capsys):
    paths, run_key, profile, audit = generated
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(paths.root))
    monkeypatch.setenv("PIPEDRIVE_DAILY_RESERVE", "0.2")
    assert main(["calendar", run_key]) == 0
    out = capsys.readouterr().out
    cal = run_calendar(profile, propose_mapping(profile, audit), audit, reserve=0.2)
    row = cal.row("complete", "premium")
    assert f"calendar for {run_key}: 3 seats, on premium (power); a 20% reserve" in out
    line = next(x for x in out.splitlines() if ON_PLAN in x)
    assert line.split()[:8] == ["complete", "premium", "(power)", "450,000", "360,000", f"{row.tokens:,}",
                                str(row.days), f"{row.days_exact:.2f}"]
    assert sum(x.startswith("complete ") for x in out.splitlines()) == len(PLAN_TABLE)


def test_flitstack_calendar_names_an_unknown_run(generated, monkeypatch, capsys):
    paths = generated[0]
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(paths.root))
    assert main(["calendar", "full-no-such-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: migration run 'full-no-such-run' is not registered: add it with `flitstack runs add --bundle DIR "
        "--mode full` or the register_migration_run job"]


def test_the_estimates_price_the_stored_proposal_of_this_bundle_only(generated):
    """The calendar and the ETA read the proposal the mapping step stored, not one made again; a stored
    proposal made from another bundle's shape is not this run's."""
    paths, run_key, profile, audit = generated
    stored = propose_mapping(profile, audit)
    other = next(p for p in RECORD_PLANS if p != stored.record_plan)
    path = write_proposal(store.proposed_path(paths), stored.model_copy(update={"record_plan": other}),
                          markdown=False)
    try:
        assert store.current_mapping(paths, profile, audit).record_plan == other
        assert f"(record plan {other}, proposed)" in eta_text(paths, run_key, {})
        write_proposal(path, stored.model_copy(update={"record_plan": other, "profile_hash": "another bundle"}),
                       markdown=False)
        assert store.current_mapping(paths, profile, audit).record_plan == stored.record_plan
    finally:
        path.unlink()
