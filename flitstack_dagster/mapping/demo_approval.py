"""How `flitstack demo` confirms a mapping on the user's behalf — every decision printed.

A real migration lead edits `mapping/approved.yaml`; the demo takes every proposal as proposed: it
confirms each low-confidence one (saying which, with its reason), sends a status still unmapped to
the `On Hold` stage, and makes a pick-list value still unmapped a new option of its own name.
"""

from __future__ import annotations

from flitstack_dagster.mapping.approval import APPROVED_WHAT, approve
from flitstack_dagster.mapping.model import Mapping, StatusTarget
from flitstack_dagster.mapping.store import approved_path, proposed_path
from flitstack_dagster.mapping.yamlio import STATUS_KEY, load_mapping, needs_decision, write_mapping
from flitstack_dagster.core.settings import Paths


def _confirm_low_confidence(m: Mapping) -> list[str]:
    lines: list[str] = []
    for key, props in sorted(m.value_proposals.items()):
        for value, p in sorted(props.items()):
            if needs_decision(m, key, value) is None:
                continue
            p.confirmed = True
            what = f"tenant status '{value}'" if key == STATUS_KEY else f"{key} value '{value}'"
            lines.append(f"{what} -> {p.proposed or '(empty)'} confirmed as proposed "
                         f"(confidence {p.confidence:.2f}: {p.reason})")
    return lines


def approve_for_demo(paths: Paths) -> list[str]:
    proposal = load_mapping(proposed_path(paths))
    m = approve(proposed_path(paths), approved_path(paths), "flitstack demo", proposal.profile_hash)
    lines = [f"approved {approved_path(paths)}"]
    lines += _confirm_low_confidence(m)
    for status, target in sorted(m.status_map.items()):
        if target is None:
            m.status_map[status] = StatusTarget(stage="On Hold")
            lines.append(f"tenant status '{status}' -> stage On Hold")
    for key, vm in sorted(m.value_maps.items()):
        for value, target in sorted(vm.items()):
            if target is None:
                vm[value] = value
                for f in m.fields:
                    if f.transform == f"value_map:{key}" and f.options and value not in f.options:
                        f.options.append(value)
                lines.append(f"{key} value '{value}' -> new option '{value}'")
    write_mapping(approved_path(paths), m, APPROVED_WHAT)
    return lines
