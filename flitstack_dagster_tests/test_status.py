"""`flitstack status [RUN]` before anything ran: no runs, an unknown run, a run never materialized, and
the arithmetic of its ETA. The same command on a run stopped at the gate and on a loaded one is in
test_headless.py."""

from __future__ import annotations

import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.mapping.eta import tokens_left
from flitstack_dagster.cli.status import NO_RUNS
from flitstack_dagster.loading.ledger import Ledger, utc_day


@pytest.fixture
def data(tmp_path, monkeypatch):
    for name in ("PIPEDRIVE_BASE_URL", "PIPEDRIVE_API_TOKEN", "PIPEDRIVE_PLAN", "PIPEDRIVE_SEATS",
                 "PIPEDRIVE_DAILY_RESERVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLITSTACK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("status") / "b"
    assert cli_main(["generate", "--work-orders", "20", "--seed", "5", "--out", str(out), "--no-mess-log"]) == 0
    return out


def test_no_runs_is_said_in_one_sentence(data, capsys):
    assert cli_main(["status"]) == 0
    assert capsys.readouterr().out.strip() == NO_RUNS


def test_an_unknown_run_is_refused_with_how_to_register(data, capsys):
    assert cli_main(["status", "full-nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: migration run 'full-nope' is not registered: add it with `flitstack runs add")
    assert len(err.strip().splitlines()) == 1


def test_a_registered_run_never_run_says_so_and_what_it_knows(data, bundle, capsys):
    assert cli_main(["runs", "add", "--bundle", str(bundle), "--mode", "full"]) == 0
    run_key = capsys.readouterr().out.split()[1]
    Ledger.in_folder(data).add_tokens("acme-co", run_key, 42)
    assert cli_main(["status", run_key]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{run_key}: never run"
    assert lines[1] == "  stage: not started: nothing materialized yet"
    assert lines[2].startswith("  records: not shaped yet")
    assert lines[3] == ("  tokens: 42 today (UTC), 42 in all by this run's loads and read-back; the account "
                        "acme-co 42 today over every run")
    assert lines[4].startswith("  ETA: unknown until the bundle is profiled")
    assert lines[5] == "  blocks: nothing"

    assert cli_main(["status"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(run_key) and "never run" in line and "not shaped" in line and "tokens 42 today / 42" in line


def test_a_bad_setting_is_named_in_one_line(data, capsys, monkeypatch):
    """The ETA reads the plan, seats and reserve the way every command does."""
    monkeypatch.setenv("PIPEDRIVE_SEATS", "five")
    assert cli_main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: PIPEDRIVE_SEATS must be a whole number") and "Traceback" not in err


def test_tokens_left_prices_the_records_left_with_the_estimate_per_entity():
    per = {"deal": {"records": 100, "tokens": 1000}, "org_relationship": {"records": 10, "tokens": 50},
           "note": {"records": 0, "tokens": 0}}
    assert tokens_left({"deal": (40, 100), "org_relationship": (0, 10), "note": (0, 5)}, per) == 650
    assert tokens_left({"deal": (100, 100)}, per) == 0


def test_today_is_a_utc_day():
    assert len(utc_day()) == 10 and utc_day()[4] == "-"


def _state(status: str, checks=(), steps=()):
    from flitstack_dagster.defs.instance import DagsterRunState

    return DagsterRunState("0123abcd-ef", "migrate", status, None, "loaded_deals", "pipedrive_load",
                           list(steps), list(checks))


def test_what_blocks_is_one_sentence_with_what_to_do():
    from flitstack_dagster.cli.status import _outcome, blocks

    gate = _state("failure", checks=["proposed_mapping.mapping_approved: status 'Stage 7' is unmapped"])
    assert _outcome(gate) == "stopped at a blocking check"
    assert blocks(gate, "full-1") == [
        "blocking check proposed_mapping.mapping_approved: status 'Stage 7' is unmapped; decide the values it names "
        "and approve: `flitstack mapping approve` (or the `approve_mapping` job), then run `flitstack migrate full-1`."]
    other = _state("failure", checks=["pd_deals.ready_to_load: no verified sample"])
    assert blocks(other, "full-1") == ["blocking check pd_deals.ready_to_load: no verified sample; fix what it names, "
                                       "then run `flitstack migrate full-1`."]
    error = _state("failure", steps=["loaded_deals: the token was refused by 127.0.0.1:9"])
    assert _outcome(error) == "stopped by an error"
    assert blocks(error, "full-1") == ["step loaded_deals: the token was refused by 127.0.0.1:9; then run "
                                       "`flitstack migrate full-1` once it is fixed."]
    stopped = _state("canceled")
    assert _outcome(stopped) == "stopped before the end"
    assert blocks(stopped, "full-1") == ["the last Dagster run stopped before the end (interrupted); run "
                                         "`flitstack migrate full-1` to resume."]
    assert blocks(_state("success"), "full-1") == [] and blocks(_state("started"), "full-1") == []
    assert _outcome(_state("started")) == "running now" and _outcome(None) == "never run"
