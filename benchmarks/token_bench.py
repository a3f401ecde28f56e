"""Tokens per work order under each record plan, measured from the client's own spend.

    .venv/bin/python benchmarks/token_bench.py [--quick] [--work-orders 300] [--plans complete,balanced,compact]
                                               [--json results.json]

One generated bundle (seed 7, 2% mess, like the demo) is migrated once per record plan, each into a
fresh in-process sandbox (`documented` signal mode: only the rate-limit signals Pipedrive documents)
and a fresh data folder, through the `migrate` job the way the demo runs it: the first pass stops at
the mapping approval, the mapping is approved with the record plan, the second pass provisions,
shapes, loads and verifies. Everything the client sends is counted — account audit, provisioning,
organizations, persons, relationships, deals, activities, notes, files, verification reads — from
each step client's usage table (its own per-operation count of requests and tokens), and checked
against the sandbox's count.

Then a 1% delta of the same bundle (the generator's delta mode, `--delta-share 0.01`: that share of
work orders changed or new, deletions alike) is migrated into the same sandbox a day after the full
load (on the sandbox's clock), as a `delta` run, and its spend is counted the same way.

Printed per plan: tokens and requests per work order, the scope document's estimate beside the
measured tokens (and its error), whether the read-back was clean, the days 100,000 work orders
need on Professional × 5 seats keeping a 20% reserve, at the measured tokens per work order, and
the delta's tokens as a share of the full load's (target: at most 1.5%).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from flitstack_dagster.core import duck  # noqa: E402
from flitstack_dagster.core.plans import find_plan  # noqa: E402
from flitstack_dagster.core.settings import Paths  # noqa: E402
from flitstack_dagster.defs.pipedrive_resource import PipedriveResource  # noqa: E402
from flitstack_dagster.mapping.calendar import days_exact, days_needed, usable_daily  # noqa: E402
from flitstack_dagster.mapping.model import RECORD_PLANS  # noqa: E402
from flitstack_dagster.sandbox.server import SandboxServer  # noqa: E402

CITY_WORK_ORDERS = 100_000
CITY_PLAN, CITY_SEATS, CITY_RESERVE = "professional", 5, 0.20
SANDBOX_PLAN, SANDBOX_SEATS = "ultimate", 5  # the fastest burst limit: tokens do not depend on it
TARGETS = {"compact": 18.0, "balanced": 40.0}
ESTIMATE_TOLERANCE = 0.02
DELTA_SHARE = 0.01  # of the work orders: changed or new
DELTA_TARGET = 0.015  # of the full load's tokens


class _Spend:
    """Every step client's usage, summed when the client closes (the client's own count)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: dict[str, dict[str, int]] = {}

    def add(self, usage: dict[str, dict[str, int]]) -> None:
        with self.lock:
            for op, u in usage.items():
                mine = self.ops.setdefault(op, {"requests": 0, "tokens": 0})
                mine["requests"] += u["requests"]
                mine["tokens"] += u["tokens"]

    def totals(self) -> tuple[int, int]:
        return (sum(u["requests"] for u in self.ops.values()), sum(u["tokens"] for u in self.ops.values()))


SPEND = _Spend()


class MeteredPipedrive(PipedriveResource):
    """The project's Pipedrive resource; each step client adds its usage to SPEND when it closes."""

    def client(self):
        c = super().client()
        close = c.close

        def close_and_count() -> None:
            SPEND.add(c.usage)
            close()

        c.close = close_and_count
        return c


def generate(bundle: Path, work_orders: int) -> None:
    from flitstack_dagster.cli import main as cli_main

    if (bundle / "manifest.json").exists():
        return
    quiet, old = open(os.devnull, "w"), sys.stdout
    sys.stdout = quiet
    try:
        if cli_main(["generate", "--work-orders", str(work_orders), "--seed", "7", "--mess", "0.02",
                     "--out", str(bundle), "--no-mess-log"]):
            raise RuntimeError("generating the bundle failed")
    finally:
        sys.stdout = old


def generate_delta(bundle: Path, delta: Path) -> None:
    from flitstack_dagster.cli import main as cli_main

    if (delta / "manifest.json").exists():
        return
    quiet, old = open(os.devnull, "w"), sys.stdout
    sys.stdout = quiet
    try:
        if cli_main(["generate", "--delta-from", str(bundle), "--delta-share", str(DELTA_SHARE), "--seed", "8",
                     "--out", str(delta), "--no-mess-log"]):
            raise RuntimeError("generating the delta bundle failed")
    finally:
        sys.stdout = old


def approve_with_plan(paths: Paths, record_plan: str) -> None:
    """The demo's approval, with the record plan chosen; the sample gate waived (one full run is measured)."""
    from flitstack_dagster.mapping.approval import APPROVED_WHAT, waive_sample_verification
    from flitstack_dagster.mapping.demo_approval import approve_for_demo
    from flitstack_dagster.mapping.store import approved_path
    from flitstack_dagster.mapping.yamlio import load_mapping, write_mapping

    approve_for_demo(paths)
    m = load_mapping(approved_path(paths))
    m.record_plan = record_plan
    write_mapping(approved_path(paths), m, APPROVED_WHAT)
    waive_sample_verification(approved_path(paths))


def load_delta(job, instance, paths: Paths, delta: Path, sandbox: SandboxServer) -> dict[str, Any]:
    """The delta bundle migrated as a `delta` run a day after the full load (on the sandbox's clock, as
    a delta export comes later): what it spent."""
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.novo.runs import add_run

    SPEND.ops.clear()
    sandbox.next_day()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, delta, "delta", paths.work).run_key
    instance.add_dynamic_partitions(migration_runs.name, [run_key])
    t0 = time.monotonic()
    result = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    requests, tokens = SPEND.totals()
    with duck.connect(paths.duckdb, read_only=True) as con:
        work_orders = con.execute("SELECT count(*) FROM staging.stg_work_orders WHERE _run_key = ?",
                                  [run_key]).fetchone()[0]
    return {"run_key": run_key, "success": result.success, "seconds": round(time.monotonic() - t0, 1),
            "work_orders": work_orders, "requests": requests, "tokens": tokens,
            "clean": bool(checks.get("no_unexplained_mismatches")) and bool(checks.get("every_record_once")),
            "checks": checks, "operations": dict(sorted(SPEND.ops.items()))}


def migrate_under(record_plan: str, bundle: Path, data: Path, delta: Path | None = None) -> dict[str, Any]:
    """One full migration of `bundle` under `record_plan` into a fresh sandbox, then (`delta`) the delta
    bundle into the same account: what each spent."""
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.mapping import store as mapping_store
    from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS
    from flitstack_dagster.novo.runs import add_run

    SPEND.ops.clear()
    paths = Paths(data).ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
    t0 = time.monotonic()
    with SandboxServer(state_path=None, plan=SANDBOX_PLAN, seats=SANDBOX_SEATS, port=0, signals="documented") as sb:
        resource = MeteredPipedrive(base_url=sb.base_url, api_token=sb.api_token, plan=SANDBOX_PLAN,
                                    seats=SANDBOX_SEATS)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(migration_runs.name, [run_key])
        job = build_definitions(paths.root, pipedrive=resource).resolve_job_def("migrate")
        first = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False)
        approve_with_plan(paths, record_plan)
        done = {e.asset_key for e in first.get_asset_materialization_events()}
        rest = [k for k in job.asset_layer.selected_asset_keys if k not in done]
        second = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                        asset_selection=rest)
        server = sb.usage()
        seconds = time.monotonic() - t0
        checks = {c.check_name: c.passed for c in second.get_asset_check_evaluations()}
        requests, tokens = SPEND.totals()
        operations = dict(sorted(SPEND.ops.items()))
        delta_run = load_delta(job, instance, paths, delta, sb) if delta is not None and second.success else None
    profile = mapping_store.load_profile(paths, run_key)
    audit = mapping_store.load_audit(paths, run_key)
    mapping = mapping_store.require_approved(paths)
    cost = next(c for c in RECORD_PLAN_COSTS if c.name == record_plan)
    est = cost.estimate(profile, mapping, audit, reserve=CITY_RESERVE)
    server_tokens = sum(o["tokens"] for o in server["operations"].values())
    with duck.connect(paths.duckdb, read_only=True) as con:
        work_orders = con.execute("SELECT count(*) FROM staging.stg_work_orders WHERE _run_key = ?",
                                  [run_key]).fetchone()[0]
        deals = con.execute("SELECT count(*) FROM meta.id_map WHERE entity = 'deal'").fetchone()[0]
    return {
        "record_plan": record_plan, "run_key": run_key, "success": second.success, "seconds": round(seconds, 1),
        "work_orders": work_orders, "deals_loaded": deals, "requests": requests, "tokens": tokens,
        "server_tokens": server_tokens, "estimate_tokens": est.tokens, "estimate_requests": est.requests,
        "estimate_rows": [r.model_dump() for r in est.rows],
        "clean": bool(checks.get("no_unexplained_mismatches")) and bool(checks.get("every_record_once")),
        "checks": checks, "operations": operations, "delta": delta_run,
    }


def city_days(tokens_per_wo: float) -> dict[str, Any]:
    plan = find_plan(CITY_PLAN)
    assert plan is not None
    tokens = round(tokens_per_wo * CITY_WORK_ORDERS)
    return {"plan": plan.label, "multiplier": plan.multiplier, "seats": CITY_SEATS, "reserve": CITY_RESERVE,
            "daily_budget": plan.daily_budget(CITY_SEATS), "usable_daily": usable_daily(plan, CITY_SEATS, CITY_RESERVE),
            "tokens": tokens, "days": days_needed(tokens, plan, CITY_SEATS, CITY_RESERVE),
            "days_exact": round(days_exact(tokens, plan, CITY_SEATS, CITY_RESERVE), 2)}


def _reads_settings(operation: str) -> bool:
    """A read of the account's settings, not of its records (`GET /api/v2/dealFields`, `GET /v1/users/me`)."""
    method, _, path = operation.partition(" ")
    last = path.rstrip("/").split("/")[-1]
    return method == "GET" and (last.endswith("Fields") or last in ("users", "me", "pipelines", "stages", "activityTypes"))


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    n = max(1, r["work_orders"])
    r["tokens_per_wo"] = round(r["tokens"] / n, 2)
    r["requests_per_wo"] = round(r["requests"] / n, 2)
    r["estimate_per_wo"] = round(r["estimate_tokens"] / n, 2)
    r["estimate_error"] = round((r["estimate_tokens"] - r["tokens"]) / r["tokens"], 4) if r["tokens"] else None
    r["city"] = city_days(r["tokens"] / n)
    target = TARGETS.get(r["record_plan"])
    r["target_per_wo"] = target
    r["meets_target"] = None if target is None else r["tokens_per_wo"] <= target
    r["estimate_within_2pct"] = r["estimate_error"] is not None and abs(r["estimate_error"]) <= ESTIMATE_TOLERANCE
    if r.get("delta"):
        d = r["delta"]
        d["share_of_full"] = round(d["tokens"] / r["tokens"], 4) if r["tokens"] else None
        d["meets_target"] = d["share_of_full"] is not None and d["share_of_full"] <= DELTA_TARGET
        # the account's settings (fields, users, pipelines, stages, types) are read once a run whatever its
        # size; everything else a delta spends grows with it: the city's share keeps the first as measured
        # and scales the rest (the read-back's one page per entity included, which overstates it)
        d["read_tokens"] = sum(u["tokens"] for op, u in d["operations"].items() if op.startswith("GET "))
        d["settings_tokens"] = sum(u["tokens"] for op, u in d["operations"].items() if _reads_settings(op))
        scale = CITY_WORK_ORDERS / n
        d["city_share"] = round((d["settings_tokens"] + (d["tokens"] - d["settings_tokens"]) * scale)
                                / (r["tokens"] * scale), 4) if r["tokens"] else None
    return r


def _delta_cells(r: dict[str, Any]) -> str:
    d = r.get("delta")
    if not d:
        return f"{'-':>9} {'-':>7} {'-':>9} {'-':>9}"
    mark = "" if d["success"] and d["clean"] else " NOT CLEAN"
    return f"{d['tokens']:>9,} {d['share_of_full']:>7.2%} {d['read_tokens']:>9,} {d['city_share']:>9.2%}{mark}"


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'plan':<10} {'WOs':>5} {'tokens':>8} {'tok/WO':>7} {'req/WO':>7} {'estimate':>9} {'est/WO':>7} "
          f"{'error':>7} {'clean':>5} {'target':>7} {'days 100k':>10} {'delta tok':>9} {'delta %':>7} {'of: reads':>9} {'city %':>9}")
    for r in results:
        target = "-" if r["target_per_wo"] is None else f"≤{r['target_per_wo']:g}"
        print(f"{r['record_plan']:<10} {r['work_orders']:>5} {r['tokens']:>8,} {r['tokens_per_wo']:>7.2f} "
              f"{r['requests_per_wo']:>7.2f} {r['estimate_tokens']:>9,} {r['estimate_per_wo']:>7.2f} "
              f"{r['estimate_error']:>+7.2%} {'yes' if r['clean'] else 'NO':>5} {target:>7} "
              f"{r['city']['days']:>4} ({r['city']['days_exact']:.2f}) {_delta_cells(r)}")
    c = results[0]["city"] if results else None
    if c:
        print(f"days for {CITY_WORK_ORDERS:,} work orders on {c['plan']} × {c['seats']} seats "
              f"(multiplier {c['multiplier']}: {c['daily_budget']:,} tokens a day, {c['usable_daily']:,} usable with "
              f"a {c['reserve']:.0%} reserve), at the measured tokens per work order")
    d = next((r["delta"] for r in results if r.get("delta")), None)
    if d:
        print(f"delta: a {DELTA_SHARE:.0%} delta ({d['work_orders']:,} work orders) loaded after the full load; "
              f"delta % = its tokens / the full load's (target ≤ {DELTA_TARGET:.1%}); city % = the same at "
              f"{CITY_WORK_ORDERS:,} work orders, the reads of the account's settings as measured and everything "
              "else scaled with the delta (an upper bound: a bigger delta fills its read pages)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-orders", type=int, default=300)
    ap.add_argument("--quick", action="store_true",
                    help="a 20-work-order bundle, its delta under compact only (the smoke test)")
    ap.add_argument("--plans", default=",".join(RECORD_PLANS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="a folder to keep the bundle and data folders in")
    ap.add_argument("--no-delta", action="store_true", help="measure the full load only")
    args = ap.parse_args(argv)
    n = 20 if args.quick else args.work_orders
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    unknown = [p for p in plans if p not in RECORD_PLANS]
    if unknown:
        print(f"error: unknown record plan(s) {', '.join(unknown)}: choose from {', '.join(RECORD_PLANS)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="token-bench-") as tmp:
        work = args.keep or Path(tmp)
        bundle = work / f"bundle-{n}"
        generate(bundle, n)
        delta = None if args.no_delta else work / f"delta-{n}"
        if delta is not None:
            generate_delta(bundle, delta)
        results = []
        for plan in plans:
            # the smoke test loads the delta under the plan with the most delta logic only: minutes of CI
            with_delta = delta if not args.quick or plan == "compact" else None
            r = summarise(migrate_under(plan, bundle, work / f"data-{plan}", with_delta))
            if not r["success"]:
                print(f"error: the migrate job did not succeed under {plan}: {r['checks']}")
                return 1
            if r["delta"] is not None and not r["delta"]["success"]:
                print(f"error: the delta's migrate job did not succeed under {plan}: {r['delta']['checks']}")
                return 1
            results.append(r)
            if args.json:  # after each plan, so a long run keeps what it measured
                args.json.write_text(json.dumps({"work_orders": n, "results": results}, indent=2, default=str))
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
