"""The multi-tenant rehearsal, step by step, with the commands docs/deployment.md gives.

Everything runs as real processes on 127.0.0.1: PostgreSQL (deploy/postgres_local.sh), one
`flitstack sandbox` per Pipedrive account, and deploy/launch.py (a code server per tenant, the
daemon, the webserver). The test drives it only through the guide's commands, the drop folders and
the instance's run records.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from flitstack_dagster_tests.kit import free_port, tail

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_SCRIPT = REPO / "deploy" / "postgres_local.sh"
LAUNCH = REPO / "deploy" / "launch.py"


@dataclass
class Tenant:
    name: str
    novo_tenant: str  # the city in the generated export
    seed: int
    data_dir: Path
    code_port: int
    sandbox_port: int
    token: str = field(default_factory=lambda: secrets.token_hex(20))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def token_env(self) -> str:
        return f"{self.name.upper()}_PIPEDRIVE_API_TOKEN"


class Rehearsal:
    """Owns every process it starts and stops each by its own id (process group), never by name."""

    def __init__(self, root: Path, tenants: list[Tenant]) -> None:
        self.root = root
        self.tenants = tenants
        self.home = root / "dagster_home"
        # initdb runs as the 'postgres' user when we are root: its folder must not sit under a private one
        self.pg_dir = Path(tempfile.mkdtemp(prefix="flitstack-pg-", dir="/tmp"))
        self.webserver_port = free_port()
        self.env = {
            **os.environ,
            "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(free_port()), "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": secrets.token_hex(12), "DAGSTER_PG_DB": "dagster", "DAGSTER_HOME": str(self.home),
        }
        for k in ("FLITSTACK_DATA_DIR", "PIPEDRIVE_BASE_URL", "PIPEDRIVE_API_TOKEN"):
            self.env.pop(k, None)
        self.env.update({t.token_env: t.token for t in tenants})
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.pg_started = False
        self.tenants_file = root / "tenants.yaml"

    # -- processes ---------------------------------------------------------------------------------
    def _spawn(self, label: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.root / f"{label}.out", "wb")  # noqa: SIM115 - closed after Popen duplicated it
        p = subprocess.Popen(argv, env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs.append((label, p))
        return p

    def run(self, argv: list[str], timeout: float = 180, check: bool = True, env: dict | None = None):
        r = subprocess.run(argv, env=env or self.env, cwd=self.root, capture_output=True, text=True, timeout=timeout,
                           check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def wait_for_line(self, label: str, text: str, timeout: float) -> None:
        out = self.root / f"{label}.out"
        proc = dict(self.procs)[label]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if out.exists() and text in out.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise AssertionError(f"{label} exited {proc.returncode} before '{text}':\n{tail(out)}\n"
                                     f"{self.service_logs()}")
            time.sleep(0.5)
        raise AssertionError(f"{label} did not print '{text}' within {timeout:.0f} s:\n{tail(out)}\n{self.service_logs()}")

    def service_logs(self) -> str:
        logs = sorted((self.home / "service_logs").glob("*.log")) if (self.home / "service_logs").exists() else []
        return "\n".join(f"--- {p.name}\n{tail(p, 25)}" for p in logs)

    # -- the guide's steps -------------------------------------------------------------------------
    def start_postgres(self) -> None:
        """deploy/postgres_local.sh start DIR (installs Debian's postgresql first when it is missing)."""
        self.pg_started = True
        self.run([str(PG_SCRIPT), "start", str(self.pg_dir)], timeout=600)

    def start_sandboxes(self) -> None:
        """`flitstack sandbox --port P` per account; the token comes from PIPEDRIVE_API_TOKEN."""
        for t in self.tenants:
            env = {**self.env, "PIPEDRIVE_API_TOKEN": t.token}
            state = self.root / "sandboxes" / t.name / "state.json"
            self._spawn(f"sandbox-{t.name}", [str(BIN / "flitstack"), "sandbox", "--port", str(t.sandbox_port),
                                              "--plan", "premium", "--state", str(state)], env)
        for t in self.tenants:
            self.wait_for_line(f"sandbox-{t.name}", "Pipedrive sandbox running", 60)

    def write_tenants_file(self) -> None:
        lines = ["tenants:"]
        for t in self.tenants:
            lines += [f"  - name: {t.name}", f"    data_dir: {t.data_dir}", f"    port: {t.code_port}",
                      f"    pipedrive_base_url: {t.base_url}", f"    pipedrive_api_token_env: {t.token_env}"]
        self.tenants_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start_deployment(self, timeout: float = 240) -> None:
        """.venv/bin/python deploy/launch.py --tenants FILE --home DIR --webserver-port PORT"""
        self.write_tenants_file()
        self._spawn("launch", [sys.executable, str(LAUNCH), "--tenants", str(self.tenants_file),
                               "--home", str(self.home), "--webserver-port", str(self.webserver_port)], self.env)
        self.wait_for_line("launch", "ready:", timeout)

    @property
    def workspace(self) -> Path:
        return self.home / "workspace.yaml"

    def dagster(self, *args: str) -> list[str]:
        return [str(BIN / "dagster"), *args]

    def start_sensors(self) -> None:
        """dagster sensor start novo_export_sensor -w WORKSPACE -l TENANT (a person turns it on)."""
        self.parallel([self.dagster("sensor", "start", "novo_export_sensor", "-w", str(self.workspace), "-l", t.name)
                       for t in self.tenants])

    def parallel(self, commands: list[list[str]], timeout: float = 240) -> list[subprocess.CompletedProcess]:
        procs = [subprocess.Popen(c, env=self.env, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for c in commands]
        out = []
        for c, p in zip(commands, procs):
            stdout, _ = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise AssertionError(f"{' '.join(c)} exited {p.returncode}:\n{stdout}")
            out.append(subprocess.CompletedProcess(c, p.returncode, stdout))
        return out

    def drop_bundle(self, t: Tenant, work_orders: int = 15) -> Path:
        """flitstack generate ... --out <data>/exports/NAME, then mv into <data>/drop/ (one rename: never half-copied)."""
        name = f"{t.name}-export"
        out = t.data_dir / "exports" / name
        self.run([str(BIN / "flitstack"), "generate", "--work-orders", str(work_orders), "--seed", str(t.seed),
                  "--tenant", t.novo_tenant, "--out", str(out)])
        target = t.data_dir / "drop" / name
        os.rename(out, target)
        return target

    def approve(self, t: Tenant) -> subprocess.CompletedProcess:
        """FLITSTACK_DATA_DIR=<data> flitstack mapping approve --by NAME (lists what is still unmapped)."""
        return self.run([str(BIN / "flitstack"), "mapping", "approve", "--by", "deployment rehearsal"], check=False,
                        env={**self.env, "FLITSTACK_DATA_DIR": str(t.data_dir)})

    def launch_migrate(self, t: Tenant, partition: str) -> list[str]:
        return self.dagster("job", "launch", "-w", str(self.workspace), "-l", t.name, "-j", "migrate",
                            "--tags", json.dumps({"dagster/partition": partition}))

    def graphql(self, query: str) -> dict:
        r = httpx.post(f"http://127.0.0.1:{self.webserver_port}/graphql", json={"query": query}, timeout=30)
        r.raise_for_status()
        return r.json()["data"]

    # -- teardown ----------------------------------------------------------------------------------
    def stop(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, p in reversed(self.procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if self.pg_started:
            self.run([str(PG_SCRIPT), "stop", str(self.pg_dir)], check=False, timeout=120)
        subprocess.run(["rm", "-rf", str(self.pg_dir)], check=False)
