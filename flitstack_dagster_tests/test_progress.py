"""The console's progress of long steps: a bar on a terminal, plain periodic lines when piped."""

from __future__ import annotations

import io
import time

from flitstack_dagster.cli.progress import ProgressWatcher, bar, duration, progress_text
from flitstack_dagster.loading.ledger import Ledger, StepProgress


def _report(ledger: Ledger, done: int, total: int = 200, seconds: float = 20.0, step: str = "loaded_deals") -> None:
    ledger.save_progress(StepProgress("full-1", step, done, total, done * 3, seconds, time.time()))


def test_texts_say_done_of_total_rate_eta_and_tokens():
    p = StepProgress("full-1", "loaded_deals", 50, 200, 150, 10.0, 0.0)
    assert progress_text(p) == "loaded_deals 50/200 (25%), 5.0 records/s, ETA 30 s, 150 tokens"
    assert bar(p) == "[" + "#" * 6 + "." * 18 + "] " + progress_text(p)
    assert duration(75) == "1 min 15 s" and duration(3720) == "1 h 02 min"


def test_piped_output_gets_a_line_per_part_and_the_finished_step(tmp_path):
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    watcher = ProgressWatcher(ledger, "full-1", out=out, tty=False, every=0.0, parts=3)
    with watcher:
        for done in (50, 80, 90, 150, 199):
            _report(ledger, done)
            watcher.tick()
        _report(ledger, 200)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.strip() for line in lines] == [
        "loaded_deals 80/200 (40%), 4.0 records/s, ETA 30 s, 240 tokens",
        "loaded_deals 150/200 (75%), 7.5 records/s, ETA 7 s, 450 tokens",
        "loaded_deals 200/200 in 20 s (10.0 records/s), 600 tokens",
    ]


def test_piped_lines_are_at_least_every_seconds_apart(tmp_path):
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    with ProgressWatcher(ledger, "full-1", out=out, tty=False, every=3600.0) as watcher:
        for done in (80, 150, 199):
            _report(ledger, done)
            watcher.tick()
    assert out.getvalue() == ""


def test_a_short_step_leaves_no_line_when_piped(tmp_path):
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    with ProgressWatcher(ledger, "full-1", out=out, tty=False, every=10.0) as watcher:
        _report(ledger, 5, total=10, seconds=1.0)
        watcher.tick()
        _report(ledger, 10, total=10, seconds=2.0)
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_redrawn_in_place_and_cleared(tmp_path):
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    with ProgressWatcher(ledger, "full-1", out=out, tty=True, every=10.0) as watcher:
        _report(ledger, 50)
        watcher.tick()
        _report(ledger, 100)
        watcher.tick()
    text = out.getvalue()
    assert text.count("\r\033[K   [") == 2 and "loaded_deals 100/200 (50%)" in text
    assert text.endswith("\r\033[K") and "\n" not in text


def test_only_reports_made_while_watching_are_shown(tmp_path):
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    ledger.save_progress(StepProgress("full-1", "loaded_deals", 200, 200, 600, 60.0, time.time() - 60))
    with ProgressWatcher(ledger, "full-1", out=out, tty=False, every=0.0) as watcher:
        watcher.tick()
    assert out.getvalue() == ""


def test_each_load_shows_its_spend_against_the_chosen_plans_estimate(tmp_path):
    """3 tokens a record spent where the plan expected 2.5: +20%; a step the estimate does not price keeps
    its plain count; the rates are asked for once, when the first load reports."""
    ledger, out = Ledger.in_folder(tmp_path), io.StringIO()
    asked = []

    def rates() -> dict[str, float]:
        asked.append(1)
        return {"loaded_deals": 2.5}

    watcher = ProgressWatcher(ledger, "full-1", out=out, tty=False, every=0.0, parts=2, rates=rates)
    with watcher:
        _report(ledger, 120)
        watcher.tick()
        _report(ledger, 200)
        watcher.tick()
        _report(ledger, 10, total=10, step="verified_records")
    assert [line.strip() for line in out.getvalue().splitlines()] == [
        "loaded_deals 120/200 (60%), 6.0 records/s, ETA 13 s, tokens 360 of ~500 estimated (+20.0% vs plan)",
        "loaded_deals 200/200 in 20 s (10.0 records/s), tokens 600 of ~500 estimated (+20.0% vs plan)",
        "verified_records 10/10 in 20 s (0.5 records/s), 30 tokens",
    ]
    assert asked == [1]
