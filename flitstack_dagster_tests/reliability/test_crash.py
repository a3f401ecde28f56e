"""Crash matrix: the load (and the rollback) runs in its own process and is SIGKILLed at random points —
right after a random number of writes reached Pipedrive, plus a random few milliseconds — then run again;
in the end nothing is missing, nothing is duplicated and every field is as sent.

CI runs 21 kills; the soak variant (`-m soak`) runs SOAK_ROUNDS more rounds with other seeds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from flitstack_dagster import duck
from flitstack_dagster.loading.run import SHAPED_TABLE
from flitstack_dagster.loading.store import ensure_schema
from flitstack_dagster.sandbox.faults import FaultConfig

from . import kit
from .oracle import KIND, destination_problems, fields_problems, live

BEFORE_FILES = tuple(e for e in kit.ENTITIES if e != "file")
SOAK_ROUNDS = int(os.environ.get("FLITSTACK_SOAK_ROUNDS", "5"))


@dataclass
class Crasher:
    """Runs the driver against one prepared copy and one sandbox; counts the kills that really happened."""

    p: kit.Prepared
    sb: object
    rng: random.Random
    kills: int = 0
    log: list[str] = field(default_factory=list)

    def writes(self, prefixes=("add", "update", "delete")) -> int:
        ops = self.sb.usage()["operations"]
        return sum(v["count"] for k, v in ops.items() if k.startswith(prefixes))

    def run(self, action: str, *entities: str, kill_after_writes: int | None = None, timeout: float = 120,
            concurrency: int = 0) -> int | None:
        """Run the driver; with kill_after_writes, SIGKILL it once that many more writes reached Pipedrive.
        Returns the exit code, or None when it was killed."""
        env = {**os.environ, "PIPEDRIVE_API_TOKEN": kit.TOKEN, "CRASH_DRIVER_CONCURRENCY": str(concurrency)}
        cmd = [sys.executable, "-m", "flitstack_dagster_tests.reliability.crash_driver", action,
               str(self.p.paths.duckdb), self.p.run_key, self.sb.base_url, *entities]
        start = self.writes()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if kill_after_writes is not None and self.writes() - start >= kill_after_writes:
                time.sleep(self.rng.uniform(0, 0.03))  # land anywhere: mid-request, mid-DuckDB-write, ...
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate()
                    self.kills += 1
                    self.log.append(f"{action} killed after {self.writes() - start} writes")
                    return None
            assert time.monotonic() < deadline, f"the driver did not finish within {timeout} s"
            time.sleep(0.003)
        out, err = proc.communicate()
        assert proc.returncode == 0, f"driver failed ({proc.returncode}):\n{out}\n{err[-3000:]}"
        assert kit.TOKEN not in out + err
        self.log.append(f"{action} finished")
        return proc.returncode

    def remaining(self, entities) -> int:
        """Shaped records of `entities` not in the id map yet (what a load still has to write)."""
        with duck.connect(self.p.paths.duckdb) as con:
            ensure_schema(con)
            n = 0
            for e in entities:
                n += con.execute(
                    f"SELECT count(*) FROM shaped.{SHAPED_TABLE[e]} s WHERE run_key = ? AND NOT EXISTS "
                    "(SELECT 1 FROM meta.id_map m WHERE m.entity = ? AND m.source_id = s.source_id)",
                    [self.p.run_key, e]).fetchall()[0][0]
        return n

    def kill_rounds(self, action: str, rounds: int, entities=(), todo=None, concurrency: int = 0) -> None:
        """`rounds` kills at random points of the first third of what is left to do, then one run to
        completion."""
        for _ in range(rounds):
            left = todo() if todo else self.remaining(entities)
            assert left > 3, f"too little left to kill into ({left}); the matrix is mis-sized"
            self.run(action, *entities, kill_after_writes=self.rng.randint(1, max(1, left // 3)),
                     concurrency=concurrency)
        self.run(action, *entities)


def check_loaded(c: Crasher, baseline: dict) -> None:
    c.sb.set_faults(FaultConfig())
    assert destination_problems(c.p.paths.duckdb, c.p.run_key, c.sb.snapshot(), baseline) == [], c.log
    assert fields_problems(c.p.paths.duckdb, c.p.run_key, kit.client(c.sb)) == [], c.log


def check_rolled_back(c: Crasher, baseline: dict) -> None:
    snap = c.sb.snapshot()
    for entity, kind in KIND.items():
        assert set(live(snap, kind)) == set(live(baseline, kind)), f"{entity} records left after the rollback"
    with duck.connect(c.p.paths.duckdb, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.id_map").fetchall()[0][0] == 0
        live_rows = con.execute("SELECT count(*) FROM meta.audit_log WHERE run_key = ? AND rolled_back_by IS NULL",
                                [c.p.run_key]).fetchall()[0][0]
        assert live_rows == 0


def test_load_killed_at_random_points_then_files_then_rollback(fresh):
    """12 kills: 6 during the load before files, 3 during the file uploads (commit-then-fail on), and
    3 during the rollback of the finished run."""
    with kit.sandbox(fresh) as sb:
        baseline = sb.snapshot()
        c = Crasher(fresh, sb, random.Random(20261126))
        c.kill_rounds("load", 6, BEFORE_FILES)
        sb.set_faults(commit_then_fail_rate=0.2, commit_then_fail_mode="drop", seed=5)
        c.kill_rounds("load", 3, ("file",), concurrency=1)
        check_loaded(c, baseline)
        c.kill_rounds("rollback", 3, todo=lambda: _live_created(c))
        check_rolled_back(c, baseline)
        assert c.kills == 12, c.log


def test_load_killed_with_commit_then_fail_on(fresh):
    """9 kills of a whole load while 3% of writes are committed and then answered with a dropped connection."""
    with kit.sandbox(fresh, faults=FaultConfig(commit_then_fail_rate=0.03, commit_then_fail_mode="drop", seed=9)) as sb:
        baseline = sb.snapshot()
        c = Crasher(fresh, sb, random.Random(7))
        c.kill_rounds("load", 9, kit.ENTITIES)
        assert sb.usage()["faults_injected"]["commit_then_fail"] >= 2
        check_loaded(c, baseline)
        assert c.kills == 9, c.log


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(SOAK_ROUNDS))
def test_soak_load_and_rollback_killed_many_times(fresh, seed):
    rng = random.Random(seed)
    faults = FaultConfig(commit_then_fail_rate=rng.choice([0.0, 0.02, 0.05]), drop_rate=rng.choice([0.0, 0.01]),
                         error_rate=rng.choice([0.0, 0.03]), commit_then_fail_mode=rng.choice(["error", "drop"]),
                         seed=seed)
    with kit.sandbox(fresh, faults=faults) as sb:
        baseline = sb.snapshot()
        c = Crasher(fresh, sb, rng)
        c.kill_rounds("load", 15, kit.ENTITIES)
        check_loaded(c, baseline)
        c.kill_rounds("rollback", 5, todo=lambda: _live_created(c))
        check_rolled_back(c, baseline)


def _live_created(c: Crasher) -> int:
    with duck.connect(c.p.paths.duckdb, read_only=True) as con:
        return con.execute("SELECT count(*) FROM meta.id_map").fetchall()[0][0]
