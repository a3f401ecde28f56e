"""A loadable migration run, built once through Dagster and copied per test, plus the sandbox it loads into.

`prepare()` generates a small messy bundle (with extra attachments, so the file load has work to
do), registers the run and materializes everything before the loads — landing, staging, mapping
(approved the way `flitstack demo` approves it), provisioning and shaping — into one data folder and
one sandbox state file. `clone()` copies both for a test; `sandbox()` serves a clone's state;
`load_all()` loads every entity in FK order with the domain loader, the way the load assets do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.loading.loader import LoadResult
from flitstack_dagster.entities import ENTITIES as REGISTRY
from flitstack_dagster.loading.run import load_shaped
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.novo.runs import get_run
from flitstack_dagster.sandbox.faults import FaultConfig
from flitstack_dagster.sandbox.server import SandboxServer
from flitstack_dagster.core.settings import Paths
from flitstack_dagster_tests.kit import resign, waive_sample_gate

# A recognisable token: the security tests grep every output for it.
TOKEN = "tok_SECRET_canary_123"
PLAN, SEATS = "ultimate", 5  # the highest burst limit keeps the loads short
ENTITIES = tuple(REGISTRY.shaped_tables)  # the load entities' names, FK order
PRE_LOAD_GROUPS = ("novo_landing", "novo_staging", "mapping", "pipedrive_shapes")
SHAPE_STEP = ("pipedrive_schema", "owner_resolution", "scope_doc")  # after approval, with the pd_* assets


@dataclass(frozen=True)
class Prepared:
    """A data folder + sandbox state where one run is shaped and ready to load."""

    root: Path
    bundle: Path
    run_key: str

    @property
    def paths(self) -> Paths:
        return Paths(self.root / "data")

    @property
    def sandbox_state(self) -> Path:
        return self.root / "sandbox" / "state.sqlite"


def generate(out: Path, work_orders: int, seed: int, mess: float) -> Path:
    args = ["generate", "--out", str(out), "--work-orders", str(work_orders), "--seed", str(seed),
            "--mess", str(mess), "--no-mess-log"]
    assert cli_main(args) == 0
    return out



def staged_run(root: Path, work_orders: int, seed: int, mess: float = 0.0) -> tuple[Paths, str]:
    """A generated bundle registered as a full run, landed and staged under `root` -> (paths, run key)."""
    from flitstack_dagster.novo.bundle import open_bundle
    from flitstack_dagster.novo.landing import land_bundle
    from flitstack_dagster.novo.runs import add_run
    from flitstack_dagster.staging.runner import run_all

    bundle = generate(root / "bundle", work_orders, seed, mess)
    paths = Paths(root / "data").ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
        land_bundle(con, open_bundle(bundle, paths.work / run_key), run_key)
        run_all(con, run_key)
    return paths, run_key

def add_attachments(bundle: Path, count: int) -> list[str]:
    """Append `count` small work-order attachments (bodies written, manifest re-signed) -> their ids."""
    wos = sorted({r["WO Number"] for r in read_csv(bundle, "work_orders.csv")[1] if r["WO Number"].startswith("WO-")})
    header, rows, enc = read_csv(bundle, "attachments.csv")
    ids = []
    for i in range(count):
        wo = wos[i % len(wos)]
        name = f"crew sheet {i + 1}.txt"
        body = f"Crew sheet {i + 1} for {wo}\n".encode() * (i + 1)
        rel = f"files/{wo}/{name}"
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(body)
        aid = f"ATT-9{i:05d}"
        ids.append(aid)
        rows.append({"Attachment ID": aid, "Parent Type": "Work Order", "Parent ID": wo, "File Name": name,
                     "Bundle Path": rel, "Size": str(len(body)), "Content Type": "text/plain",
                     "SHA-256": hashlib.sha256(body).hexdigest(), "Uploaded At": "2026-10-01T12:00:00Z",
                     "Uploaded By ID": "", "Description": "added by the reliability tests"})
    write_csv(bundle, "attachments.csv", header, rows, enc)
    resign(bundle, {"attachments.csv": len(rows)})
    return ids


CANARY = "CANARY-outside-the-bundle-7f3a9c"  # the body of files placed outside the bundle
SCRIPT = "<script>alert('flitstack')</script>"


def hostile(bundle: Path) -> None:
    """Attachments whose paths leave the bundle (a canary file waits at each target) and Novo text that
    looks like script, in a work order title, a status comment and an activity-log note."""
    root = bundle.parent
    (root / "canary.txt").write_text(CANARY, encoding="utf-8")
    body = CANARY.encode()
    header, rows, enc = read_csv(bundle, "attachments.csv")
    wo = next(r["Parent ID"] for r in rows if r["Parent Type"] == "Work Order")
    for i, path in enumerate(["../canary.txt", f"files/{wo}/../../../canary.txt", str(root / "canary.txt")]):
        rows.append({"Attachment ID": f"ATT-8{i:05d}", "Parent Type": "Work Order", "Parent ID": wo,
                     "File Name": f"innocent {i}.txt", "Bundle Path": path, "Size": str(len(body)),
                     "Content Type": "text/plain", "SHA-256": hashlib.sha256(body).hexdigest(),
                     "Uploaded At": "2026-10-01T12:00:00Z", "Uploaded By ID": "", "Description": ""})
    write_csv(bundle, "attachments.csv", header, rows, enc)
    header, wos, enc = read_csv(bundle, "work_orders.csv")
    counts = Counter(r["WO Number"] for r in wos)  # a duplicated id may be dropped by staging: avoid it
    next(r for r in wos if counts[r["WO Number"]] == 1)["Title"] = f"Valve {SCRIPT} check"
    write_csv(bundle, "work_orders.csv", header, wos, enc)
    header, log, enc = read_csv(bundle, "status_log.csv")
    ids = Counter(r["Log ID"] for r in log)
    next(r for r in log if ids[r["Log ID"]] == 1 and r["WO Number"])["Comment"] = f"called back {SCRIPT}"
    write_csv(bundle, "status_log.csv", header, log, enc)
    header, notes, enc = read_csv(bundle, "notes.csv")
    ids = Counter(r["Note ID"] for r in notes)
    note = next(r for r in notes if r["Entry Type"] == "Note" and r["WO Number"] and ids[r["Note ID"]] == 1)
    note["Body"] = f"<img src=x onerror=alert(1)> {SCRIPT}"
    write_csv(bundle, "notes.csv", header, notes, enc)
    resign(bundle, {"attachments.csv": len(rows)})


def read_csv(bundle: Path, name: str) -> tuple[list[str], list[dict[str, str]], str]:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    enc = {"utf-8-sig": "utf-8-sig", "cp1252": "cp1252"}.get(manifest["encoding"], "utf-8")
    with open(bundle / name, encoding=enc, errors="surrogateescape", newline="") as f:  # keeps mixed bytes as they are
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader), enc


def write_csv(bundle: Path, name: str, header: list[str], rows: list[dict[str, str]], enc: str) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    (bundle / name).write_bytes(buf.getvalue().encode(enc, errors="surrogateescape"))


def prepare(root: Path, *, work_orders: int = 12, seed: int = 7, mess: float = 0.03, attachments: int = 20,
            tweak: Callable[[Path], None] | None = hostile, instance: dg.DagsterInstance | None = None) -> Prepared:
    """Generate, register and materialize everything before the loads (approval included)."""
    from flitstack_dagster.definitions import build_definitions
    from flitstack_dagster.defs.partitions import migration_runs
    from flitstack_dagster.defs.pipedrive_resource import PipedriveResource
    from flitstack_dagster.mapping.demo_approval import approve_for_demo
    from flitstack_dagster.novo.runs import add_run

    root.mkdir(parents=True, exist_ok=True)
    bundle = generate(root / "bundle", work_orders, seed, mess)
    if attachments:
        add_attachments(bundle, attachments)
    if tweak:
        tweak(bundle)
    paths = Paths(root / "data").ensure()
    with duck.connect(paths.duckdb) as con:
        run_key = add_run(con, bundle, "full", paths.work).run_key
    prepared = Prepared(root, bundle, run_key)
    with sandbox(prepared) as sb:
        pipedrive = PipedriveResource(base_url=sb.base_url, api_token=TOKEN, plan=PLAN, seats=SEATS)
        instance = instance or dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(migration_runs.name, [run_key])
        defs = build_definitions(paths.root, pipedrive=pipedrive)
        graph = defs.resolve_asset_graph()
        keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in PRE_LOAD_GROUPS]
        job = defs.resolve_job_def("migrate")
        first = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                       asset_selection=keys)
        waiting = [c for c in first.get_asset_check_evaluations() if c.check_name == "mapping_approved"]
        assert waiting and not waiting[0].passed, "the first pass must stop at the mapping approval"
        approve_for_demo(paths)
        waive_sample_gate(paths)
        after = [k for k in keys if graph.get(k).group_name == "pipedrive_shapes" or k.path[-1] in SHAPE_STEP]
        second = job.execute_in_process(partition_key=run_key, instance=instance, raise_on_error=False,
                                        asset_selection=after)
        failed = [c.check_name for c in second.get_asset_check_evaluations()
                  if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
        assert second.success and not failed, f"shaping did not pass its blocking checks: {failed}"
    return prepared


def reuse(root: Path) -> Prepared:
    """A folder `prepare` made earlier (the run key is read from its DuckDB file)."""
    with duck.connect(Paths(root / "data").duckdb, read_only=True) as con:
        run_key = con.execute("SELECT run_key FROM meta.migration_runs").fetchall()[0][0]
    return Prepared(root, root / "bundle", run_key)


def clone(src: Prepared, dest: Path) -> Prepared:
    """Copy the data folder and sandbox state (the bundle is shared: nothing writes to it)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src.root / "data", dest / "data")
    shutil.copytree(src.root / "sandbox", dest / "sandbox")
    return Prepared(dest, src.bundle, src.run_key)


def sandbox(p: Prepared, faults: FaultConfig | None = None, **kw) -> SandboxServer:
    return SandboxServer(state_path=p.sandbox_state, plan=PLAN, seats=SEATS, api_token=TOKEN, faults=faults,
                         port=0, **kw)


def client(sb: SandboxServer, **kw) -> PipedriveClient:
    """A client as the load assets build it, with short backoffs so fault tests stay fast."""
    kw.setdefault("backoff_base", 0.05)
    kw.setdefault("backoff_cap", 1.0)
    return PipedriveClient(sb.base_url, TOKEN, plan=PLAN, seats=SEATS, **kw)


def load_all(p: Prepared, pd: PipedriveClient, entities=ENTITIES) -> dict[str, LoadResult]:
    """Every entity in FK order, as the load assets run them; stops at the first stopped load."""
    out: dict[str, LoadResult] = {}
    with duck.connect(p.paths.duckdb) as con:
        bundle_root = Path(get_run(con, p.run_key).bundle_path)
        for entity in entities:
            out[entity] = r = load_shaped(con, pd, p.run_key, entity, bundle_root=bundle_root)
            if r.stopped:
                break
    return out
