"""A city's migration rehearsed: the product's `migrate` path under a record plan against the sandbox on a
simulated clock, held to the plan's daily budget and reserve.

    .venv/bin/python benchmarks/rehearsal_bench.py                  # 100,000 work orders, compact, Premium × 5, 20% reserve
    .venv/bin/python benchmarks/rehearsal_bench.py --quick          # 20 work orders in 2 simulated days (CI smoke test)
    .venv/bin/python benchmarks/rehearsal_bench.py --work-orders 5000 --plan premium --seats 5 --reserve 0.2

1. generate the bundle (`flitstack generate`, seed 7, 2% mess, the demo's settings; cached in the workdir);
2. serve a fresh sandbox in a process of its own (`documented` signals, the chosen Pipedrive plan and seats);
3. run the `migrate` job the demo's way: the first pass stops at the mapping approval, the mapping is
   approved with the record plan (sample gate waived), the next pass provisions, shapes, loads and
   verifies. Every client of the run takes its time from the sandbox's simulated clock
   (sandbox/rehearsal.py) and shares one rate limiter, so burst waits cost no real time; when the
   daily budget (less the reserve) stops a step, the clock moves to the budget's reset and the steps
   not done yet run again, as budget_reset_sensor re-launches them;
4. report: records the sandbox holds, wall time, the sandbox's RSS, p50/p99 of the client's requests,
   simulated days, tokens per simulated day against the usable budget (the reserve untouched when no
   day went over it), and whether the read-back was clean.

Writes the figures as JSON to benchmarks/results/rehearsal_bench-<work orders>.json (or --json FILE);
exit code 1 when the rehearsal took more days than --max-days, touched the reserve or read back unclean.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import dagster as dg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from flitstack_dagster.core import duck  # noqa: E402
from flitstack_dagster.core.settings import Paths, data_paths  # noqa: E402
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource, StepClient  # noqa: E402
from flitstack_dagster.pipedrive.ratelimit import RateLimiter  # noqa: E402
from flitstack_dagster.sandbox.rehearsal import SimulatedTime, check_day_plan  # noqa: E402
from sandbox_bench import SandboxProcess  # noqa: E402
from token_bench import approve_with_plan, generate  # noqa: E402

VERIFY_ASSETS = ("verified_records", "field_diff_report")
MAX_PASSES = 30  # budget stops a rehearsal may take before it counts as stuck
CLOCK_MOVE_SECONDS = 0.2  # each clock move covers the paced waits of ~10 requests (Premium paces 20 ms apart)


class Rehearsal:
    """What every client of the rehearsal shares: the simulated time, one rate limiter, the latencies."""

    def __init__(self, sim: SimulatedTime, plan: str, seats: int, reserve: float) -> None:
        self.sim = sim
        self.limiter = RateLimiter(plan, seats, daily_reserve_fraction=reserve, pace=True, **sim.client_kwargs())
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.ops: dict[str, dict[str, int]] = {}

    def count(self, usage: dict[str, dict[str, int]]) -> None:
        with self.lock:
            for op, u in usage.items():
                mine = self.ops.setdefault(op, {"requests": 0, "tokens": 0})
                mine["requests"] += u["requests"]
                mine["tokens"] += u["tokens"]


REHEARSAL: Rehearsal | None = None


class TimedTransport(httpx.HTTPTransport):
    """Times each request to its response (the latency the client sees)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return super().handle_request(request)
        finally:
            REHEARSAL.latencies.append(time.perf_counter() - started)


class RehearsedPipedrive(PipedriveResource):
    """The project's Pipedrive resource on the rehearsal's clock and limiter (one for every run, as one
    account's budget is one whatever the runs)."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._limiter = REHEARSAL.limiter

    def client(self):
        s = self.settings()
        transport = TimedTransport(limits=httpx.Limits(max_connections=128, max_keepalive_connections=128))
        c = StepClient(s.base_url, s.api_token, plan=s.plan, seats=s.seats, daily_reserve_fraction=s.daily_reserve,
                       limiter=self._limiter, transport=transport, **REHEARSAL.sim.client_kwargs())
        close = c.close

        def close_and_count() -> None:
            REHEARSAL.count(c.usage)
            close()

        c.close = close_and_count
        return c


def _verification_stopped(result: dg.ExecuteInProcessResult) -> bool:
    for m in result.get_asset_materialization_events():
        if m.asset_key == dg.AssetKey("verified_records"):
            return "stopped" in (m.materialization.metadata or {})
    return False


def migrate_rehearsed(bundle: Path, data: Path, sb: SandboxProcess, record_plan: str, plan: str, seats: int,
                      reserve: float, log) -> dict[str, Any]:
    """The migrate job over `bundle` into the sandbox, re-run after each budget stop on the next simulated day."""
    global REHEARSAL
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.novo.runs import add_run

    paths = Paths(data).ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
    sim = SimulatedTime(sb.base_url, {"x-api-token": sb.api_token}, min_advance=CLOCK_MOVE_SECONDS)
    REHEARSAL = Rehearsal(sim, plan, seats, reserve)
    # the shared limiter keeps `reserve`; the settings take at most 0.9, which a small bundle's rehearsal
    # exceeds to cross a day with few tokens
    resource = RehearsedPipedrive(base_url=sb.base_url, api_token=sb.api_token, plan=plan, seats=seats,
                                  daily_reserve_fraction=min(reserve, 0.9))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(migration_runs.name, [run_key])
    job = build_definitions(paths.root, pipedrive=resource).resolve_job_def("migrate")
    first = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False)
    approve_with_plan(paths, record_plan)
    done = {e.asset_key for e in first.get_asset_materialization_events()}
    log(f"first pass (to the approval) done; {record_plan} approved")
    checks: dict[str, bool] = {}
    stops = passes = 0
    while True:
        passes += 1
        rest = [k for k in job.asset_layer.selected_asset_keys if k not in done]
        result = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                        asset_selection=rest)
        done |= {e.asset_key for e in result.get_asset_materialization_events()}
        checks.update({c.check_name: c.passed for c in result.get_asset_check_evaluations()})
        if _verification_stopped(result):
            done -= {dg.AssetKey(a) for a in VERIFY_ASSETS}
        left = REHEARSAL.limiter.remaining_today()
        finished = all(k in done for k in job.asset_layer.selected_asset_keys)
        log(f"pass {passes}: {'finished' if finished else 'stopped'}; {left:,} tokens usable left today "
            f"(simulated {sim.jumped / 3600:.1f} h skipped)")
        if finished:
            break
        if left > 100 or passes >= MAX_PASSES:  # not the budget: a real failure
            failed = [e.step_key for e in result.get_step_failure_events()]
            raise RuntimeError(f"the migrate job failed in {failed} with {left} tokens left today")
        stops += 1
        sim.sleep_until(REHEARSAL.limiter.resets_at())
    with duck.connect(paths.duckdb, read_only=True) as con:
        work_orders = con.execute("SELECT count(*) FROM staging.stg_work_orders WHERE _run_key = ?",
                                  [run_key]).fetchone()[0]
        loaded = dict(con.execute("SELECT entity, count(*) FROM meta.id_map GROUP BY 1 ORDER BY 1").fetchall())
    sim.close()
    return {"run_key": run_key, "passes": passes, "budget_stops": stops, "checks": checks,
            "clean": bool(checks.get("no_unexplained_mismatches")) and bool(checks.get("every_record_once")),
            "work_orders": work_orders, "records_loaded": loaded, "simulated_hours_skipped": round(sim.jumped / 3600, 1),
            "clock_moves": sim.moves}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


class Partial:
    """Every minute, the figures so far to `<results>.partial.json`: a rehearsal stopped before its end
    (the machine's time ran out) still says how far it got and at what rate."""

    def __init__(self, out: Path, sb: SandboxProcess, data: Path, started: float, every: float = 60.0) -> None:
        self.out, self.sb, self.data, self.started, self.every = out, sb, data, started, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Partial":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.out.write_text(json.dumps(self.figures(), indent=2, default=str) + "\n", encoding="utf-8")
            except Exception as e:  # noqa: BLE001 - a missed snapshot must not stop the rehearsal
                print(f"partial figures not written: {e}", flush=True)

    def figures(self) -> dict[str, Any]:
        from flitstack_dagster.loading.ledger import Ledger

        lat = [x * 1000 for x in list(REHEARSAL.latencies)] if REHEARSAL else []
        usage = self.sb.http.get("/_sandbox/usage").json()["data"]
        rss, peak = self.sb.rss_mb()
        ledger = Ledger.in_folder(self.data)
        steps = _progress_rows(ledger.path)
        return {"wall_seconds": round(time.perf_counter() - self.started, 1), "requests": len(lat),
                "latency_ms": {"p50": round(statistics.median(lat), 2) if lat else None,
                               "p99": round(percentile(lat, 0.99), 2)},
                "tokens_by_day": usage["tokens_by_day"], "sandbox_rss_mb": round(rss), "sandbox_peak_rss_mb": round(peak),
                "sandbox_cpu_seconds": round(self.sb.cpu_seconds(), 1), "steps": steps,
                "load_average": [round(x, 1) for x in psutil.getloadavg()],
                "simulated_hours_skipped": round(REHEARSAL.sim.jumped / 3600, 2) if REHEARSAL else 0}


def _progress_rows(path: Path) -> list[dict[str, Any]]:
    import sqlite3
    from contextlib import closing

    if not path.exists():
        return []
    with closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            rows = db.execute("SELECT step, done, total, tokens, seconds FROM progress ORDER BY updated_at").fetchall()
        except sqlite3.OperationalError:
            return []
    return [{"step": s, "done": d, "total": t, "tokens": k, "seconds": round(sec, 1)} for s, d, t, k, sec in rows]


def run(work_orders: int, record_plan: str, plan: str, seats: int, reserve: float, max_days: int,
        workdir: Path, log, partial: Path | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    bundle = workdir / f"bundle-{work_orders}"
    generate(bundle, work_orders)
    generated = time.perf_counter() - started
    log(f"bundle of {work_orders:,} work orders ready ({generated:.0f} s)")
    data = workdir / f"data-{record_plan}-{int(time.time())}"
    state = data / "sandbox.sqlite"
    data.mkdir(parents=True)
    sb = SandboxProcess(state, plan=plan, seats=seats)
    try:
        if partial is None:
            migrated = migrate_rehearsed(bundle, data, sb, record_plan, plan, seats, reserve, log)
        else:
            with Partial(partial, sb, data, started):
                migrated = migrate_rehearsed(bundle, data, sb, record_plan, plan, seats, reserve, log)
        usage = sb.http.get("/_sandbox/usage").json()["data"]
        rss, peak = sb.rss_mb()
        cpu = sb.cpu_seconds()
    finally:
        sb.close()
    by_day = usage["tokens_by_day"]
    check = check_day_plan(by_day, plan, seats, reserve)
    tokens = sum(by_day.values())
    lat = [x * 1000 for x in REHEARSAL.latencies]
    return {
        "work_orders": migrated["work_orders"], "record_plan": record_plan, "plan": plan, "seats": seats,
        "reserve": reserve, "records_loaded": migrated["records_loaded"],
        "records_in_sandbox": sum(migrated["records_loaded"].values()),
        "requests": len(lat), "tokens": tokens,
        "client_tokens": sum(u["tokens"] for u in REHEARSAL.ops.values()),
        "tokens_per_wo": round(tokens / max(1, migrated["work_orders"]), 2),
        "tokens_by_day": by_day, "usable_daily": check.usable_daily, "daily_budget": usage["daily_budget"],
        "simulated_days": check.days, "calendar_days": check.days_planned, "max_days": max_days,
        "days_over_usable": check.over, "reserve_untouched": not check.over, "budget_stops": migrated["budget_stops"],
        "passes": migrated["passes"], "simulated_hours_skipped": migrated["simulated_hours_skipped"],
        "clock_moves": migrated["clock_moves"],
        "read_back_clean": migrated["clean"], "checks": migrated["checks"],
        "latency_ms": {"p50": round(statistics.median(lat), 2) if lat else None, "p99": round(percentile(lat, 0.99), 2),
                       "max": round(max(lat), 2) if lat else None},
        "sandbox_rss_mb": round(rss), "sandbox_peak_rss_mb": round(peak), "sandbox_cpu_seconds": round(cpu, 1),
        "db_mb": round(sum(p.stat().st_size for p in data.glob("sandbox.sqlite*")) / 2**20),
        "generate_seconds": round(generated, 1), "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average": [round(x, 1) for x in psutil.getloadavg()], "cpus": psutil.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-orders", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true",
                    help="20 work orders on growth × 1 seat keeping 97%%: a budget stop and a second day in a minute")
    ap.add_argument("--record-plan", default="compact")
    ap.add_argument("--plan", default="premium")
    ap.add_argument("--seats", type=int, default=5)
    ap.add_argument("--reserve", type=float, default=0.2)
    ap.add_argument("--max-days", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="where the bundle and data go (default <data folder>/bench/rehearsal)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    n = 20 if args.quick else args.work_orders
    if args.quick:  # 1,800 usable tokens a day: the small bundle's ~2,600 tokens cross one budget stop
        args.plan, args.seats, args.reserve = "growth", 1, 0.97
    t0 = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f} s, load {psutil.getloadavg()[0]:.1f}] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        workdir = args.workdir or (Path(tmp) if args.quick else data_paths().root / "bench" / "rehearsal")
        workdir.mkdir(parents=True, exist_ok=True)
        out = args.json or ROOT / "benchmarks" / "results" / f"rehearsal_bench-{n}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        r = run(n, args.record_plan, args.plan, args.seats, args.reserve, args.max_days, workdir, log,
                partial=out.with_suffix(".partial.json"))
    r["within_max_days"] = r["simulated_days"] <= args.max_days
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2, default=str) + "\n", encoding="utf-8")
    out.with_suffix(".partial.json").unlink(missing_ok=True)  # the whole figures supersede it
    print(f"{r['work_orders']:,} work orders under {r['record_plan']} on {r['plan']} × {r['seats']} seats "
          f"({r['usable_daily']:,} usable tokens a day, {r['reserve']:.0%} reserve): {r['tokens']:,} tokens "
          f"({r['tokens_per_wo']} a work order), {r['requests']:,} requests")
    print(f"simulated days {r['simulated_days']} (calendar {r['calendar_days']}, at most {args.max_days}); "
          f"tokens by day {r['tokens_by_day']}; reserve {'untouched' if r['reserve_untouched'] else 'TOUCHED'}; "
          f"read-back {'clean' if r['read_back_clean'] else 'NOT clean'}")
    print(f"records in the sandbox {r['records_in_sandbox']:,}; sandbox RSS {r['sandbox_rss_mb']} MB "
          f"(peak {r['sandbox_peak_rss_mb']} MB); request p50 {r['latency_ms']['p50']} ms, p99 {r['latency_ms']['p99']} ms; "
          f"wall {r['wall_seconds']} s; load average {r['load_average']} on {r['cpus']} CPUs")
    print(f"results: {out}")
    return 0 if r["within_max_days"] and r["reserve_untouched"] and r["read_back_clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
