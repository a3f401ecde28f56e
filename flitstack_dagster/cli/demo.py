"""`flitstack demo`: the README's main command — generate a messy export and migrate it end to end
into the local Pipedrive sandbox, the way a migration lead would in the Dagster UI.

1. generate a Novo export; 2. register a sample run and a full run; 3. materialize `migrate` for the
sample — it stops at the `mapping_approved` check, as it must before anyone confirms the map;
4. approve the proposal as "flitstack demo", mapping what it left unmapped (printed); 5. materialize
the sample again: it loads and is verified by read-back; 6. the verified sample opens the full run's
gate: the rest loads; 7. print the summary and where the reports are.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path


from flitstack_dagster.core import duck
from flitstack_dagster.core.plans import PLAN_NAMES
from flitstack_dagster.core.errors import is_interrupt
from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.core.settings import data_paths


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-orders", type=int, default=300, help="size of the generated export (default 300)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--mess", type=float, default=0.02, help="rate of injected export problems (default 0.02)")
    p.add_argument("--bundle", type=Path, help="migrate this bundle instead of generating one")
    p.add_argument("--plan", default="premium", choices=PLAN_NAMES, help="the sandbox account's Pipedrive plan (default premium)")
    p.add_argument("--seats", type=int, default=5)


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.cli.migrate import interrupted_exit

    try:
        return _demo(args)
    except BaseException as exc:
        if is_interrupt(exc):
            return interrupted_exit(RESUME)
        raise


# when piped, a load prints a line at half way (not sooner than 30 s in) and one when it ends if it took
# longer: the demo's whole output stays under 60 lines however slow the machine
PIPED_EVERY, PIPED_PARTS = 30.0, 2
RESUME = "flitstack demo"  # it reuses the export, the runs and the sandbox account: loaded records are skipped


def _demo(args: argparse.Namespace) -> int:
    from flitstack_dagster.cli.migrate import interrupted_exit, launch as launch_job
    from flitstack_dagster.defs.instance import blocked_on, outcome_lines, step_errors
    from flitstack_dagster.reports.summary import print_summary
    from flitstack_dagster.novo.runs import add_run
    from flitstack_dagster.sandbox.server import SandboxServer

    paths = data_paths().ensure()
    t0 = time.monotonic()
    bundle = args.bundle
    if bundle is None:
        bundle = paths.exports / f"demo-{args.work_orders}-seed{args.seed}-mess{args.mess:g}"
        if not (bundle / "manifest.json").exists():
            _step(f"1. Generating a Novo export ({args.work_orders:,} work orders, mess {args.mess:g}) in {bundle}")
            _generate(bundle, args)
        else:
            _step(f"1. Reusing the generated export {bundle}")
    with duck.connect(paths.duckdb) as con:
        sample = add_run(con, bundle, "sample", paths.work)
        full = add_run(con, bundle, "full", paths.work)
    results = []
    with SandboxServer(state_path=paths.sandbox_state, plan=args.plan, seats=args.seats) as sandbox:
        os.environ["PIPEDRIVE_BASE_URL"] = sandbox.base_url
        os.environ["PIPEDRIVE_API_TOKEN"] = sandbox.api_token
        os.environ["PIPEDRIVE_PLAN"], os.environ["PIPEDRIVE_SEATS"] = args.plan, str(args.seats)
        _step(f"2. Bundle verified; runs {sample.run_key} and {full.run_key} registered; destination: the local "
              f"Pipedrive sandbox at {sandbox.base_url} ({args.plan}, {args.seats} seats)")
        launch = functools.partial(launch_job, every=PIPED_EVERY, parts=PIPED_PARTS)
        _step(f"3. Materializing `migrate` for {sample.run_key} (landing, staging, profile, account audit, proposed mapping)")
        result = launch(paths, sample.run_key, sample.mode, str(bundle))
        if result is not None and blocked_on(result, "mapping_approved"):
            _step("4. Stopped at the blocking `mapping_approved` check, as it must before anyone confirms the map; "
                  "approving it as 'flitstack demo':")
            from flitstack_dagster.mapping.demo_approval import approve_for_demo

            _decisions(approve_for_demo(paths))
            _step("5. Materializing `migrate` for the sample again: provisioning, shaping, loading the stratified "
                  "sample, read-back verification")
            result = launch(paths, sample.run_key, sample.mode, str(bundle))
        if result is None:
            return interrupted_exit(RESUME)
        results.append((sample, result))
        if result.success:
            _step(f"6. The verified sample opens the gate: materializing `migrate` for {full.run_key} "
                  "(the sample's records are kept, the rest is loaded)")
            result = launch(paths, full.run_key, full.mode, str(bundle))
            if result is None:
                return interrupted_exit(RESUME)
            results.append((full, result))
        usage = sandbox.usage()
    errors = [e for _, r in results for e in step_errors(r)]
    _step(f"7. Done in {time.monotonic() - t0:.1f} s")
    for run_, r in results:
        for line in outcome_lines(run_.run_key, r):
            print(f"   {plain_line(line, 1000)}")
    print_summary(paths, results[-1][0].run_key, usage, per_file=False)
    print(f"\nSee it in the UI: DAGSTER_HOME={paths.root / 'dagster_home'} .venv/bin/dg dev")
    return 1 if errors else 0


DECISIONS_SHOWN = 2  # the rest are in the approved file, each with its reason


def _decisions(lines: list[str]) -> None:
    """The approval's decisions: the first few in full, the count of the others."""
    approved, decided = lines[0], lines[1:]
    for line in decided[:DECISIONS_SHOWN]:
        print(f"   {plain_line(line)}")
    if len(decided) > DECISIONS_SHOWN:
        print(f"   ... and {len(decided) - DECISIONS_SHOWN} more decisions like these (each with its reason in the file)")
    print(f"   {plain_line(approved)} ({len(decided)} decision{'s' if len(decided) != 1 else ''})")


def _generate(bundle: Path, args: argparse.Namespace) -> None:
    """The export in two lines: `flitstack generate` prints the per-file and per-problem tables."""
    from flitstack_dagster.novo.generator import generate
    from flitstack_dagster.novo.generator.options import GenOptions

    s = generate(GenOptions(out=bundle, work_orders=args.work_orders, seed=args.seed, mess=args.mess),
                 log=lambda _line: None)
    print(f"   {len(s.files)} files, {s.rows:,} records, {s.bodies:,} attachment bodies in {s.seconds:.1f} s")
    if s.mess_count:
        print(f"   {s.mess_count:,} injected export problems of {len(s.mess_tally)} kinds, listed in {s.mess_log}")


def _step(msg: str) -> None:
    print(f"== {msg}", flush=True)
