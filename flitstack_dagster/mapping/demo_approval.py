"""How `flitstack demo` confirms a mapping on the user's behalf — every decision printed.

A real migration lead decides each value that blocks the load (in the `approve_mapping` job, with
`flitstack mapping approve`, or by editing `mapping/approved.yaml`); the demo decides them the same way,
through the one approval function: it confirms each low-confidence proposal as proposed, sends a status
still unmapped to the `On Hold` stage, and makes a pick-list value still unmapped a new option of its own
name.
"""

from __future__ import annotations

from typing import Any

from flitstack_dagster.core.settings import Paths
from flitstack_dagster.mapping.approval import approve_proposed, merge
from flitstack_dagster.mapping.decisions import Override
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.review import blocking_values
from flitstack_dagster.mapping.store import approved_path, proposed_path
from flitstack_dagster.mapping.yamlio import STATUS_KEY, load_mapping

DEMO_APPROVER = "flitstack demo"
UNMAPPED_STATUS_STAGE = "On Hold"


def _what(field: str, value: str) -> str:
    return f"tenant status '{value}'" if field == STATUS_KEY else f"{field} value '{value}'"


def _unmapped(m: Mapping, field: str, value: str) -> bool:
    targets = m.status_map if field == STATUS_KEY else m.value_maps.get(field, {})
    return targets.get(value) is None


def demo_decision(m: Mapping, row: dict[str, Any]) -> tuple[Override, str]:
    """The demo's decision for one blocking value, and the line that tells the user about it."""
    field, value = row["field"], row["source_value"]
    if not _unmapped(m, field, value):
        return Override(field, value), (f"{_what(field, value)} -> {row['proposed'] or '(empty)'} confirmed as "
                                        f"proposed (confidence {row['confidence']:.2f})")
    if field == STATUS_KEY:
        return Override(field, value, UNMAPPED_STATUS_STAGE), f"{_what(field, value)} -> stage {UNMAPPED_STATUS_STAGE}"
    return Override(field, value, value), f"{_what(field, value)} -> new option '{value}'"


def approve_for_demo(paths: Paths) -> list[str]:
    """Approve the proposal as "flitstack demo" with a decision for every value that blocks; one line each
    (the reason behind each proposal stays in the approved file)."""
    proposal = load_mapping(proposed_path(paths))
    ap = approved_path(paths)
    current = merge(load_mapping(ap), proposal) if ap.exists() else proposal
    decided = [demo_decision(current, row) for row in blocking_values(current)]
    approve_proposed(proposed_path(paths), ap, DEMO_APPROVER, overrides=[o for o, _ in decided],
                     proposal_hash=proposal.content_hash())
    return [f"approved {ap}", *(line for _, line in decided)]
