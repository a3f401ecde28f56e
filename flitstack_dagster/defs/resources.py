"""Resources: the project's DuckDB file and its data folder, both under FLITSTACK_DATA_DIR."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from flitstack_dagster.core.settings import Paths, data_paths


class ProjectDuckDB(DuckDBResource):
    """DuckDBResource whose connection is closed even when the step raises: left open until garbage
    collection, it would refuse the next read-only connection to the same file in this process."""

    @contextmanager
    def get_connection(self) -> Iterator:
        with super().get_connection() as con:
            try:
                yield con
            finally:
                con.close()


class ProjectPaths(dg.ConfigurableResource):
    """Where reports, run work folders and the export drop folder live."""

    data_dir: str

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.data_dir)).ensure()


def build_resources(data_dir: Path | None = None) -> dict[str, object]:
    paths = Paths(data_dir.resolve()) if data_dir else data_paths()
    paths.ensure()
    return {
        "duckdb": ProjectDuckDB(database=str(paths.duckdb)),
        "project": ProjectPaths(data_dir=str(paths.root)),
    }
