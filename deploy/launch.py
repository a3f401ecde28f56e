"""Run the production shape on one machine: one code server per tenant, the daemon and the webserver,
all on the Postgres-backed instance of deploy/dagster.yaml.

    .venv/bin/python deploy/launch.py --tenants deploy/tenants.yaml --home /srv/flitstack/dagster_home

It writes `<home>/dagster.yaml` (a copy of deploy/dagster.yaml) and `<home>/workspace.yaml` (one gRPC
code location per tenant), starts `dagster api grpc` per tenant with that tenant's FLITSTACK_DATA_DIR
and PIPEDRIVE_* environment, then `dagster-daemon run` and `dagster-webserver`, prints `ready` and runs
until Ctrl-C or SIGTERM, when it stops them all. Logs go to `<home>/service_logs/` (Dagster itself owns
`<home>/logs`). On Kubernetes the Helm chart plays this part (docs/deployment.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Stop(Exception):
    """Ctrl-C or SIGTERM: stop every child, then exit 0."""


class LaunchError(Exception):
    """A problem the person starting the deployment can fix; printed without a traceback."""


@dataclass(frozen=True)
class Tenant:
    name: str
    data_dir: Path
    port: int
    pipedrive_base_url: str
    pipedrive_api_token_env: str


def load_tenants(path: Path) -> list[Tenant]:
    """Read and check the tenants file: unique names and ports, a token variable per tenant."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LaunchError(f"cannot read the tenants file {path}: {e}") from e
    items = doc.get("tenants") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise LaunchError(f"{path}: expected a non-empty `tenants:` list")
    out: list[Tenant] = []
    for i, t in enumerate(items, start=1):
        where = f"{path}: tenant #{i}"
        if not isinstance(t, dict):
            raise LaunchError(f"{where}: expected a mapping")
        missing = [k for k in ("name", "data_dir", "port", "pipedrive_base_url", "pipedrive_api_token_env")
                   if t.get(k) in (None, "")]
        if missing:
            raise LaunchError(f"{where}: missing {', '.join(missing)}")
        name = str(t["name"])
        if not NAME.match(name):
            raise LaunchError(f"{where}: name {name!r} must be lower-case letters, digits and _ (it names the "
                              "code location)")
        data_dir = Path(str(t["data_dir"])).expanduser()
        if not data_dir.is_absolute():
            data_dir = path.parent / data_dir
        try:
            port = int(t["port"])
        except (TypeError, ValueError):
            raise LaunchError(f"{where} ({name}): port {t['port']!r} is not a number") from None
        out.append(Tenant(name, data_dir.resolve(), port, str(t["pipedrive_base_url"]),
                          str(t["pipedrive_api_token_env"])))
    for attr in ("name", "port", "data_dir"):
        seen = [getattr(t, attr) for t in out]
        dup = {v for v in seen if seen.count(v) > 1}
        if dup:
            raise LaunchError(f"{path}: two tenants share the {attr.replace('_', ' ')} {min(map(str, dup))}")
    return out


def workspace_yaml(tenants: list[Tenant], host: str) -> str:
    """One gRPC code location per tenant: the daemon and webserver reach each tenant's code over gRPC."""
    return yaml.safe_dump({"load_from": [
        {"grpc_server": {"host": host, "port": t.port, "location_name": t.name}} for t in tenants
    ]}, sort_keys=False)


def base_env(tenants: list[Tenant], home: Path) -> dict[str, str]:
    """The environment every process gets: the instance's, without any tenant's Pipedrive token."""
    missing = [v for v in PG_VARS if not os.environ.get(v)]
    if missing:
        raise LaunchError(f"set {', '.join(missing)}: the instance (deploy/dagster.yaml) reads its Postgres "
                          "connection from them")
    env = {k: v for k, v in os.environ.items()
           if k not in {t.pipedrive_api_token_env for t in tenants} and not k.startswith("PIPEDRIVE_")}
    env.pop("FLITSTACK_DATA_DIR", None)
    env["DAGSTER_HOME"] = str(home)
    return env


def tenant_env(tenant: Tenant, base: dict[str, str]) -> dict[str, str]:
    token = os.environ.get(tenant.pipedrive_api_token_env, "")
    if not token:
        raise LaunchError(f"tenant {tenant.name}: set {tenant.pipedrive_api_token_env} (its Pipedrive API token)")
    return {**base, "FLITSTACK_DATA_DIR": str(tenant.data_dir), "PIPEDRIVE_BASE_URL": tenant.pipedrive_base_url,
            "PIPEDRIVE_API_TOKEN": token}


class Processes:
    """The children, each in its own process group so stopping one stops what it started (run workers)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, label: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
        log = open(self.logs / f"{label}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs.append((label, p))
        print(f"  started {label} (pid {p.pid}), log {self.logs / (label + '.log')}", flush=True)
        return p

    def dead(self) -> list[tuple[str, int]]:
        return [(label, p.returncode) for label, p in self.procs if p.poll() is not None]

    def stop(self, grace: float = 20.0) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for _, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # whatever is left of the group, run workers included
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()


def wait_for_port(host: str, port: int, label: str, procs: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.dead():
            label_, rc = procs.dead()[0]
            raise LaunchError(f"{label_} exited (code {rc}) while starting; see {procs.logs / (label_ + '.log')}")
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.5)
    raise LaunchError(f"{label} did not listen on {host}:{port} within {timeout:.0f} s; see "
                      f"{procs.logs / (label + '.log')}")


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def prepare_home(home: Path, tenants: list[Tenant], host: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "service_logs").mkdir(exist_ok=True)
    shutil.copyfile(HERE / "dagster.yaml", home / "dagster.yaml")
    ws = home / "workspace.yaml"
    ws.write_text(workspace_yaml(tenants, host), encoding="utf-8")
    for t in tenants:
        for sub in ("drop", "exports", "reports", "work"):
            (t.data_dir / sub).mkdir(parents=True, exist_ok=True)
    return ws


def run(args: argparse.Namespace) -> int:
    tenants = load_tenants(args.tenants.resolve())
    home_arg = args.home or os.environ.get("DAGSTER_HOME")
    if not home_arg:
        raise LaunchError("give --home DIR (or set DAGSTER_HOME): where the instance's dagster.yaml and "
                          "workspace.yaml are written")
    home = Path(home_arg).expanduser().resolve()
    host = args.host
    base = base_env(tenants, home)
    envs = {t.name: tenant_env(t, base) for t in tenants}
    busy = [f"{t.name} ({t.port})" for t in tenants if not port_free(host, t.port)]
    if args.webserver_port and not port_free(host, args.webserver_port):
        busy.append(f"webserver ({args.webserver_port})")
    if busy:
        raise LaunchError(f"port already in use on {host}: {', '.join(busy)}")
    ws = prepare_home(home, tenants, host)
    print(f"instance {home / 'dagster.yaml'}; workspace {ws} ({len(tenants)} tenant(s))", flush=True)

    procs = Processes(home / "service_logs")

    def on_signal(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for t in tenants:
            procs.start(f"code-{t.name}", [str(BIN / "dagster"), "api", "grpc", "--module-name",
                                           "flitstack_dagster.definitions", "--host", host, "--port", str(t.port),
                                           "--location-name", t.name], envs[t.name], cwd=t.data_dir)
        for t in tenants:
            wait_for_port(host, t.port, f"code-{t.name}", procs, timeout=args.start_timeout)
        procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ws)], base, cwd=home)
        if args.webserver_port:
            procs.start("webserver", [str(BIN / "dagster-webserver"), "-w", str(ws), "-h", host,
                                      "-p", str(args.webserver_port)], base, cwd=home)
            wait_for_port(host, args.webserver_port, "webserver", procs, timeout=args.start_timeout)
        ui = f"; UI http://{host}:{args.webserver_port}" if args.webserver_port else ""
        print(f"ready: {', '.join(t.name for t in tenants)}{ui}. Ctrl-C stops everything.", flush=True)
        while True:
            dead = procs.dead()
            if dead:
                label, rc = dead[0]
                print(f"error: {label} exited (code {rc}); see {procs.logs / (label + '.log')}. Stopping.",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
    except _Stop:
        return 0
    finally:
        procs.stop()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deploy/launch.py", description=__doc__.splitlines()[0])
    p.add_argument("--tenants", type=Path, required=True, help="tenants file (see deploy/tenants.example.yaml)")
    p.add_argument("--home", help="DAGSTER_HOME: where dagster.yaml, workspace.yaml and service_logs/ go "
                                  "(default: $DAGSTER_HOME)")
    p.add_argument("--host", default="127.0.0.1", help="interface for the code servers and the webserver")
    p.add_argument("--webserver-port", type=int, default=3000, help="the UI's port (0: no webserver)")
    p.add_argument("--start-timeout", type=float, default=120.0, help="seconds each server may take to start")
    args = p.parse_args(argv)
    try:
        return run(args)
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
