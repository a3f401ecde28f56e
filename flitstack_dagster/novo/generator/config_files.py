"""workflow_rules.json and form_configurations.json: configuration that does not migrate."""

from __future__ import annotations

import random

from flitstack_dagster.novo.generator.udfs import for_entity


def workflow_rules(seed: int, dept_ids: list[str], tech_ids: list[str]) -> list[dict]:
    r = random.Random(f"{seed}:workflow_rules")
    pick = lambda seq: seq[int(r.random() * len(seq))]
    rules = [
        ("Route emergencies to on-call", "Work Order", "On Add",
         [{"field": "Priority", "operator": "equals", "value": "Emergency"}],
         [{"type": "Assign", "contact_id": pick(tech_ids)},
          {"type": "Send Email", "to": "oncall@springfield.gov", "template": "Emergency request"}]),
        ("Water requests to Utilities", "Work Order", "On Add",
         [{"field": "Title", "operator": "contains", "value": "water"}],
         [{"type": "Route To Department", "department_id": pick(dept_ids)}]),
        ("Due in 3 days for High", "Work Order", "On Edit",
         [{"field": "Priority", "operator": "equals", "value": "High"},
          {"field": "Due Date", "operator": "is empty", "value": None}],
         [{"type": "Set Due Date", "days_from_now": 3}]),
        ("Notify requester on completion", "Work Order", "On Status Change",
         [{"field": "Status", "operator": "changed to", "value": "Completed"}],
         [{"type": "Send Email", "to": "{Requester.Email}", "template": "Your request is complete"}]),
        ("Close completed after 14 days", "Work Order", "Timer",
         [{"field": "Status", "operator": "equals", "value": "Completed"},
          {"field": "Date Completed", "operator": "older than days", "value": 14}],
         [{"type": "Set Status", "status": "Closed"}]),
        ("Awaiting parts reminder", "Work Order", "Timer",
         [{"field": "Status", "operator": "equals", "value": "Awaiting Parts"}],
         [{"type": "Send Email", "to": "purchasing@springfield.gov", "template": "Parts still pending"}]),
        ("Retired assets: cancel PMs", "Asset", "On Edit",
         [{"field": "Status", "operator": "changed to", "value": "Retired"}],
         [{"type": "Send Email", "to": "pm-admin@springfield.gov", "template": "Deactivate PMs"}]),
        ("Reassign on hold > 30 days", "Work Order", "On Status Change",
         [{"field": "Status", "operator": "changed to", "value": "On Hold"}],
         [{"type": "Assign", "contact_id": pick(tech_ids)}, {"type": "Set Status", "status": "Reassigned"}]),
        ("Fleet vehicles to Fleet", "Work Order", "On Add",
         [{"field": "Asset.Asset Class", "operator": "equals", "value": "Vehicle"}],
         [{"type": "Route To Department", "department_id": pick(dept_ids)}]),
    ]
    return [{"rule_id": f"WR-{i:03d}", "name": name, "entity": entity, "trigger": trigger, "conditions": cond,
             "actions": actions, "enabled": r.random() < 0.85}
            for i, (name, entity, trigger, cond, actions) in enumerate(rules, 1)]


def form_configurations(seed: int) -> list[dict]:
    r = random.Random(f"{seed}:forms")
    std = [("Title", "Title", True), ("Description", "Description", False), ("Priority", "Priority", False),
           ("Location / Asset", "Asset ID", False), ("Your email", "Requester ID", True)]
    forms = []
    for i, (name, entity, extra) in enumerate((
            ("Citizen service request", "Work Order", for_entity("Work Order")[:2]),
            ("Internal facilities request", "Work Order", for_entity("Work Order")[5:8]),
            ("Fleet repair request", "Work Order", ()),
            ("New asset intake", "Asset", for_entity("Asset")[:4])), 1):
        fields = [{"label": lbl, "column": col, "required": req,
                   "visible_to": ["Public"] if "Citizen" in name else ["Staff", "Technician"]}
                  for lbl, col, req in (std if entity == "Work Order" else
                                        [("Asset Name", "Asset Name", True), ("Class", "Asset Class", True)])]
        fields += [{"label": u.label, "column": u.column, "required": u.required, "visible_to": ["Staff"]}
                   for u in extra]
        forms.append({"form_id": f"FORM-{i:02d}", "name": name, "entity": entity, "fields": fields,
                      "enabled": r.random() < 0.9})
    return forms
