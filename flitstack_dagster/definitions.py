"""The code location: assets, checks, jobs and resources, wired from `defs/` — nothing else here."""

from pathlib import Path

import dagster as dg

from flitstack_dagster.defs import (
    approval, jobs, landing, loading, mapping, repair, rollback, runs, sensors, shaping, staging,
)
from flitstack_dagster.defs.pipedrive_resource import pipedrive_from_env
from flitstack_dagster.defs.resources import build_resources
from flitstack_dagster.defs.verification import build_verification_assets
from flitstack_dagster.entities import ENTITIES, Registry


# Who to ask about an asset in the UI: the migration team that runs this code location.
OWNERS = ["team:migration"]


def build_definitions(
    data_dir: Path | None = None, pipedrive: object | None = None, entities: Registry = ENTITIES,
) -> dg.Definitions:
    """The code location; `entities` decides which `pd_*` and `loaded_*` assets exist."""
    assets = [
        landing.land_novo_export, *staging.staging_assets, staging.novo_quarantine,
        *mapping.mapping_assets, shaping.build_shape_asset(entities), *loading.build_load_assets(entities),
        *build_verification_assets(entities),
    ]
    return dg.Definitions(
        assets=dg.map_asset_specs(lambda spec: spec.replace_attributes(owners=OWNERS), assets),
        jobs=[jobs.migrate, approval.approve_mapping, runs.register_migration_run, rollback.rollback,
              repair.repair],
        sensors=sensors.sensors,
        resources={**build_resources(data_dir), "pipedrive": pipedrive or pipedrive_from_env()},
        # DuckDB allows one writer process: steps run in one process, one after another.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
