"""Jobs people launch: `migrate` (everything for one migration run) and run registration."""

import dagster as dg

from flitstack_dagster.defs.partitions import migration_runs

migrate = dg.define_asset_job(
    "migrate",
    selection=dg.AssetSelection.all(),
    partitions_def=migration_runs,
    description="Everything for one migration run, landing to verification, in FK order; "
    "blocking checks stop it where the data is not ready.",
)
