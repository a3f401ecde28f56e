"""The code location: assets, checks, jobs and resources, wired from `defs/` — nothing else here."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from flitstack_dagster.defs import jobs, landing, runs, staging
from flitstack_dagster.defs.resources import build_resources


def build_definitions(data_dir: Path | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[landing.land_novo_export, *staging.staging_assets, staging.novo_quarantine],
        jobs=[jobs.migrate, runs.register_migration_run],
        resources=build_resources(data_dir),
        # DuckDB allows one writer process: steps run in one process, one after another.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
