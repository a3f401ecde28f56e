"""The staged tables as Polars frames: defined in staging (the mapping stage reads them too), named
here for the shaping modules that read them."""

from flitstack_dagster.staging.frames import (
    JSON_ENTITIES, QUARANTINE_SCHEMA, StagedInputs, normalise, read_staged, staged_schema)

__all__ = ["JSON_ENTITIES", "QUARANTINE_SCHEMA", "StagedInputs", "normalise", "read_staged", "staged_schema"]
