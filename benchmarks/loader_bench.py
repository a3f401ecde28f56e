"""Loader benchmarks 2-4: the load at Pipedrive's rate limit, delta proportionality, estimate accuracy.

    .venv/bin/python benchmarks/loader_bench.py [--quick] [--records 20000] [--json results.json]

2. Loader at the rate limit: the local sandbox (its own process) set to Growth and to Ultimate with
   150 ms added to every request; synthetic shaped organizations, persons, deals and activities go
   through `load_entity` with a real LoadStore (GroupCommitStore) on a temp DuckDB. Reported: requests per 2 s as a
   share of the burst limit, 429 answers, tokens vs the token floor, and a plain sequential loader
   (one request at a time, retry on 429) on the same kind of records in the same run -> speed-up.
   With each plan's figures: the machine's load average during the load and the CPU seconds the
   loader and the sandbox used (other sessions share the cores; a starved box shows up there).
3. Delta proportionality: after the Ultimate full load, 1% of the records change; the delta's tokens
   and time vs the full run's.
4. Estimate accuracy: a small generated bundle through the real pipeline (the `flitstack demo` flow)
   into a sandbox; the scope document's predicted requests, tokens and duration vs what was spent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flitstack_dagster.core import duck  # noqa: E402
from flitstack_dagster.entities import ENTITIES  # noqa: E402
from flitstack_dagster.loading.loader import SOURCE_ID_FIELD, load_entity  # noqa: E402
from flitstack_dagster.loading.resolve import CustomField, Registry, Resolver  # noqa: E402
from flitstack_dagster.loading.group_commit import GroupCommitStore  # noqa: E402
from flitstack_dagster.pipedrive.client import PipedriveClient  # noqa: E402
from flitstack_dagster.pipedrive.costs import default_cost_table  # noqa: E402
from flitstack_dagster.pipedrive.ratelimit import PLAN_BURST, WINDOW_SECONDS  # noqa: E402

LATENCY_MS = 150
# share of each entity in a synthetic load, in FK order
MIX = (("organization", 0.125), ("person", 0.125), ("deal", 0.25), ("activity", 0.5))
CREATE_PATH = {"organization": "/api/v2/organizations", "person": "/api/v2/persons", "deal": "/api/v2/deals",
               "activity": "/api/v2/activities"}
PREFIX = {"organization": "account", "person": "contact", "deal": "work_order", "activity": "activity"}


# -- the sandbox in its own process (the loader gets its own core, as against real Pipedrive) ----------------

_CHILD = """
import json, sys
from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.sandbox.server import SandboxServer
plan, seats, latency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with SandboxServer(plan=plan, seats=seats, faults=FaultConfig(latency_ms=latency)) as sb:
    print(json.dumps({"base_url": sb.base_url, "token": sb.api_token}), flush=True)
    sys.stdin.read()  # until the benchmark closes the pipe
"""


class SandboxProcess:
    """`SandboxServer` in a child process; the admin channel (/_sandbox/) for usage and faults."""

    def __init__(self, plan: str, seats: int, latency_ms: int):
        self.plan = plan
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, plan, str(seats), str(latency_ms)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        info = json.loads(line)
        self.base_url, self.api_token = info["base_url"], info["token"]
        self._admin = httpx.Client(base_url=self.base_url, headers={"x-api-token": self.api_token}, timeout=60)

    def usage(self) -> dict:
        return self._admin.get("/_sandbox/usage").json()["data"]

    def set_faults(self, **cfg: Any) -> None:
        self._admin.post("/_sandbox/faults", json=cfg).raise_for_status()

    def close(self) -> None:
        self._admin.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def usage_totals(usage: dict) -> tuple[int, int]:
    ops = usage["operations"].values()
    return sum(o["count"] for o in ops), sum(o["tokens"] for o in ops)


# -- synthetic shaped rows ----------------------------------------------------------------------------------

def _hash(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def synthetic_rows(n: int, tag: str) -> dict[str, list[dict[str, Any]]]:
    """~n shaped rows in the loader's shape: source_id, content_hash, payload (JSON), reference columns."""
    counts = {e: max(1, round(n * share)) for e, share in MIX}
    out: dict[str, list[dict[str, Any]]] = {}
    for entity, _ in MIX:
        rows = []
        for i in range(counts[entity]):
            sid = f"{PREFIX[entity]}:{tag}-{i:06d}"
            row: dict[str, Any] = {"source_id": sid, "org_ref": None, "person_ref": None, "deal_ref": None,
                                   "owner_id": None}
            if entity == "organization":
                payload = {"name": f"Site {tag} {i}", SOURCE_ID_FIELD: sid}
            elif entity == "person":
                payload = {"name": f"Tech {tag} {i}", SOURCE_ID_FIELD: sid}
                row["org_ref"] = f"account:{tag}-{i % counts['organization']:06d}"
            elif entity == "deal":
                payload = {"title": f"WO-{i:06d} · Pump check", SOURCE_ID_FIELD: sid}
                row["org_ref"] = f"account:{tag}-{i % counts['organization']:06d}"
                row["person_ref"] = f"contact:{tag}-{i % counts['person']:06d}"
            else:
                payload = {"subject": f"Labor {i}", "type": "call", "due_date": "2026-01-15", "done": True}
                row["deal_ref"] = f"work_order:{tag}-{i % counts['deal']:06d}"
            row["payload"] = json.dumps(payload, sort_keys=True)
            row["content_hash"] = _hash(row["payload"] + str(row["org_ref"]) + str(row["person_ref"]))
            rows.append(row)
        out[entity] = rows
    return out


def change_rows(rows: dict[str, list[dict[str, Any]]], share: float) -> int:
    """Change one field of every 1/share-th record (a delta export); returns how many changed."""
    step = max(1, round(1 / share))
    changed = 0
    for entity, lst in rows.items():
        for i in range(0, len(lst), step):
            p = json.loads(lst[i]["payload"])
            key = {"organization": "name", "person": "name", "deal": "title", "activity": "subject"}[entity]
            p[key] = f"{p[key]} (changed)"
            lst[i]["payload"] = json.dumps(p, sort_keys=True)
            lst[i]["content_hash"] = _hash(lst[i]["payload"] + "delta")
            changed += 1
    return changed


def provision(client: PipedriveClient) -> Registry:
    """The `Novo Source ID` custom field on organizations, persons and deals, as provisioning makes it."""
    fields: dict[str, dict[str, CustomField]] = {}
    for entity in ENTITIES.with_identity("source_id_field"):
        f = client.create_field(entity, {"field_name": SOURCE_ID_FIELD, "field_type": "varchar"})
        fields[entity] = {SOURCE_ID_FIELD: CustomField(f.field_code, "varchar")}
    return Registry(fields, {}, {}, {"call": "call"})


# -- request timeline (every request the client sends, from httpx event hooks) -------------------------------

@dataclass
class Timeline:
    sent: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def hook(self, client: PipedriveClient) -> None:
        client._http.event_hooks["request"].append(lambda req: self.sent.append(time.monotonic()))
        client._http.event_hooks["response"].append(lambda resp: self.statuses.append(resp.status_code))

    def rate(self, limit: int, trim: float = WINDOW_SECONDS) -> dict[str, float]:
        """Requests per 2 s as a share of the limit: over the whole load, and in steady state (without the
        first and last 2 s: the opening burst and the tail)."""
        s = sorted(self.sent)
        if len(s) < 2:
            return {"whole": 0.0, "steady": 0.0, "peak_in_2s": len(s)}
        whole = len(s) / max(s[-1] - s[0], 1e-9) * WINDOW_SECONDS / limit
        lo, hi = s[0] + trim, s[-1] - trim
        mid = [t for t in s if lo <= t <= hi]
        steady = (len(mid) / (hi - lo) * WINDOW_SECONDS / limit) if hi - lo > 1 and len(mid) > 1 else whole
        peak, j = 0, 0
        for i, t in enumerate(s):
            while s[j] <= t - WINDOW_SECONDS:
                j += 1
            peak = max(peak, i - j + 1)
        return {"whole": whole, "steady": steady, "peak_in_2s": peak}


# -- the machine while a load runs (other sessions share the 2 cores) ----------------------------------------

class MachineLoad:
    """Samples the 1-minute load average every few seconds while a load runs, and the CPU seconds the
    loader (this process) and the sandbox process used: a share below target with a high load average
    and a loader that needed most of a core is the box, not the limiter."""

    def __init__(self, sandbox_pid: int | None = None, every: float = 5.0) -> None:
        import threading

        self.sandbox_pid, self.every = sandbox_pid, every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    @staticmethod
    def _cpu(pid: int | None) -> float:
        if pid is None:
            t = os.times()
            return t.user + t.system
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def __enter__(self) -> MachineLoad:
        self._t0, self._own0, self._sb0 = time.monotonic(), self._cpu(None), self._cpu(self.sandbox_pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self._t0
        self.loader_cpu = self._cpu(None) - self._own0
        self.sandbox_cpu = self._cpu(self.sandbox_pid) - self._sb0

    def summary(self) -> dict[str, float]:
        s = self.samples or [float("nan")]
        return {"load_avg_mean": round(sum(s) / len(s), 2), "load_avg_max": round(max(s), 2),
                "loader_cpu_s": round(self.loader_cpu, 1), "sandbox_cpu_s": round(self.sandbox_cpu, 1),
                "loader_cpu_share": round(self.loader_cpu / self.seconds, 3) if self.seconds else 0.0}


# -- benchmark 2: the loader at the rate limit ---------------------------------------------------------------

def token_floor(counts: dict[str, int]) -> int:
    """Sum of the cheapest operation that writes each record (its create)."""
    table = default_cost_table()
    return sum(n * table.cost("POST", CREATE_PATH[e]) for e, n in counts.items())


def run_loader(client: PipedriveClient, con, registry: Registry, rows: dict[str, list[dict]], run_key: str,
               id_maps: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    store = GroupCommitStore(con)
    resolver = Resolver(registry, id_maps if id_maps is not None else {})
    t0, tok0, req0 = time.monotonic(), client.tokens_spent, _requests(client)
    per_entity = {}
    for entity, _ in MIX:
        r = load_entity(client, store, resolver, entity, rows[entity], run_key)
        if r.set_aside or r.stopped:
            raise RuntimeError(f"{entity}: {len(r.set_aside)} set aside ({r.set_aside[:2]}), stopped={r.stopped}")
        per_entity[entity] = {"created": r.created, "updated": r.updated, "skipped": r.skipped, "tokens": r.tokens,
                              "seconds": round(r.seconds, 2)}
    return {"seconds": time.monotonic() - t0, "tokens": client.tokens_spent - tok0,
            "requests": _requests(client) - req0, "entities": per_entity, "resolver": resolver}


def _requests(client: PipedriveClient) -> int:
    return sum(u["requests"] for u in client.usage.values())


def sequential_load(base_url: str, token: str, registry: Registry, rows: dict[str, list[dict]]) -> dict[str, Any]:
    """The plain loader: one request at a time, waits out a 429 (retry-after) and sends again."""
    resolver = Resolver(registry, {})
    n = retries = 0
    t0 = time.monotonic()
    with httpx.Client(base_url=base_url, headers={"x-api-token": token}, timeout=60) as http:
        for entity, _ in MIX:
            from flitstack_dagster.loading.loader import build_body, without_nulls

            for row in rows[entity]:
                body = without_nulls(build_body(entity, resolver, row))
                while True:
                    resp = http.post(CREATE_PATH[entity], json=body)
                    n += 1
                    if resp.status_code != 429:
                        break
                    retries += 1
                    time.sleep(float(resp.headers.get("retry-after", "1")))
                resp.raise_for_status()
                resolver.id_maps.setdefault(entity, {})[row["source_id"]] = resp.json()["data"]["id"]
    secs = time.monotonic() - t0
    records = sum(len(v) for v in rows.values())
    return {"records": records, "requests": n, "retries_429": retries, "seconds": secs, "records_per_s": records / secs}


def bench_rate_limit(plan: str, records: int, seq_records: int, seats: int, workdir: Path,
                     delta: bool) -> dict[str, Any]:
    limit = PLAN_BURST[plan]
    out: dict[str, Any] = {"plan": plan, "burst_limit": limit, "latency_ms": LATENCY_MS}
    with SandboxProcess(plan, seats, LATENCY_MS) as sb, \
            PipedriveClient(sb.base_url, sb.api_token, plan=plan, seats=seats) as client:
        out["max_concurrency"] = client.max_concurrency
        registry = provision(client)
        rows = synthetic_rows(records, "full")
        counts = {e: len(v) for e, v in rows.items()}
        floor = token_floor(counts)
        con = duck.connect(workdir / f"bench-{plan}.duckdb")
        timeline = Timeline()
        timeline.hook(client)
        limited0 = client.rate_limited_responses
        with MachineLoad(sb.proc.pid) as machine_load:
            full = run_loader(client, con, registry, rows, "full-1")
        rate = timeline.rate(limit)
        n429 = sum(1 for s in timeline.statuses if s == 429)
        out["full"] = {
            "records": sum(counts.values()), "requests": full["requests"], "seconds": round(full["seconds"], 2),
            "records_per_s": round(sum(counts.values()) / full["seconds"], 2),
            "rate_share_whole": round(rate["whole"], 4), "rate_share_steady": round(rate["steady"], 4),
            "peak_requests_in_2s": rate["peak_in_2s"], "answers_429": n429,
            "client_rate_limited": client.rate_limited_responses - limited0,
            "tokens": full["tokens"], "token_floor": floor, "tokens_vs_floor": round(full["tokens"] / floor, 4),
            "entities": full["entities"], "machine_load": machine_load.summary(),
        }
        if delta:
            changed = change_rows(rows, 0.01)
            id_maps = {e: dict(full["resolver"].id_maps.get(e, {})) for e in ENTITIES.referenced}
            d = run_loader(client, con, registry, rows, "delta-1", id_maps)
            out["delta"] = {
                "changed_records": changed, "share_changed": round(changed / sum(counts.values()), 4),
                "requests": d["requests"], "tokens": d["tokens"], "seconds": round(d["seconds"], 2),
                "token_share": round(d["tokens"] / full["tokens"], 4),
                "time_share": round(d["seconds"] / full["seconds"], 4),
                "entities": d["entities"],
            }
        con.close()
        seq_rows = synthetic_rows(seq_records, "seq")
        seq = sequential_load(sb.base_url, sb.api_token, registry, seq_rows)
        out["sequential"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in seq.items()}
        out["speedup"] = round(out["full"]["records_per_s"] / seq["records_per_s"], 2)
        server_requests, server_tokens = usage_totals(sb.usage())
        out["server_requests"], out["server_tokens"] = server_requests, server_tokens
    return out


# -- benchmark 4: estimate accuracy --------------------------------------------------------------------------

def bench_estimate(work_orders: int, plan: str, seats: int, workdir: Path) -> dict[str, Any]:
    """The `flitstack demo` flow on a small bundle; the scope estimate vs the sandbox's own count."""
    os.environ["FLITSTACK_DATA_DIR"] = str(workdir / "estimate-data")
    from flitstack_dagster.cli import main as cli_main
    from flitstack_dagster.mapping import store as mapping_store
    from flitstack_dagster.mapping.demo_approval import approve_for_demo
    from flitstack_dagster.mapping.scope import estimate_requests
    from flitstack_dagster.defs.instance import launch_migrate
    from flitstack_dagster.novo.runs import add_run
    from flitstack_dagster.core.settings import data_paths

    paths = data_paths().ensure()
    bundle = paths.exports / f"bench-{work_orders}"
    quiet = open(os.devnull, "w")
    old = sys.stdout
    sys.stdout = quiet
    try:
        if cli_main(["generate", "--work-orders", str(work_orders), "--seed", "7", "--mess", "0.02", "--out", str(bundle)]):
            raise RuntimeError("generating the bundle failed")
    finally:
        sys.stdout = old
    with duck.connect(paths.duckdb) as con:
        run_ = add_run(con, bundle, "full", paths.work)
    with SandboxProcess(plan, seats, LATENCY_MS) as sb:
        os.environ["PIPEDRIVE_BASE_URL"], os.environ["PIPEDRIVE_API_TOKEN"] = sb.base_url, sb.api_token
        os.environ["PIPEDRIVE_PLAN"], os.environ["PIPEDRIVE_SEATS"] = plan, str(seats)
        result = launch_migrate(paths, run_.run_key, run_.mode, str(bundle))
        before = sb.usage()
        approve_for_demo(paths)
        waive_sample(paths)  # benchmark 4 measures one full run; the sample gate is not what it tests
        result = launch_migrate(paths, run_.run_key, run_.mode, str(bundle))
        after = sb.usage()
    if not result.success:
        failed = [e.step_key for e in result.all_node_events if e.is_step_failure]
        raise RuntimeError(f"the migrate job did not succeed (failed steps: {failed})")
    profile = mapping_store.load_profile(paths, run_.run_key)
    audit = mapping_store.load_audit(paths, run_.run_key)
    est = estimate_requests(profile, mapping_store.require_approved(paths), audit, plan=plan, seats=seats)
    ops = {k: {"count": v["count"] - before["operations"].get(k, {}).get("count", 0),
               "tokens": v["tokens"] - before["operations"].get(k, {}).get("tokens", 0)}
           for k, v in after["operations"].items()}
    ops = {k: v for k, v in ops.items() if v["count"]}
    real_requests = sum(v["count"] for v in ops.values())
    real_tokens = sum(v["tokens"] for v in ops.values())
    load_seconds, load_steps = _load_seconds(paths, result)
    predicted_seconds = est.hours * 3600 if est.hours is not None else None
    return {
        "work_orders": work_orders, "plan": plan, "seats": seats, "latency_ms": LATENCY_MS,
        "predicted": {"requests": est.requests, "tokens": est.tokens, "seconds": round(predicted_seconds or 0, 1)},
        "real": {"requests": real_requests, "tokens": real_tokens, "load_seconds": round(load_seconds, 1)},
        "error": {"requests": round(est.requests / real_requests - 1, 4), "tokens": round(est.tokens / real_tokens - 1, 4),
                  "seconds": round((predicted_seconds or 0) / load_seconds - 1, 4) if load_seconds else None},
        "load_steps": load_steps, "by_entity_predicted": est.by_entity(), "operations_real": ops,
    }


def waive_sample(paths) -> None:
    from flitstack_dagster.mapping.approval import waive_sample_verification
    from flitstack_dagster.mapping.store import approved_path

    waive_sample_verification(approved_path(paths))


def _load_seconds(paths, result) -> tuple[float, list[str]]:
    """Wall time of the run's load steps (their step stats on the Dagster instance)."""
    from flitstack_dagster.defs.instance import get_instance

    stats = get_instance(paths).get_run_step_stats(result.run_id)
    steps = [s for s in stats if "load" in s.step_key and s.start_time and s.end_time]
    return sum(s.end_time - s.start_time for s in steps), sorted(s.step_key for s in steps)


# -- printing ------------------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    mem = 0
    try:
        mem = int(open("/proc/meminfo").read().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpus": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def print_rate(results: list[dict[str, Any]]) -> None:
    print("\n== 2. Loader at the rate limit (150 ms added latency per request)")
    head = f"{'plan':<9}{'burst':>6}{'conc':>6}{'records':>9}{'secs':>9}{'rec/s':>8}{'share':>8}{'steady':>8}" \
           f"{'peak2s':>7}{'429s':>6}{'tokens':>9}{'floor':>9}{'x floor':>8}{'seq rec/s':>10}{'speed-up':>9}"
    print(head)
    for r in results:
        f = r["full"]
        print(f"{r['plan']:<9}{r['burst_limit']:>6}{r['max_concurrency']:>6}{f['records']:>9}{f['seconds']:>9.1f}"
              f"{f['records_per_s']:>8.1f}{f['rate_share_whole']:>8.3f}{f['rate_share_steady']:>8.3f}"
              f"{f['peak_requests_in_2s']:>7}{f['answers_429']:>6}{f['tokens']:>9}{f['token_floor']:>9}"
              f"{f['tokens_vs_floor']:>8.3f}{r['sequential']['records_per_s']:>10.2f}{r['speedup']:>9.2f}")
    print("targets: share >= 0.95 (steady state), 429s = 0, tokens <= 1.02 x floor")
    for r in results:
        m = r["full"]["machine_load"]
        print(f"{r['plan']}: load average {m['load_avg_mean']:.1f} (max {m['load_avg_max']:.1f}) on "
              f"{os.cpu_count()} CPUs; CPU seconds: loader {m['loader_cpu_s']:.0f} "
              f"({m['loader_cpu_share']:.0%} of a core), sandbox {m['sandbox_cpu_s']:.0f}")


def print_delta(r: dict[str, Any], constant_s: float) -> None:
    d, f = r["delta"], r["full"]
    print(f"\n== 3. Delta proportionality ({r['plan']}, full load of {f['records']} records)")
    print(f"{'run':<7}{'records changed':>16}{'requests':>10}{'tokens':>9}{'seconds':>9}")
    print(f"{'full':<7}{f['records']:>16}{f['requests']:>10}{f['tokens']:>9}{f['seconds']:>9.1f}")
    print(f"{'delta':<7}{d['changed_records']:>16}{d['requests']:>10}{d['tokens']:>9}{d['seconds']:>9.1f}")
    print(f"delta/full: tokens {d['token_share']:.4f}, time {d['time_share']:.4f} "
          f"(target <= 0.015, time + {constant_s:.0f} s constant: "
          f"{d['seconds'] <= 0.015 * f['seconds'] + constant_s})")


def print_estimate(r: dict[str, Any]) -> None:
    p, real, err = r["predicted"], r["real"], r["error"]
    print(f"\n== 4. Estimate accuracy ({r['work_orders']} work orders, {r['plan']} x {r['seats']} seats, "
          f"{r['latency_ms']} ms latency)")
    print(f"{'':<10}{'predicted':>11}{'real':>11}{'error':>9}")
    print(f"{'requests':<10}{p['requests']:>11}{real['requests']:>11}{err['requests']:>+9.2%}")
    print(f"{'tokens':<10}{p['tokens']:>11}{real['tokens']:>11}{err['tokens']:>+9.2%}")
    print(f"{'seconds':<10}{p['seconds']:>11.1f}{real['load_seconds']:>11.1f}"
          f"{(err['seconds'] if err['seconds'] is not None else float('nan')):>+9.2%}")
    print("target: within 5%")


DELTA_CONSTANT_S = 2.0  # one burst window: a delta cannot be shorter than its first window of requests


def save(path: Path, out: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds): a smoke test")
    ap.add_argument("--records", type=int, default=20_000, help="records per rate-limit load (default 20000)")
    ap.add_argument("--sequential-records", type=int, default=1_000,
                    help="records for the sequential loader (default 1000; its rate is compared)")
    ap.add_argument("--plans", default="growth,ultimate")
    ap.add_argument("--estimate-work-orders", type=int, default=100)
    ap.add_argument("--skip", default="", help="comma list of benchmarks to skip: rate,delta,estimate")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "loader_results.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.records, args.sequential_records, args.estimate_work_orders = 200, 24, 8
    skip = set(filter(None, args.skip.split(",")))
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    out: dict[str, Any] = {"machine": machine(), "quick": args.quick, "latency_ms": LATENCY_MS}
    print(f"machine: {out['machine']}")
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as tmp:
        work = Path(tmp)
        if "rate" not in skip:
            out["rate_limit"] = []
            for plan in plans:
                seats = max(2, math.ceil((args.records + args.sequential_records) * 6 * 1.5 / 60_000))
                r = bench_rate_limit(plan, args.records, args.sequential_records, seats, work,
                                     delta=("delta" not in skip and plan == plans[-1]))
                out["rate_limit"].append(r)
                print(f"   {plan}: {r['full']['records']} records in {r['full']['seconds']:.1f} s", flush=True)
            print_rate(out["rate_limit"])
            last = out["rate_limit"][-1]
            if "delta" in last:
                out["delta"] = {"plan": last["plan"], "full": {k: last["full"][k] for k in ("records", "requests",
                                "tokens", "seconds")}, **last.pop("delta"), "constant_seconds": DELTA_CONSTANT_S}
                print_delta({"plan": last["plan"], "full": last["full"], "delta": out["delta"]}, DELTA_CONSTANT_S)
        save(args.json, out)  # benchmarks 2-3 are kept even if 4 fails
        if "estimate" not in skip:
            out["estimate"] = bench_estimate(args.estimate_work_orders, "growth", 5, work)
            print_estimate(out["estimate"])
    save(args.json, out)
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
