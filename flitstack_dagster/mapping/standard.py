"""The spec's standard work-order statuses and pipeline stages: one table the proposal and shaping both read."""

from __future__ import annotations

from flitstack_dagster.mapping.model import StatusTarget

STAGES = ["New", "Open", "Scheduled", "In Progress", "On Hold", "Completed"]
DEFAULT_LOST_REASON = "Cancelled in Novo"
STANDARD_STATUS: dict[str, StatusTarget] = {
    "New": StatusTarget(stage="New"),
    "Open": StatusTarget(stage="Open"),
    "Scheduled": StatusTarget(stage="Scheduled"),
    "In Progress": StatusTarget(stage="In Progress"),
    "On Hold": StatusTarget(stage="On Hold"),
    "Reassigned": StatusTarget(stage="Open"),
    "Completed": StatusTarget(stage="Completed", status="won"),
    "Closed": StatusTarget(stage="Completed", status="won"),
    "Cancelled": StatusTarget(stage="Open", status="lost", lost_reason=DEFAULT_LOST_REASON),
}

__all__ = ["DEFAULT_LOST_REASON", "STAGES", "STANDARD_STATUS"]
