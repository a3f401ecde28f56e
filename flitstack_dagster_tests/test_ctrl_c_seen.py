"""A Ctrl-C that Dagster captures and then forgets (it lands after a run's last step) still stops the
command: `ctrl_c_seen` notices it whoever handled the signal."""

from __future__ import annotations

import os
import signal

from dagster._utils.interrupts import capture_interrupts

from flitstack_dagster.cli.migrate import ctrl_c_seen


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
