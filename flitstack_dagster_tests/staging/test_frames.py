"""Deferred staged frames: read the first time anything asks for them, never twice, never when released."""

from __future__ import annotations

import polars as pl

from flitstack_dagster.staging.frames import StagedInputs


def _deferred(reads: list[str]) -> StagedInputs:
    inputs = StagedInputs(labor=pl.DataFrame({"labor_id": ["L1"], "wo_number": ["W1"]}))

    def read() -> pl.DataFrame:
        reads.append("status_log")
        return pl.DataFrame({"log_id": ["S1", "S2"], "wo_number": ["W1", "W1"]})

    inputs.defer("status_log", read, rows=2)
    return inputs


def test_a_deferred_frame_is_read_once_when_first_asked_for():
    reads: list[str] = []
    inputs = _deferred(reads)
    assert inputs.height("status_log") == 2 and inputs.height("labor") == 1
    assert reads == []  # counting does not read
    assert inputs.status_log["log_id"].to_list() == ["S1", "S2"]
    assert inputs.frame("status_log").height == 2 and "changed_at" in inputs.status_log.columns  # normalised
    assert reads == ["status_log"]


def test_replacing_other_frames_keeps_a_frame_deferred():
    reads: list[str] = []
    rest = _deferred(reads).replace(labor=pl.DataFrame({"labor_id": ["L2"]}))
    assert reads == [] and rest.height("status_log") == 2
    assert rest.labor["labor_id"].to_list() == ["L2"]
    assert rest.status_log.height == 2 and reads == ["status_log"]


def test_a_released_deferred_frame_is_never_read():
    reads: list[str] = []
    inputs = _deferred(reads)
    inputs.release("status_log")
    assert inputs.status_log.height == 0 and inputs.height("status_log") == 0
    assert reads == []
