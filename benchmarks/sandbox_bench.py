"""The sandbox at city scale: request latency and memory with a million records, and a rehearsal on a
simulated clock.

    .venv/bin/python benchmarks/sandbox_bench.py                      # 1,000,000 records (a 100,000-work-order city)
    .venv/bin/python benchmarks/sandbox_bench.py --quick              # 20,000 records, seconds (CI smoke test)
    .venv/bin/python benchmarks/sandbox_bench.py --records 200000
    .venv/bin/python benchmarks/sandbox_bench.py --reuse              # measure again on the last filled state

1. fill: the records go in through the sandbox's own routes (its router and store in this process, no
   HTTP: the bulk would otherwise take hours at the plan's burst limit), in the shape of a 100,000-work-
   order city per million records: organizations 5%, persons 15%, deals (work orders, with a source-id
   custom field) 20%, activities 30%, notes 30%;
2. serve: the filled state is served by `SandboxServer` in its own process, as `flitstack sandbox` does;
3. measure over HTTP, one request at a time, the routes the loader and the read-back use: creates
   (deals, notes, activities), gets by id, a list page at a random cursor, lists by link (a deal's
   activities and notes), a read-back by 100 ids, the loader's exact field search, the entity searches
   (deals, persons, organizations, itemSearch) and a field search inside a value; p50 / p99 per
   route, and the sandbox process's RSS (now and peak);
4. rehearse: the product's client loads deals into a fresh sandbox on plan lite (1 seat) on a
   simulated clock (sandbox/rehearsal.py): simulated days, tokens per day against the calendar, wall
   time.

The burst window is never waited out in real time: between measured requests the benchmark moves the
sandbox clock forward through its admin channel (not measured). Writes the figures as JSON to
benchmarks/results/sandbox_bench-<records>.json (or --json FILE); exit code 1 when the rehearsal broke
its day plan. The latencies depend on what else runs on the machine: the sandbox's CPU time per request
and the load average are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flitstack_dagster.core.settings import data_paths  # noqa: E402
from flitstack_dagster.pipedrive.client import PipedriveClient  # noqa: E402
from flitstack_dagster.sandbox.clock import Clock  # noqa: E402
from flitstack_dagster.sandbox.rehearsal import SimulatedTime, check_day_plan, rehearse  # noqa: E402
from flitstack_dagster.sandbox.routing import Ctx, encode_cursor  # noqa: E402
from flitstack_dagster.sandbox.server import SandboxServer  # noqa: E402

MIX = (("organizations", 0.05), ("persons", 0.15), ("deals", 0.20), ("activities", 0.30), ("notes", 0.30))
COMMIT_EVERY = 5_000
P99_TARGET_MS = 50
PLAN, SEATS = "ultimate", 1000  # the measuring account: a budget no benchmark reaches
GENERAL_PER_WINDOW, SEARCH_PER_WINDOW = 100, 9  # requests between two clock moves (limits 120 / 10)

_CHILD = """
import json, sys
from flitstack_dagster.sandbox.server import SandboxServer
with SandboxServer(state_path=sys.argv[1], plan=sys.argv[2], seats=int(sys.argv[3]), signals=sys.argv[4]) as sb:
    print(json.dumps({"base_url": sb.base_url, "token": sb.api_token}), flush=True)
    sys.stdin.read()  # until the benchmark closes the pipe
"""


# -- fill -----------------------------------------------------------------------------------------------
class Filler:
    """Runs the sandbox's own route handlers in this process, committing every few thousand records."""

    def __init__(self, state: Path) -> None:
        self.server = SandboxServer(state_path=state, plan=PLAN, seats=SEATS)
        self.app = self.server.sandbox
        self.store = self.server.store
        self.pending = 0

    def call(self, method: str, path: str, body: Any) -> dict:
        handler, params, _ = self.app.router.match(method, path)
        reply = handler(Ctx(method=method, path=path, params=params, query={}, body=body, now=time.time()))
        if reply.status != 200:
            raise RuntimeError(f"{method} {path}: {reply.status} {reply.body}")
        self.pending += 1
        if self.pending >= COMMIT_EVERY:
            self.store.commit()
            self.pending = 0
        return reply.body["data"]

    def close(self) -> None:
        self.store.commit()
        self.store.close()


def fill(state: Path, records: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    counts = {kind: max(1, int(records * share)) for kind, share in MIX}
    f = Filler(state)
    started = time.perf_counter()
    key = f.call("POST", "/api/v2/dealFields", {"field_name": "Source id", "field_type": "varchar"})["field_code"]
    ids: dict[str, list[int]] = {k: [] for k in counts}
    with f.store.lock:
        for i in range(counts["organizations"]):
            ids["organizations"].append(f.call("POST", "/api/v2/organizations", {"name": f"Facility {i}"})["id"])
        for i in range(counts["persons"]):
            org = rng.choice(ids["organizations"])
            ids["persons"].append(f.call("POST", "/api/v2/persons", {"name": f"Tech {i}", "org_id": org})["id"])
        for i in range(counts["deals"]):
            body = {"title": f"WO-{i:07d}", "org_id": rng.choice(ids["organizations"]),
                    "person_id": rng.choice(ids["persons"]), "custom_fields": {key: f"wo-{i}"}}
            ids["deals"].append(f.call("POST", "/api/v2/deals", body)["id"])
        for i in range(counts["activities"]):
            body = {"subject": f"Visit {i}", "deal_id": rng.choice(ids["deals"]), "due_date": "2026-03-01"}
            ids["activities"].append(f.call("POST", "/api/v2/activities", body)["id"])
        for i in range(counts["notes"]):
            body = {"content": f"Labor and parts for visit {i}", "deal_id": rng.choice(ids["deals"])}
            ids["notes"].append(f.call("POST", "/v1/notes", body)["id"])
    f.close()
    return {"seconds": round(time.perf_counter() - started, 1), "records": sum(counts.values()), "counts": counts,
            "field_key": key, "ids": ids, "filler_max_rss_mb": round(_self_max_rss_mb())}


def filled_before(state: Path) -> dict[str, Any]:
    """What `fill` reports, read back from a state it filled before (--reuse)."""
    with closing(sqlite3.connect(state)) as db:
        ids: dict[str, list[int]] = {kind: [] for kind, _ in MIX}
        for kind, rid in db.execute("SELECT kind, id FROM records ORDER BY kind, id"):
            if kind in ids:
                ids[kind].append(rid)
        fields = json.loads(db.execute("SELECT body FROM docs WHERE name = 'fields'").fetchone()[0])
    key = next(f["field_code"] for f in fields["deal"] if f["field_name"] == "Source id")
    counts = {kind: len(v) for kind, v in ids.items()}
    return {"seconds": None, "records": sum(counts.values()), "counts": counts, "field_key": key, "ids": ids,
            "filler_max_rss_mb": None}


def _self_max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- serve and measure ------------------------------------------------------------------------------------
class SandboxProcess:
    """`SandboxServer` on `state` in a process of its own, as `flitstack sandbox` runs it."""

    def __init__(self, state: Path, plan: str = PLAN, seats: int = SEATS, signals: str = "documented") -> None:
        started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(state), plan, str(seats), signals],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        self.start_seconds = time.perf_counter() - started
        info = json.loads(line)
        self.base_url, self.api_token = info["base_url"], info["token"]
        self.http = httpx.Client(base_url=info["base_url"], headers={"x-api-token": info["token"]}, timeout=60)
        self.ps = psutil.Process(self.proc.pid)
        self.sent = {"general": 0, "search": 0}

    def request(self, method: str, path: str, search: bool = False, **kw: Any) -> tuple[float, httpx.Response]:
        self._room(search)
        t = time.perf_counter()
        r = self.http.request(method, path, **kw)
        took = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return took, r

    def _room(self, search: bool) -> None:
        """Move the sandbox clock past the burst window before it fills (not measured)."""
        self.sent["general"] += 1
        self.sent["search"] += search
        if self.sent["general"] >= GENERAL_PER_WINDOW or self.sent["search"] >= SEARCH_PER_WINDOW:
            self.http.post("/_sandbox/clock", json={"advance": 2.5}).raise_for_status()
            self.sent = {"general": 0, "search": 0}

    def cpu_seconds(self) -> float:
        """CPU time the sandbox process used so far (its own work, whatever else runs on the machine);
        it includes the clock moves between windows, about one request in a hundred."""
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss_mb(self) -> tuple[float, float]:
        """(now, peak) resident memory of the sandbox process, MB."""
        peak = 0.0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
        return self.ps.memory_info().rss / 2**20, peak

    def close(self) -> None:
        self.http.close()
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _routes(filled: dict[str, Any], rng: random.Random) -> dict[str, Callable[[], tuple[str, str, dict, bool]]]:
    ids, key = filled["ids"], filled["field_key"]
    deal = lambda: rng.choice(ids["deals"])  # noqa: E731
    return {
        "POST /api/v2/deals": lambda: ("POST", "/api/v2/deals", {"json": {
            "title": "WO-new", "org_id": rng.choice(ids["organizations"]), "person_id": rng.choice(ids["persons"]),
            "custom_fields": {key: f"wo-new-{rng.random()}"}}}, False),
        "POST /v1/notes": lambda: ("POST", "/v1/notes", {"json": {"content": "new note", "deal_id": deal()}}, False),
        "POST /api/v2/activities": lambda: ("POST", "/api/v2/activities", {"json": {
            "subject": "new visit", "deal_id": deal(), "due_date": "2026-04-01"}}, False),
        "GET /api/v2/deals/{id}": lambda: ("GET", f"/api/v2/deals/{deal()}", {}, False),
        "GET /v1/notes/{id}": lambda: ("GET", f"/v1/notes/{rng.choice(ids['notes'])}", {}, False),
        "GET /api/v2/deals (page of 500 at a cursor)": lambda: ("GET", "/api/v2/deals", {"params": {
            "limit": 500, "cursor": encode_cursor((deal(),))}}, False),
        "GET /api/v2/activities?deal_id": lambda: ("GET", "/api/v2/activities", {"params": {"deal_id": deal()}},
                                                   False),
        "GET /v1/notes?deal_id": lambda: ("GET", "/v1/notes", {"params": {"deal_id": deal()}}, False),
        "GET /api/v2/deals?ids (100)": lambda: ("GET", "/api/v2/deals", {"params": {
            "ids": ",".join(map(str, rng.sample(ids["deals"], 100)))}}, False),
        "GET /api/v2/itemSearch/field (exact)": lambda: ("GET", "/api/v2/itemSearch/field", {"params": {
            "term": f"wo-{rng.randrange(len(ids['deals']))}", "entity_type": "deal", "field": key,
            "match": "exact"}}, True),
        # the entity searches (partial, any case: the trigram index) and a field search inside a value
        "GET /api/v2/deals/search": lambda: ("GET", "/api/v2/deals/search", {"params": {
            "term": f"wo-{rng.randrange(len(ids['deals'])):07d}"}}, True),
        "GET /api/v2/persons/search": lambda: ("GET", "/api/v2/persons/search", {"params": {
            "term": f"tech {rng.randrange(len(ids['persons']))}", "limit": 100}}, True),
        "GET /api/v2/organizations/search": lambda: ("GET", "/api/v2/organizations/search", {"params": {
            "term": f"facility {rng.randrange(len(ids['organizations']))}", "limit": 100}}, True),
        "GET /api/v2/itemSearch": lambda: ("GET", "/api/v2/itemSearch", {"params": {
            "term": f"wo-{rng.randrange(len(ids['deals']))}", "limit": 100}}, True),
        "GET /api/v2/itemSearch/field (middle)": lambda: ("GET", "/api/v2/itemSearch/field", {"params": {
            "term": f"o-{rng.randrange(len(ids['deals']))}", "entity_type": "deal", "field": key,
            "match": "middle", "limit": 100}}, True),
    }


def measure(state: Path, filled: dict[str, Any], samples: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    sb = SandboxProcess(state)
    try:
        out: dict[str, Any] = {"start_seconds": round(sb.start_seconds, 2), "routes": {}}
        for name, make in _routes(filled, rng).items():
            took = []
            for i in range(samples + 5):
                if i == 5:  # the first few warm the connection and the caches
                    took, cpu = [], sb.cpu_seconds()
                method, path, kw, search = make()
                took.append(sb.request(method, path, search, **kw)[0] * 1000)
            cpu_ms = (sb.cpu_seconds() - cpu) * 1000 / samples
            took.sort()
            out["routes"][name] = {"samples": samples, "p50_ms": round(statistics.median(took), 2),
                                   "p99_ms": round(took[min(len(took) - 1, int(len(took) * 0.99))], 2),
                                   "max_ms": round(took[-1], 2), "sandbox_cpu_ms": round(cpu_ms, 2)}
        out["load_average"] = [round(x, 1) for x in psutil.getloadavg()]
        rss, peak = sb.rss_mb()
        out["sandbox_rss_mb"], out["sandbox_peak_rss_mb"] = round(rss), round(peak)
        out["db_mb"] = round(sum(p.stat().st_size for p in state.parent.glob(state.name + "*") if p.is_file()) / 2**20)
        return out
    finally:
        sb.close()


# -- rehearsal ----------------------------------------------------------------------------------------------
def rehearsal(creates: int, reserve: float) -> dict[str, Any]:
    """The product's client creates `creates` deals on plan lite (1 seat) on a simulated clock."""
    started = time.perf_counter()
    with SandboxServer(plan="lite", seats=1, clock=Clock()) as sb:
        sim = SimulatedTime.of(sb)
        client = PipedriveClient(sb.base_url, sb.api_token, plan="lite", seats=1, daily_reserve_fraction=reserve,
                                 **sim.client_kwargs())
        made: list[int] = []

        def load() -> None:  # resumable, as a relaunched load is: creates only what is still missing
            while len(made) < creates:
                made.append(client.create_deal({"title": f"WO-{len(made)}"}).id)

        stops = rehearse(load, sim)
        by_day = sb.usage()["tokens_by_day"]
        client.close()
        sim.close()
    check = check_day_plan(by_day, "lite", 1, reserve)
    return {"plan": "lite", "seats": 1, "reserve": reserve, "creates": len(made), "budget_stops": stops,
            "simulated_days": check.days, "calendar_days": check.days_planned, "usable_daily": check.usable_daily,
            "tokens_by_day": by_day, "days_over_budget": check.over, "day_plan_ok": check.ok,
            "simulated_hours": round(sim.jumped / 3600, 1), "wall_seconds": round(time.perf_counter() - started, 1)}


# -- main -----------------------------------------------------------------------------------------------------
def run(records: int, samples: int, creates: int, reserve: float, workdir: Path, reuse: bool,
        rehearse_too: bool = True) -> dict[str, Any]:
    state = workdir / "state.sqlite"
    if reuse:  # the records stay (the fill is the long part); what the measured creates added stays too
        filled = filled_before(state)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        filled = fill(state, records)
    measured = measure(state, filled, samples)
    return {"records": filled["records"], "counts": filled["counts"], "fill_seconds": filled["seconds"],
            "filler_max_rss_mb": filled["filler_max_rss_mb"], "reused_state": reuse, **measured,
            "rehearsal": None if reuse or not rehearse_too else rehearsal(creates, reserve),
            "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version(),
                        "sqlite": __import__("sqlite3").sqlite_version}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=300, help="measured requests per route")
    ap.add_argument("--quick", action="store_true", help="20,000 records, 60 samples, a small rehearsal")
    ap.add_argument("--reuse", action="store_true",
                    help="measure again on the state the last run filled (no fill, no rehearsal)")
    ap.add_argument("--no-rehearsal", action="store_true", help="fill and measure only")
    ap.add_argument("--workdir", type=Path, help="where the state goes (default <data folder>/bench/sandbox)")
    ap.add_argument("--json", type=Path, help="results file (default benchmarks/results/sandbox_bench-<records>.json)")
    args = ap.parse_args(argv)
    records, samples = (20_000, 60) if args.quick else (args.records, args.samples)
    # the rehearsal: lite keeps `reserve` of its 30,000 tokens a day; deals cost 5 tokens each
    creates, reserve = (300, 0.99) if args.quick else (20_000, 0.1)
    workdir = args.workdir or data_paths().root / "bench" / "sandbox"
    result = run(records, samples, creates, reserve, workdir, args.reuse, rehearse_too=not args.no_rehearsal)
    how = "reused" if args.reuse else f"filled in {result['fill_seconds']} s"
    print(f"{result['records']:,} records {how}; sandbox started in "
          f"{result['start_seconds']} s, RSS {result['sandbox_rss_mb']} MB (peak {result['sandbox_peak_rss_mb']} MB), "
          f"database {result['db_mb']} MB")
    for name, r in result["routes"].items():
        print(f"  {name:48} p50 {r['p50_ms']:7.2f} ms   p99 {r['p99_ms']:7.2f} ms   "
              f"sandbox CPU {r['sandbox_cpu_ms']:6.2f} ms/request")
    print(f"load average during the run: {result['load_average']} on {result['machine']['cpus']} CPUs")
    rh = result["rehearsal"] or {"day_plan_ok": True}
    if result["rehearsal"]:
        print(f"rehearsal: {rh['creates']:,} deals on {rh['plan']} ({rh['usable_daily']:,} tokens a day) in "
              f"{rh['simulated_days']} simulated days (calendar: {rh['calendar_days']}), {rh['wall_seconds']} s wall; "
              f"day plan {'kept' if rh['day_plan_ok'] else 'BROKEN'}")
    out = args.json or ROOT / "benchmarks" / "results" / f"sandbox_bench-{result['records']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}")
    worst = max(r["p99_ms"] for r in result["routes"].values())
    print(f"slowest p99: {worst:.1f} ms (target < {P99_TARGET_MS} ms on an otherwise idle machine)")
    return 0 if rh["day_plan_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
