"""Where the project keeps its state: one data folder, overridable with FLITSTACK_DATA_DIR.

Everything the product writes (DuckDB file, reports, run work folders, the sandbox state, the export
drop folder) lives under it, so "nothing written outside the data folder" is one rule to check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def duckdb(self) -> Path:
        return self.root / "flitstack.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def sandbox_state(self) -> Path:
        return self.root / "sandbox" / "state.sqlite"

    def ensure(self) -> "Paths":
        for p in (self.root, self.reports, self.work, self.drop, self.exports):
            p.mkdir(parents=True, exist_ok=True)
        return self


def data_paths() -> Paths:
    return Paths(Path(os.environ.get("FLITSTACK_DATA_DIR", "data")).resolve())
