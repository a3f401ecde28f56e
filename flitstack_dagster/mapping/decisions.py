"""The lead's value decisions, given at approval instead of by editing `approved.yaml`.

A decision names a value the way the mapping file does — `field` is the value-map key
(`work_orders.Priority`, `contacts.Department ID`, `work_orders.UDF: Ward`, or `work_orders.Status` for
statuses) and `source_value` the Novo value — and gives its `target`:

* no target: confirm the proposal as proposed (a value marked `# DECIDE`);
* a status: a stage of the pipeline, `Stage (won)` or `Stage (lost)` (as the proposal writes it);
* any other value: the Pipedrive option ("" leaves the field empty); an option the field lacks is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.model import Mapping, StatusTarget
from flitstack_dagster.mapping.standard import DEFAULT_LOST_REASON
from flitstack_dagster.mapping.value_proposals import describe_status
from flitstack_dagster.mapping.yamlio import STATUS_KEY

_CLOSED = re.compile(r"^(?P<stage>.*?)\s*\((?P<status>won|lost)\)$")


@dataclass(frozen=True)
class Override:
    field: str
    source_value: str
    target: str | None = None  # None: confirm the proposal as proposed


def apply_overrides(m: Mapping, overrides: Iterable[Override]) -> None:
    """Apply each decision to `m`; a decision that names nothing in the mapping is refused in one sentence."""
    for o in overrides:
        if o.field == STATUS_KEY:
            _decide_status(m, o)
        else:
            _decide_value(m, o)


def _what(o: Override) -> str:
    return f"work order status '{o.source_value}'" if o.field == STATUS_KEY else f"{o.field} value '{o.source_value}'"


def _confirm(m: Mapping, o: Override, unmapped: bool) -> None:
    p = m.value_proposals.get(o.field, {}).get(o.source_value)
    if o.target is None and (unmapped or p is None):
        raise UserError(f"{_what(o)} has no proposal to confirm: give it a target.")
    if p is not None:
        p.confirmed = True


def _decide_status(m: Mapping, o: Override) -> None:
    if o.source_value not in m.status_map:
        raise UserError(f"{_what(o)} is not in the mapping: use one of {', '.join(sorted(m.status_map))}.")
    current = m.status_map[o.source_value]
    _confirm(m, o, current is None)
    if o.target is None or (current is not None and describe_status(current) == o.target.strip()):
        return  # as proposed: the proposal's own lost reason stays
    closed = _CLOSED.match(o.target.strip())
    stage = (closed["stage"] if closed else o.target).strip()
    if stage not in m.pipeline_stages:
        raise UserError(f"{_what(o)}: '{stage}' is not a stage of the pipeline; use one of "
                        f"{', '.join(m.pipeline_stages)} (add ' (won)' or ' (lost)' to close the deal).")
    status = closed["status"] if closed else "open"
    m.status_map[o.source_value] = StatusTarget(
        stage=stage, status=status, lost_reason=DEFAULT_LOST_REASON if status == "lost" else None)


def _decide_value(m: Mapping, o: Override) -> None:
    vm = m.value_maps.get(o.field)
    if vm is None:
        raise UserError(f"'{o.field}' is not a value list of the mapping: use {STATUS_KEY} or one of "
                        f"{', '.join(sorted(m.value_maps))}.")
    if o.source_value not in vm:
        raise UserError(f"{_what(o)} is not in the mapping: its values are {', '.join(sorted(vm))}.")
    _confirm(m, o, vm[o.source_value] is None)
    if o.target is None:
        return
    vm[o.source_value] = o.target
    for f in m.fields:  # a target the field does not offer yet becomes a new option of it
        if f.transform == f"value_map:{o.field}" and f.options and o.target and o.target not in f.options:
            f.options.append(o.target)


__all__ = ["Override", "apply_overrides"]
