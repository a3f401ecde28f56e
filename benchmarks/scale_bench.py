"""Benchmark 1, shaping at scale: a generated Novo bundle -> every `pd_*` asset, through Dagster.

    .venv/bin/python benchmarks/scale_bench.py                 # 1,000,000 work orders (target: <= 12x the floor, <= 4 GiB)
    .venv/bin/python benchmarks/scale_bench.py --quick         # 2,000 work orders, seconds (CI smoke test)
    .venv/bin/python benchmarks/scale_bench.py --work-orders 100000
    .venv/bin/python benchmarks/scale_bench.py --work-orders 100000 --profile data/bench/prof   # cProfile per stage

The bundle is generated once per size and seed and cached under `data/bench/` (generation is not part
of the target; `--bundle PATH` reuses a bundle generated elsewhere). Each run first measures the floor,
then starts from an empty data folder and materializes the `migrate` job's assets for one partition,
stage by stage, in this one process (the project's executor is in-process too):

    floor    DuckDB reading every CSV of the bundle into tables, nothing else; median of 3 reads (see below)
    land     land_novo_export (verify the bundle, land every file into raw.*)
    stage    every staging model + novo_quarantine
    mapping  source_profile, account audit, owners, proposed_mapping (+ mapping_approved), provisioning,
             scope document — against an in-process Pipedrive sandbox, with a mapping approved beforehand
    shape    shape_pipedrive_records (every pd_* asset and its checks)

The floor is what no migration of this bundle can beat on this machine, measured in the same run so a
stage's multiple of it means the same on any machine: a fresh in-memory DuckDB, one
`CREATE TABLE AS SELECT * FROM read_csv(...)` per CSV of the manifest, then close. It uses landing's
own reader options (header, every column VARCHAR from the header, strict quoting, '' kept as '') —
all text, not auto-detected types, because landing keeps every value as text and staging parses it
later: type sniffing would be work the product does not do at this step (into a file it cost 3.8 vs 3.5
CPU-s at 100,000 work orders). In memory, not a file, because that is the bare read the target is
defined against; writing the tables to a DuckDB file doubles its CPU (compression: 3.5 vs 1.6 CPU-s
at 100,000 work orders) and ties the floor to the disk. Both bundle and floor are read from the page
cache (every file is read once, untimed, first). What the floor leaves out is exactly landing's extra
work: bundle verification (hashing every file), the DuckDB file, `_run_key` and
`row_number() OVER ()`, the count check, attachment bodies and the JSON files.

The load assets are not run. Per stage and for the floor: wall time, CPU seconds of the process (user +
system of every thread), peak RSS (the kernel's high-water mark, reset between stages), load average,
and the wall time as a multiple of the floor. Prints a table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_FLOOR_MULTIPLE = 12.0  # bundle -> every pd_* asset within 12x the time DuckDB needs just to read the CSVs
TARGET_RSS_GIB = 4.0
QUICK_WORK_ORDERS = 2000
GIB = 1024**3


# -- memory ----------------------------------------------------------------------------------------
def _status_kib(field_name: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{field_name}:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(m.group(1)) if m else 0


class PeakRss:
    """Peak resident memory of this process over a stretch of code.

    Linux keeps the high-water mark (VmHWM); writing 5 to /proc/self/clear_refs resets it, so each stage
    gets its own peak. Where that is not allowed, a sampling thread (every 50 ms) stands in.
    """

    def __init__(self) -> None:
        self._can_reset = self._reset()
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def __enter__(self) -> Self:
        self._can_reset = self._reset()
        self._sampled = _status_kib("VmRSS")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._sampled = max(self._sampled, _status_kib("VmRSS"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_bytes = 1024 * max(self._sampled, _status_kib("VmHWM") if self._can_reset else 0)
        self.end_bytes = 1024 * _status_kib("VmRSS")


class RssByFunction:
    """Where memory peaks: every 50 ms, the process's RSS against the main thread's innermost project
    function (and its caller), keeping each one's highest RSS. Off when `path` is None; the result is
    written to `path` as JSON, highest first."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.path is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            frame = sys._current_frames().get(self._main)
            where = []
            while frame is not None and len(where) < 2:
                if "flitstack_dagster" in frame.f_code.co_filename and "/defs/" not in frame.f_code.co_filename:
                    where.append(f"{Path(frame.f_code.co_filename).stem}.{frame.f_code.co_name}")
                frame = frame.f_back
            key = " < ".join(where) or "(outside the project's code)"
            self.peaks[key] = max(self.peaks.get(key, 0), 1024 * _status_kib("VmRSS"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            top = dict(sorted(self.peaks.items(), key=lambda kv: -kv[1]))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({k: round(v / GIB, 3) for k, v in top.items()}, indent=1) + "\n")
            print("         highest RSS by function (GiB): " + ", ".join(
                f"{k} {v / GIB:.2f}" for k, v in list(top.items())[:5]), flush=True)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    assets: str
    seconds: float
    cpu_seconds: float  # user + system of this process, all threads: what the stage costs regardless of load
    load_average: float  # the machine's 1-minute load average at the end (other work competing for the CPUs)
    peak_rss_bytes: int
    end_rss_bytes: int
    dagster_success: bool
    failed_checks: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # wall seconds of each Dagster step, slowest first


@dataclass
class Floor:
    """DuckDB reading every CSV of the bundle into tables, nothing else (module docstring: why this way)."""

    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    load_average: float
    files: int
    rows: int
    repeats: list[float] = field(default_factory=list)  # wall seconds of every read; the floor is their median
    reader: str = "landing's read_csv options: header, every column VARCHAR, strict quoting; in-memory DuckDB"


@dataclass
class Result:
    work_orders: int
    seed: int
    bundle: str
    bundle_bytes: int
    bundle_rows: int
    floor: Floor
    stages: list[Stage]
    rows: dict[str, int]
    machine: dict
    approval: str
    started_at: str

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds for s in self.stages)

    @property
    def peak_rss_bytes(self) -> int:
        return max(s.peak_rss_bytes for s in self.stages)

    def multiple(self, seconds: float) -> float:
        """Wall seconds as a multiple of the floor's wall seconds."""
        return round(seconds / self.floor.seconds, 2)

    def cpu_multiple(self, cpu_seconds: float) -> float:
        return round(cpu_seconds / self.floor.cpu_seconds, 2) if self.floor.cpu_seconds > 0 else 0.0

    @property
    def floor_met(self) -> bool:
        return self.total_seconds <= TARGET_FLOOR_MULTIPLE * self.floor.seconds

    @property
    def rss_met(self) -> bool:
        return self.peak_rss_bytes <= TARGET_RSS_GIB * GIB

    def as_json(self) -> dict:
        d = asdict(self)
        for stage in d["stages"]:
            stage["floor_multiple"] = self.multiple(stage["seconds"])
            stage["cpu_floor_multiple"] = self.cpu_multiple(stage["cpu_seconds"])
        d["total_seconds"] = round(self.total_seconds, 2)
        d["total_cpu_seconds"] = round(self.cpu_seconds, 2)
        d["total_floor_multiple"] = self.multiple(self.total_seconds)
        d["total_cpu_floor_multiple"] = self.cpu_multiple(self.cpu_seconds)
        d["peak_rss_bytes"] = self.peak_rss_bytes
        d["targets"] = {
            "floor_multiple": TARGET_FLOOR_MULTIPLE, "rss_gib": TARGET_RSS_GIB,
            "seconds": round(TARGET_FLOOR_MULTIPLE * self.floor.seconds, 2),
            "floor_multiple_met": self.floor_met, "rss_met": self.rss_met,
        }
        return d


def machine() -> dict:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    try:
        mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024
    except (OSError, AttributeError):
        pass
    import dagster
    import duckdb
    import polars

    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_bytes": mem, "python": platform.python_version(),
            "dagster": dagster.__version__, "duckdb": duckdb.__version__, "polars": polars.__version__}


# -- the bundle ------------------------------------------------------------------------------------
def cached_bundle(cache: Path, work_orders: int, seed: int) -> Path:
    """The generated bundle for this size and seed, generated on first use only."""
    from flitstack_dagster.novo.generator import GenOptions, generate

    bundle = cache / f"bundle-{work_orders}-seed{seed}"
    if (bundle / "manifest.json").exists():
        print(f"bundle: reusing {bundle}", flush=True)
        return bundle
    print(f"bundle: generating {work_orders:,} work orders (seed {seed}) into {bundle} — cached for later runs",
          flush=True)
    t0 = time.perf_counter()
    generate(GenOptions(out=bundle, work_orders=work_orders, seed=seed, mess_log=False, force=True),
             log=lambda line: print(f"  {line}", flush=True))
    print(f"bundle: generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return bundle


def bundle_size(bundle: Path) -> tuple[int, int]:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return sum(f["bytes"] for f in manifest["files"]), sum(f["rows"] for f in manifest["files"])


# -- the floor -------------------------------------------------------------------------------------
def measure_floor(bundle: Path, repeats: int = 3) -> Floor:
    """Time DuckDB reading every CSV of the bundle into tables of a fresh in-memory database: the median
    of `repeats` reads (a read of a few seconds swings with other work on the machine), with its CPU
    seconds and peak RSS."""
    reads = sorted((_read_floor(bundle) for _ in range(max(1, repeats))), key=lambda f: f.seconds)
    floor = reads[len(reads) // 2]
    floor.repeats = [f.seconds for f in reads]
    print(f"floor    {floor.seconds:8.1f} s  cpu {floor.cpu_seconds:7.1f} s  peak RSS {floor.peak_rss_bytes / GIB:5.2f} GiB"
          f"  load {floor.load_average:.1f}  ({floor.rows:,} rows; median of {len(reads)} reads: "
          f"{', '.join(f'{x:.1f}' for x in floor.repeats)} s)", flush=True)
    return floor


def _read_floor(bundle: Path) -> Floor:
    import duckdb

    from flitstack_dagster.core import duck
    from flitstack_dagster.novo.bundle import read_header
    from flitstack_dagster.novo.landing import _read_csv

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    csvs = [f["name"] for f in manifest["files"] if f["name"].endswith(".csv")]
    headers = {name: read_header(bundle / name, manifest["encoding"]) for name in csvs}  # untimed: known before landing
    rows = 0
    t0, c0 = time.perf_counter(), _cpu()
    with PeakRss() as mem:
        con = duckdb.connect(":memory:", config=duck.CONNECTION_CONFIG)
        try:
            for i, name in enumerate(csvs):
                con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {_read_csv(bundle / name, headers[name])}")
                rows += con.execute(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
        finally:
            con.close()
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return Floor(round(seconds, 2), round(cpu, 2), mem.peak_bytes, os.getloadavg()[0], len(csvs), rows)


# -- Dagster ---------------------------------------------------------------------------------------
STAGES: list[tuple[str, list[str]]] = [
    ("land", ["group:novo_landing"]),
    ("stage", ["group:novo_staging"]),
    ("mapping", ["source_profile", "pipedrive_account_audit", "owner_resolution", "proposed_mapping",
                 "pipedrive_schema", "scope_doc"]),
    ("shape", ["group:pipedrive_shapes"]),
]


def stage_keys(defs, spec: list[str]):
    import dagster as dg

    keys = []
    graph = defs.resolve_asset_graph()
    for item in spec:
        if item.startswith("group:"):
            group = item.split(":", 1)[1]
            keys += [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == group]
        else:
            keys.append(dg.AssetKey(item))
    return sorted(keys, key=lambda k: k.to_user_string())


def failed_checks(result) -> list[str]:
    return [f"{c.asset_key.to_user_string()}.{c.check_name}" for c in result.get_asset_check_evaluations()
            if not c.passed and c.severity.value == "ERROR"]


def step_seconds(instance, result) -> dict[str, float]:
    """Wall seconds from each step's start to its end, slowest first: where a stage's time went."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id, of_type=kinds):
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        elif entry.step_key in started:
            took[entry.step_key] = round(entry.timestamp - started[entry.step_key], 2)
    return dict(sorted(took.items(), key=lambda kv: -kv[1]))


def step_errors(result) -> list[str]:
    """Step failures other than a blocking check doing its job."""
    out = []
    for e in result.all_node_events:
        if e.is_step_failure and e.step_failure_data.error is not None:
            err = e.step_failure_data.error
            if any("AssetCheckFailed" in c for c in (err.cls_name, err.cause.cls_name if err.cause else "")):
                continue
            out.append(f"{e.step_key}: {err.cls_name}: {err.message.strip().splitlines()[0][:300]}")
    return out


def run_bench(work_orders: int, seed: int, cache: Path, json_path: Path | None, log_level: str = "WARNING",
              only: list[str] | None = None, reuse: bool = False, bundle: Path | None = None,
              profile: Path | None = None, floor_repeats: int = 3) -> Result:
    import dagster as dg

    from flitstack_dagster.core import duck
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.mapping import store as mapping_store
    from flitstack_dagster.mapping.demo_approval import approve_for_demo
    from flitstack_dagster.defs.instance import add_partition
    from flitstack_dagster.novo.runs import add_run, list_runs
    from flitstack_dagster.sandbox.server import SandboxServer
    from flitstack_dagster.core.settings import Paths

    cache.mkdir(parents=True, exist_ok=True)
    bundle = bundle or cached_bundle(cache, work_orders, seed)
    warm_page_cache(bundle)
    print("floor    DuckDB reading every CSV of the bundle into tables …", flush=True)
    floor = measure_floor(bundle, floor_repeats)
    data = cache / f"run-{work_orders}-seed{seed}"
    reuse = reuse and (data / "flitstack.duckdb").exists()
    if data.exists() and not reuse:
        shutil.rmtree(data)
    paths = Paths(data.resolve()).ensure()
    approval_cache = cache / f"approved-{work_orders}-seed{seed}.yaml"

    with duck.connect(paths.duckdb) as con:
        run = list_runs(con)[-1] if reuse else add_run(con, bundle, "full", paths.work)
    run_key = run.run_key
    home = data / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.ephemeral(tempdir=str(home))
    add_partition(instance, run_key)

    with SandboxServer(state_path=data / "sandbox" / "state.json", plan="growth", seats=5) as sandbox:
        pipedrive = PipedriveResource(base_url=sandbox.base_url, api_token=sandbox.api_token)
        defs = build_definitions(data.resolve(), pipedrive=pipedrive)
        job = defs.resolve_job_def("migrate")

        def materialize(keys, quiet: bool = False):
            config = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if quiet else log_level}}}}
            return job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                          asset_selection=keys, run_config=config,
                                          tags={"flitstack/bundle": str(bundle), "flitstack/mode": "full"})

        stages: list[Stage] = []
        approval = "cached"
        for name, spec in STAGES:
            if only and name not in only:
                continue
            keys = stage_keys(defs, spec)
            if name == "mapping":
                approval = _preapprove(approval_cache, paths, materialize, defs, approve_for_demo, mapping_store)
            print(f"{name:<8} materializing {len(keys)} assets …", flush=True)
            t0, c0 = time.perf_counter(), _cpu()
            rss_path = profile / f"rss-{name}-{work_orders}.json" if profile else None
            with PeakRss() as mem, profiled(profile, f"{name}-{work_orders}"), RssByFunction(rss_path):
                result = materialize(keys)
            seconds, cpu = time.perf_counter() - t0, _cpu() - c0
            stage = Stage(name, ", ".join(spec), round(seconds, 2), round(cpu, 2), os.getloadavg()[0],
                          mem.peak_bytes, mem.end_bytes, result.success, failed_checks(result),
                          step_seconds(instance, result))
            stages.append(stage)
            print(f"{name:<8} {seconds:8.1f} s  cpu {cpu:7.1f} s  peak RSS {mem.peak_bytes / GIB:5.2f} GiB"
                  f"  load {os.getloadavg()[0]:.1f}"
                  f"{'' if result.success else '  (Dagster run failed)'}", flush=True)
            print("         slowest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in list(stage.steps.items())[:4]),
                  flush=True)
            errors = step_errors(result)
            if errors or not result.success:
                for e in errors:
                    print(f"         {e}", flush=True)
                raise SystemExit(f"stage {name} failed; see above")

    rows = {}
    with duck.connect(paths.duckdb, read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'shaped' "
                                    "AND table_name LIKE 'pd_%' ORDER BY table_name").fetchall():
            rows[table] = con.execute(f'SELECT count(*) FROM shaped."{table}" WHERE run_key = ?',
                                      [run_key]).fetchall()[0][0]
    nbytes, nrows = bundle_size(bundle)
    result = Result(work_orders, seed, str(bundle), nbytes, nrows, floor, stages, rows, machine(), approval,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print_table(result)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
        print(f"results: {json_path}")
    return result


def warm_page_cache(bundle: Path) -> None:
    """Read every file once, untimed, so the floor and landing both read the bundle from memory."""
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


@contextmanager
def profiled(folder: Path | None, name: str):
    """cProfile of the main thread over the block (Dagster's in-process executor runs each step there);
    writes `<folder>/<name>.prof` and prints the top functions by own time. Off when folder is None."""
    if folder is None:
        yield
        return
    import cProfile
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(folder / f"{name}.prof")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def _preapprove(approval_cache: Path, paths, materialize, defs, approve_for_demo, mapping_store) -> str:
    """Put an approved mapping in place before the timed mapping stage, as a migration lead would have.

    The approval for this bundle is cached beside it; the first time, it is made the demo's way
    (propose, then approve every decision as `flitstack demo`) in an untimed pass.
    """
    target = mapping_store.approved_path(paths)
    if approval_cache.exists():
        shutil.copyfile(approval_cache, target)
        _waive_sample(target)
        return f"reused {approval_cache.name}"
    print("mapping  (untimed) first run for this bundle: proposing and approving the mapping …", flush=True)
    keys = stage_keys(defs, ["source_profile", "pipedrive_account_audit", "proposed_mapping"])
    result = materialize(keys, quiet=True)  # its mapping_approved check fails, as it must
    if step_errors(result):
        raise SystemExit("proposing the mapping failed: " + "; ".join(step_errors(result)))
    for line in approve_for_demo(paths):
        print(f"         {line}", flush=True)
    _waive_sample(target)
    shutil.copyfile(target, approval_cache)
    return "approved in an untimed pass before the stage (first run for this bundle)"


def _waive_sample(approved: Path) -> None:
    """Nothing is loaded here, so the full run's load gate (a verified sample first) is waived."""
    from flitstack_dagster.mapping.approval import waive_sample_verification

    waive_sample_verification(approved)


def print_table(r: Result) -> None:
    print()
    print(f"Shaping at scale: {r.work_orders:,} work orders, {r.bundle_rows:,} rows, "
          f"{r.bundle_bytes / 1e6:,.0f} MB of CSV — {r.machine['cpus']} CPUs, "
          f"{r.machine['memory_bytes'] / GIB:.0f} GiB, {r.machine['cpu_model']}")
    print(f"{'stage':<10}{'wall s':>10}{'cpu s':>10}{'peak RSS GiB':>15}{'load':>7}{'x floor':>9}  assets")
    f = r.floor
    print(f"{'floor':<10}{f.seconds:>10.1f}{f.cpu_seconds:>10.1f}{f.peak_rss_bytes / GIB:>15.2f}"
          f"{f.load_average:>7.1f}{1.0:>9.2f}  {f.files} CSVs, {f.rows:,} rows into DuckDB tables")
    for s in r.stages:
        print(f"{s.name:<10}{s.seconds:>10.1f}{s.cpu_seconds:>10.1f}{s.peak_rss_bytes / GIB:>15.2f}"
              f"{s.load_average:>7.1f}{r.multiple(s.seconds):>9.2f}  {s.assets}")
    print(f"{'total':<10}{r.total_seconds:>10.1f}{r.cpu_seconds:>10.1f}{r.peak_rss_bytes / GIB:>15.2f}{'':>7}"
          f"{r.multiple(r.total_seconds):>9.2f}  "
          f"target <= {TARGET_FLOOR_MULTIPLE:.0f}x floor ({TARGET_FLOOR_MULTIPLE * f.seconds:.1f} s): "
          f"{'met' if r.floor_met else 'MISSED'}; <= {TARGET_RSS_GIB:.0f} GiB: {'met' if r.rss_met else 'MISSED'}")
    print("shaped rows: " + ", ".join(f"{k} {v:,}" for k, v in r.rows.items()))
    failed = [c for s in r.stages for c in s.failed_checks]
    print("blocking checks failed: " + (", ".join(failed) if failed else "none"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work-orders", type=int, default=1_000_000, help="bundle size (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_WORK_ORDERS:,} work orders: a smoke run in seconds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cache", type=Path, default=ROOT / "data" / "bench",
                   help="where bundles, approvals and the run's data folder live (default data/bench)")
    p.add_argument("--json", type=Path, default=None,
                   help="results file (default CACHE/scale_bench-<work orders>.json)")
    p.add_argument("--stages", default=",".join(s for s, _ in STAGES),
                   help="comma-separated stages to time (default all); with --reuse, e.g. --stages shape")
    p.add_argument("--reuse", action="store_true",
                   help="keep the previous run's data folder for this size (to re-time later stages alone)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="an already generated bundle folder to use instead of CACHE/bundle-<N>-seed<S>")
    p.add_argument("--floor-repeats", type=int, default=3,
                   help="read the CSVs this many times for the floor and take the median (default 3)")
    p.add_argument("--profile", type=Path, default=None,
                   help="cProfile each stage into this folder (<stage>-<N>.prof; slows the stages down) and\n"
                        "record each function's highest RSS there (rss-<stage>-<N>.json)")
    p.add_argument("--dagster-log-level", default="WARNING", help="Dagster console log level (default WARNING)")
    args = p.parse_args(argv)
    n = QUICK_WORK_ORDERS if args.quick else args.work_orders
    json_path = args.json or args.cache / f"scale_bench-{n}.json"
    only = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(only) - {s for s, _ in STAGES})
    if unknown:
        p.error(f"unknown stage(s): {', '.join(unknown)}")
    run_bench(n, args.seed, args.cache.resolve(), json_path, args.dagster_log_level, only, args.reuse,
              args.bundle.resolve() if args.bundle else None, args.profile, args.floor_repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
