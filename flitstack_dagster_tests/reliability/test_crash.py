"""Crash matrix: the load (and the rollback) runs in its own process group together with the sandbox
it talks to — hosted in the driver's process (as `flitstack demo` does) or as a `flitstack sandbox`
child, by turns — and the whole group is SIGKILLed at random points: right after a random number of
writes reached Pipedrive, plus a random few milliseconds. Then the sandbox is served again from its
state and the step runs again; in the end nothing is missing, nothing is duplicated, every Pipedrive
id is in the id map once and every field is as sent.

CI runs 21 kills; the soak variant (`-m soak`) runs SOAK_ROUNDS more rounds with other seeds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.store import ensure_schema
from flitstack_dagster.sandbox.clock import Clock
from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.sandbox.store import Store
from flitstack_dagster_tests.kit import free_port

from . import kit
from .oracle import KIND, destination_problems, fields_problems, live

pytestmark = pytest.mark.slow

BEFORE_FILES = tuple(e for e in kit.ENTITIES if e != "file")
SOAK_ROUNDS = int(os.environ.get("FLITSTACK_SOAK_ROUNDS", "5"))
HOSTINGS = ("inprocess", "process")
WRITES = ("add", "update", "delete")


@dataclass
class Crasher:
    """Runs the driver (and its sandbox) against one prepared copy; counts the kills that really happened."""

    p: kit.Prepared
    rng: random.Random
    faults: FaultConfig = field(default_factory=FaultConfig)
    port: int = field(default_factory=free_port)
    kills: int = 0
    runs: int = 0
    injected: int = 0  # commit-then-fail faults the sandboxes injected, over all runs
    hosted: Counter = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served_usage(self) -> dict | None:
        """The serving sandbox's usage (writes counted, faults injected); None while it does not serve."""
        try:
            r = httpx.get(f"{self.base_url}/_sandbox/usage", headers={"x-api-token": kit.TOKEN}, timeout=2)
            return r.json()["data"]
        except (httpx.TransportError, ValueError, KeyError):
            return None

    def stored_writes(self) -> int:
        """Writes counted in the sandbox's state while no sandbox serves it."""
        store = Store(self.p.sandbox_state, Clock(), kit.PLAN, kit.SEATS, kit.TOKEN)
        try:
            return _writes(store.state["usage"]["ops"])
        finally:
            store.close()

    def run(self, action: str, *entities: str, kill_after_writes: int | None = None, timeout: float = 120,
            concurrency: int = 0) -> int | None:
        """Run the driver with its sandbox; with kill_after_writes, SIGKILL the whole process group once
        that many more writes reached Pipedrive. Returns the exit code, or None when it was killed."""
        hosting = HOSTINGS[self.runs % len(HOSTINGS)]
        self.runs += 1
        env = {**os.environ, "PIPEDRIVE_API_TOKEN": kit.TOKEN, "CRASH_DRIVER_CONCURRENCY": str(concurrency),
               "CRASH_DRIVER_SANDBOX_STATE": str(self.p.sandbox_state), "CRASH_DRIVER_HOSTING": hosting,
               "CRASH_DRIVER_FAULTS": json.dumps(self.faults.to_dict())}
        cmd = [sys.executable, "-m", "flitstack_dagster_tests.reliability.crash_driver", action,
               str(self.p.paths.duckdb), self.p.run_key, self.base_url, *entities]
        start = self.stored_writes()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + timeout
        injected = 0
        while proc.poll() is None:
            usage = self.served_usage()
            done = _writes(usage["operations"]) if usage else None
            injected = usage["faults_injected"]["commit_then_fail"] if usage else injected
            if kill_after_writes is not None and done is not None and done - start >= kill_after_writes:
                time.sleep(self.rng.uniform(0, 0.03))  # land anywhere: mid-request, mid-commit, mid-DuckDB-write
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    self.injected += injected
                    self._wait_port_free()
                    self.kills += 1
                    self.hosted[hosting] += 1
                    self.log.append(f"{action} ({hosting}) killed with its sandbox after {done - start}+ writes")
                    return None
            assert time.monotonic() < deadline, f"the driver did not finish within {timeout} s"
            time.sleep(0.003 if kill_after_writes is not None else 0.05)
        out, err = proc.communicate()
        self.injected += injected
        assert proc.returncode == 0, f"driver failed ({proc.returncode}, {hosting}):\n{out}\n{err[-3000:]}\n{self.log}"
        assert kit.TOKEN not in out + err
        self.log.append(f"{action} ({hosting}) finished")
        return proc.returncode

    def _wait_port_free(self) -> None:
        """The killed sandbox's socket closes with its process; the next one listens on the same port."""
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            assert time.monotonic() < deadline, "the killed sandbox still listens"
            time.sleep(0.01)

    def remaining(self, entities) -> int:
        """Shaped records of `entities` not in the id map yet (what a load still has to write)."""
        with duck.connect(self.p.paths.duckdb) as con:
            ensure_schema(con)
            n = 0
            for e in entities:
                n += con.execute(
                    f"SELECT count(*) FROM shaped.{ENTITIES.shaped_tables[e]} s WHERE run_key = ? AND NOT EXISTS "
                    "(SELECT 1 FROM meta.id_map m WHERE m.entity = ? AND m.source_id = s.source_id)",
                    [self.p.run_key, e]).fetchall()[0][0]
        return n

    def kill_rounds(self, action: str, rounds: int, entities=(), todo=None, concurrency: int = 0) -> None:
        """`rounds` kills at random points of the first third of what is left to do, then one run to
        completion (unaided: the same command, nothing repaired in between)."""
        for _ in range(rounds):
            left = todo() if todo else self.remaining(entities)
            assert left > 3, f"too little left to kill into ({left}); the matrix is mis-sized"
            self.run(action, *entities, kill_after_writes=self.rng.randint(1, max(1, left // 3)),
                     concurrency=concurrency)
        self.run(action, *entities)


def _writes(operations: dict) -> int:
    return sum(v["count"] for k, v in operations.items() if k.startswith(WRITES))


def check_loaded(c: Crasher, baseline: dict) -> None:
    """Read back from the sandbox served again on its state: 0 missing, 0 duplicates, ids unique."""
    with kit.sandbox(c.p) as sb:
        assert destination_problems(c.p.paths.duckdb, c.p.run_key, sb.snapshot(), baseline) == [], c.log
        assert fields_problems(c.p.paths.duckdb, c.p.run_key, kit.client(sb)) == [], c.log
    with duck.connect(c.p.paths.duckdb, read_only=True) as con:
        shared = con.execute("SELECT entity, pipedrive_id, count(*) FROM meta.id_map GROUP BY ALL "
                             "HAVING count(*) > 1").fetchall()
    assert shared == [], f"Pipedrive ids held by more than one source record: {shared[:5]}"


def baseline_of(p: kit.Prepared) -> dict:
    with kit.sandbox(p) as sb:
        return sb.snapshot()


def check_rolled_back(c: Crasher, baseline: dict) -> None:
    with kit.sandbox(c.p) as sb:
        snap = sb.snapshot()
    for entity, kind in KIND.items():
        assert set(live(snap, kind)) == set(live(baseline, kind)), f"{entity} records left after the rollback"
    with duck.connect(c.p.paths.duckdb, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.id_map").fetchall()[0][0] == 0
        live_rows = con.execute("SELECT count(*) FROM meta.audit_log WHERE run_key = ? AND rolled_back_by IS NULL",
                                [c.p.run_key]).fetchall()[0][0]
        assert live_rows == 0


def test_load_killed_at_random_points_then_files_then_rollback(fresh):
    """12 whole-group kills: 6 during the load before files, 3 during the file uploads (commit-then-drop
    on), and 3 during the rollback of the finished run."""
    baseline = baseline_of(fresh)
    c = Crasher(fresh, random.Random(20261126))
    c.kill_rounds("load", 6, BEFORE_FILES)
    c.faults = FaultConfig(commit_then_fail_rate=0.2, commit_then_fail_mode="drop", seed=5)
    c.kill_rounds("load", 3, ("file",), concurrency=1)
    c.faults = FaultConfig()
    check_loaded(c, baseline)
    c.kill_rounds("rollback", 3, todo=lambda: _live_created(c))
    check_rolled_back(c, baseline)
    assert c.kills == 12 and set(c.hosted) == set(HOSTINGS), c.log
    print("\n".join(c.log))  # the kill points, for RELIABILITY.md (pytest -s)


def test_load_killed_with_commit_then_fail_on(fresh):
    """9 whole-group kills of a whole load while 3% of writes are committed and then answered with a
    dropped connection."""
    baseline = baseline_of(fresh)
    c = Crasher(fresh, random.Random(7), FaultConfig(commit_then_fail_rate=0.03, commit_then_fail_mode="drop", seed=9))
    c.kill_rounds("load", 9, kit.ENTITIES)
    assert c.injected >= 2, c.log
    check_loaded(c, baseline)
    assert c.kills == 9 and set(c.hosted) == set(HOSTINGS), c.log
    print("\n".join(c.log + [f"commit-then-fail injected: {c.injected}"]))


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(SOAK_ROUNDS))
def test_soak_load_and_rollback_killed_many_times(fresh, seed):
    rng = random.Random(seed)
    faults = FaultConfig(commit_then_fail_rate=rng.choice([0.0, 0.02, 0.05]), drop_rate=rng.choice([0.0, 0.01]),
                         error_rate=rng.choice([0.0, 0.03]), commit_then_fail_mode=rng.choice(["error", "drop"]),
                         seed=seed)
    baseline = baseline_of(fresh)
    c = Crasher(fresh, rng, faults)
    c.kill_rounds("load", 15, kit.ENTITIES)
    c.faults = FaultConfig()
    check_loaded(c, baseline)
    c.faults = faults
    c.kill_rounds("rollback", 5, todo=lambda: _live_created(c))
    check_rolled_back(c, baseline)


def _live_created(c: Crasher) -> int:
    with duck.connect(c.p.paths.duckdb, read_only=True) as con:
        return con.execute("SELECT count(*) FROM meta.id_map").fetchall()[0][0]
