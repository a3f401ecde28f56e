"""`flitstack migrate RUN`: the UI's `migrate` job for a registered run, from a terminal.

It materializes the same job on the same Dagster instance (the run shows up in the UI afterwards) with
the PIPEDRIVE_* settings of the shell, shows the loads' progress, and prints the outcome and the run's
summary instead of Dagster's event log. Running it again resumes: what is loaded is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from flitstack_dagster.cli.registered import add_run_argument, registered_run
from flitstack_dagster.core.errors import is_interrupt
from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.core.settings import Paths

STOPPED_AT_GATE = 3  # exit code: a blocking check stopped the run; the printed check says what to do
INTERRUPTED = 130  # Ctrl-C, as a shell counts it


def configure(p: argparse.ArgumentParser) -> None:
    add_run_argument(p)


def resume_sentence(command: str) -> str:
    return f"stopped; run `{command}` to resume: what was loaded is kept and skipped."


def interrupted_exit(command: str) -> int:
    print(resume_sentence(command), file=sys.stderr, flush=True)
    return INTERRUPTED


@contextlib.contextmanager
def ctrl_c_seen() -> Iterator[list[bool]]:
    """Whether a Ctrl-C arrived inside the block, whoever handled it: Dagster captures a SIGINT that lands
    between its steps and forgets it when the run ends, which would let the command carry on as if
    nothing had been pressed. The signal's wakeup byte is written whatever Python handler runs."""
    seen = [False]
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    try:
        yield seen
    finally:
        signal.set_wakeup_fd(previous)
        with contextlib.suppress(BlockingIOError):
            seen[0] = signal.SIGINT in os.read(read, 4096)
        os.close(read)
        os.close(write)


def launch(paths: Paths, run_key: str, mode: str, bundle: str, every: float = 10.0, parts: int = 10):
    """The `migrate` job for one run with its loads' progress on the console (when piped, a line per
    `parts`-th of a load at most every `every` s); None when Ctrl-C stopped it."""
    from flitstack_dagster.mapping.eta import plan_rates
    from flitstack_dagster.cli.progress import ProgressWatcher
    from flitstack_dagster.defs.instance import interrupted, launch_migrate, mark_interrupted
    from flitstack_dagster.loading.ledger import Ledger

    since = datetime.now(UTC)
    try:
        with ctrl_c_seen() as seen, ProgressWatcher(Ledger.in_folder(paths.root), run_key, every=every, parts=parts,
                                                           rates=lambda: plan_rates(paths, run_key)):
            result = launch_migrate(paths, run_key, mode, bundle)
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        mark_interrupted(paths, run_key, since)
        return None
    return None if seen[0] or interrupted(result) else result


def run(args: argparse.Namespace) -> int:
    """0 when the run finished, 3 when a blocking check stopped it, 1 on a step error, 130 on Ctrl-C."""

    command = f"flitstack migrate {args.run}"
    try:
        return _migrate(args.run)
    except BaseException as exc:
        if is_interrupt(exc):
            return interrupted_exit(command)
        raise


def _migrate(run_key: str) -> int:
    from flitstack_dagster.defs.instance import outcome_lines, step_errors
    from flitstack_dagster.reports.summary import print_summary

    paths, r = registered_run(run_key)
    print(f"materializing `migrate` for {r.run_key} ({r.mode}, {r.bundle_path}) ...", flush=True)
    result = launch(paths, r.run_key, r.mode, str(r.bundle_path))
    if result is None:
        return interrupted_exit(f"flitstack migrate {r.run_key}")
    for line in outcome_lines(r.run_key, result):
        print(plain_line(line, 1000))
    print_summary(paths, r.run_key)
    if result.success:
        return 0
    return 1 if step_errors(result) else STOPPED_AT_GATE
