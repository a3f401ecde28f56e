"""A Ctrl-C that Dagster captures and then forgets (it lands after a run's last step) still stops the
command: `ctrl_c_seen` notices it whoever handled the signal; and it stops it with one sentence, not a
library's traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from dagster._utils.interrupts import capture_interrupts

from flitstack_dagster.cli.migrate import ctrl_c_seen
from flitstack_dagster.core.errors import INTERRUPT_NAMES, is_interrupt


def _press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_dagster_swallowed_is_seen():
    with ctrl_c_seen() as seen:
        with capture_interrupts():  # how Dagster runs a job in this process
            _press_ctrl_c()
    assert seen[0]


def test_no_ctrl_c_no_stop_and_the_previous_wakeup_fd_is_back():
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    with ctrl_c_seen() as seen:
        pass
    assert not seen[0]
    assert signal.set_wakeup_fd(before) == before


_LIBRARY_REPORTS_THE_INTERRUPT = """
import gc, logging
from flitstack_dagster.cli import quiet_interrupt_tracebacks
quiet_interrupt_tracebacks()
try:
    raise KeyboardInterrupt
except KeyboardInterrupt:  # as a connection pool does when Ctrl-C lands inside its close
    logging.getLogger("sqlalchemy.pool.impl.QueuePool").error("Exception closing connection", exc_info=True)

class Finalizer:
    def __del__(self):
        raise KeyboardInterrupt

Finalizer()
gc.collect()
logging.getLogger("sqlalchemy.pool").error("a real problem still shows")
"""


def test_a_library_reporting_the_ctrl_c_prints_no_traceback_but_real_errors_still_show():
    done = subprocess.run([sys.executable, "-c", _LIBRARY_REPORTS_THE_INTERRUPT],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "a real problem still shows" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_every_form_of_a_ctrl_c_is_one_and_nothing_else_is():
    """The one list both the CLI (classes) and the Dagster wiring (serialized class names) read names real
    classes: Python's, Dagster's wrapping of it, DuckDB's during a query."""
    import dagster
    import duckdb

    forms = [KeyboardInterrupt(), dagster.DagsterExecutionInterruptedError(), duckdb.InterruptException()]
    assert all(is_interrupt(e) for e in forms)
    assert {type(e).__name__ for e in forms} == INTERRUPT_NAMES
    assert not is_interrupt(ValueError("stopped")) and not is_interrupt(duckdb.IOException())
