"""Jobs people launch: `migrate` (everything for one migration run) and run registration."""

import dagster as dg


migrate = dg.define_asset_job(
    "migrate",
    selection=dg.AssetSelection.all(),
    description="Everything for one migration run, landing to verification, in FK order; "
    "blocking checks stop it where the data is not ready.",
)
