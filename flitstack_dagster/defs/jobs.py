"""Jobs people launch: `migrate` (everything for one migration run) and run registration."""

import dagster as dg

from flitstack_dagster.defs.run_tags import account_run_tags

migrate = dg.define_asset_job(
    "migrate",
    selection=dg.AssetSelection.all(),
    description="Everything for one migration run, landing to verification, in FK order; "
    "blocking checks stop it where the data is not ready.",
    tags=account_run_tags(),  # one load per Pipedrive account at a time (deploy/dagster.yaml)
)
