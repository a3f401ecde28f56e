"""One dynamic partition per migration run: the unit of landing, delta and rollback."""

import dagster as dg

migration_runs = dg.DynamicPartitionsDefinition(name="migration_runs")
