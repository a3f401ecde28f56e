"""Shaping: staged Novo rows -> Pipedrive-shaped records (pd_* frames), pure Polars, no Dagster.

Entry point: `shape_all(inputs, mapping, owners, ctx) -> ShapedRun` (run.py); gates: checks.py.
"""

from flitstack_dagster.shaping.common import Owners, ShapeContext
from flitstack_dagster.staging.frames import StagedInputs, read_staged
from flitstack_dagster.shaping.run import OUTPUTS, ShapedRun, shape_all

__all__ = ["OUTPUTS", "Owners", "ShapeContext", "ShapedRun", "StagedInputs", "read_staged", "shape_all"]
