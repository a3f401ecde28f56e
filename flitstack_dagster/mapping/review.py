"""The mapping as rows a lead reviews: each value with its target, confidence and reason, grouped the
way a lead thinks of them (statuses, priority, request type, department, UDF values, ...), and the
values that still block the load."""

from __future__ import annotations

from typing import Any

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.value_proposals import describe_status
from flitstack_dagster.mapping.yamlio import STATUS_KEY, needs_decision

# value-map key -> the table it is reviewed in; keys not named here go by their kind (UDF or other lists)
TABLES = {
    "work_orders.Priority": "priority",
    "work_orders.Request Type": "request_type",
    "accounts.Department ID": "department",
    "contacts.Department ID": "department",
    "contacts.Role": "contact_role",
    "notes.Entry Type": "activity_type",
}


def table_of(key: str) -> str:
    if key in TABLES:
        return TABLES[key]
    return "udf_values" if ".UDF" in key else "other_values"


# a value with no proposal is a standard one the export does not use: mapped for the deltas that may
NOT_SEEN = "standard value, not in this export: mapped for later deltas"


def _why(m: Mapping, key: str, value: str) -> dict[str, Any]:
    p = m.value_proposals.get(key, {}).get(value)
    return {"confidence": p.confidence if p else None, "reason": p.reason if p else NOT_SEEN,
            "needs_decision": needs_decision(m, key, value) is not None}


def status_rows(m: Mapping) -> list[dict[str, Any]]:
    """Work-order status → stage, deal status and lost reason, with the evidence behind each."""
    return [{"novo_status": s, "stage": t.stage if t else None, "deal_status": t.status if t else None,
             "lost_reason": t.lost_reason if t else None, **_why(m, STATUS_KEY, s)}
            for s, t in m.status_map.items()]


def value_tables(m: Mapping) -> dict[str, list[dict[str, Any]]]:
    """Table name → one row per Novo value: the field, its Pipedrive option ("" = left empty, None =
    unmapped), the decision, confidence and reason."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, vm in m.value_maps.items():
        rows = out.setdefault(table_of(key), [])
        for v, t in vm.items():
            p = m.value_proposals.get(key, {}).get(v)
            rows.append({"field": key, "novo_value": v, "pipedrive_option": t,
                         "decision": p.decision if p else None, **_why(m, key, v)})
    return out


BLOCKING_COLUMNS = ("field", "source_value", "proposed", "confidence", "reason", "blocks")


def blocking_values(m: Mapping, seen: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Every value the lead must still decide — unmapped, or proposed below the confidence threshold and
    unconfirmed — named the way an approval override names it (`field`, `source_value`)."""
    out: list[dict[str, Any]] = []
    targets: dict[str, dict[str, str | None]] = {
        STATUS_KEY: {s: (describe_status(t) if t else None) for s, t in m.status_map.items()}, **m.value_maps}
    for key, vm in targets.items():
        for v, t in vm.items():
            if seen is not None and v not in seen.get(key, {}):
                continue
            p = needs_decision(m, key, v)
            if t is None or p is not None:
                q = m.value_proposals.get(key, {}).get(v)
                out.append({"field": key, "source_value": v, "proposed": q.proposed if q else None,
                            "confidence": q.confidence if q else None, "reason": q.reason if q else "",
                            "blocks": "unmapped: set a target" if t is None else "low confidence: confirm or change"})
    return out


__all__ = ["BLOCKING_COLUMNS", "blocking_values", "status_rows", "table_of", "value_tables"]
