"""The token ledger: tokens per account, day and run, and the long steps' progress, shared by processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from flitstack_dagster.loading.ledger import LEDGER_FILE, Ledger, SpendMeter, StepProgress, metered, utc_day


def test_tokens_add_up_per_account_day_and_run(tmp_path):
    ledger = Ledger.in_folder(tmp_path)
    assert ledger.path == tmp_path / LEDGER_FILE
    assert ledger.tokens() == 0 and ledger.progress("full-1") == [] and not ledger.path.exists()
    ledger.add_tokens("acme", "full-1", 100, day="2026-12-06")
    ledger.add_tokens("acme", "full-1", 50, day="2026-12-07")
    ledger.add_tokens("acme", "full-1", 25, day="2026-12-07")
    ledger.add_tokens("acme", "delta-2", 7, day="2026-12-07")
    ledger.add_tokens("other-co", "full-9", 1000, day="2026-12-07")
    ledger.add_tokens("acme", "full-1", 0)  # nothing spent: no row

    assert ledger.tokens(run_key="full-1") == 175
    assert ledger.tokens(run_key="full-1", day="2026-12-07") == 75
    assert ledger.tokens(account="acme", day="2026-12-07") == 82
    assert ledger.tokens() == 1182
    assert ledger.accounts("full-1") == ["acme"]


def test_another_process_sees_what_this_one_wrote(tmp_path):
    Ledger.in_folder(tmp_path).add_tokens("acme", "full-1", 40)
    code = ("import sys; from pathlib import Path; from flitstack_dagster.loading.ledger import Ledger; "
            "print(Ledger.in_folder(Path(sys.argv[1])).tokens(run_key='full-1'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "40"


def test_progress_keeps_the_latest_report_of_each_step(tmp_path):
    ledger = Ledger.in_folder(tmp_path)
    before = time.time()
    ledger.save_progress(StepProgress("full-1", "loaded_deals", 10, 100, 30, 2.0, before))
    ledger.save_progress(StepProgress("full-1", "loaded_deals", 50, 100, 150, 10.0, before + 1))
    ledger.save_progress(StepProgress("full-1", "loaded_persons", 5, 5, 10, 1.0, before + 2))
    ledger.save_progress(StepProgress("sample-1", "loaded_deals", 1, 1, 3, 1.0, before + 3))
    steps = ledger.progress("full-1")
    assert [(p.step, p.done) for p in steps] == [("loaded_deals", 50), ("loaded_persons", 5)]
    assert steps[0].rate == 5.0 and steps[0].eta_seconds == 10.0 and not steps[0].finished
    assert steps[1].finished
    assert [p.step for p in ledger.progress("full-1", since=before + 1.5)] == ["loaded_persons"]


class _Client:
    """Counts tokens as the Pipedrive client does; names its account as the client does."""

    base_url = "http://127.0.0.1:9"

    def __init__(self, account: str | None = "acme-co"):
        self.tokens_spent, self._account = 0, account

    def account(self) -> str:
        if self._account is None:
            raise RuntimeError("token refused")
        return self._account


def test_the_meter_writes_what_the_client_spent_since_its_start(tmp_path):
    ledger, client = Ledger.in_folder(tmp_path), _Client()
    client.tokens_spent = 500  # spent before this step: not this step's
    meter = SpendMeter(ledger, client, "full-1", "loaded_deals")
    client.tokens_spent += 30
    meter.report(3, 10, 30, 1.5)
    client.tokens_spent += 70
    meter.flush()
    meter.flush()
    assert ledger.tokens(run_key="full-1", account="acme-co", day=utc_day()) == 100
    (p,) = ledger.progress("full-1")
    assert (p.step, p.done, p.total, p.tokens) == ("loaded_deals", 3, 10, 30)


def test_an_unidentified_account_is_named_by_its_host_never_by_a_token(tmp_path):
    ledger, client = Ledger.in_folder(tmp_path), _Client(account=None)
    meter = SpendMeter(ledger, client, "full-1", "loaded_deals")
    client.tokens_spent = 2
    meter.flush()
    assert ledger.accounts("full-1") == ["127.0.0.1:9"]


def test_a_step_that_spent_nothing_does_not_look_its_account_up(tmp_path):
    class Counting(_Client):
        lookups = 0

        def account(self) -> str:
            self.lookups += 1
            self.tokens_spent += 2  # the look-up is a request of its own
            return "acme-co"

    ledger, client = Ledger.in_folder(tmp_path), Counting()
    with metered(ledger, client, "full-1", "applied_deletions"):
        pass
    assert client.lookups == 0 and ledger.tokens() == 0
    with metered(ledger, client, "full-1", "pipedrive_account_audit"):
        client.tokens_spent += 40
    assert client.lookups == 1 and ledger.tokens(run_key="full-1", account="acme-co") == 42  # the look-up too


def test_what_a_step_spent_before_it_failed_is_in_the_ledger(tmp_path):
    ledger, client = Ledger.in_folder(tmp_path), _Client()
    with pytest.raises(RuntimeError):
        with metered(ledger, client, "rollback:full-1", "rollback"):
            client.tokens_spent += 15
            raise RuntimeError("budget spent")
    assert ledger.tokens(run_key="rollback:full-1") == 15
