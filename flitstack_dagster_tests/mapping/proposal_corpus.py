"""A labelled corpus for the value proposals: generated tenants whose statuses, priorities, list
values, request types and activity-log entry types have known right answers — abbreviations, other
languages' words and misleading names.

Each tenant is staged in DuckDB (work orders with or without completion dates, status logs that
behave like the status: closed, waiting, moving on, re-entered), profiled and proposed exactly as a
run does; `score()` compares the proposal with the labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb

from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.value_proposals import CONFIDENT, describe_status
from flitstack_dagster_tests.mapping.conftest import stage

WON, LOST = "Completed (won)", "Open (lost)"
# how a status's work orders behave -> (has a completion date, path of statuses before it, moves on after it)
BEHAVIOUR: dict[str, tuple[bool, list[str], list[str]]] = {
    "won": (True, ["New", "Open", "In Progress"], []),
    "lost": (False, ["New"], []),
    "hold": (False, ["New", "Open", "In Progress"], []),
    "progress": (False, ["New", "Open"], ["Completed"]),
    "new": (False, [], []),
    "open": (False, ["New"], ["In Progress"]),
    "scheduled": (False, ["New", "Open"], []),
    "reopened": (False, ["New", "Open", "In Progress", "Completed"], ["In Progress"]),
}
CLOSED_BEHAVIOUR = {"won", "lost"}


@dataclass
class Tenant:
    name: str
    statuses: list[tuple[str, str, str]]  # (value, behaviour, right target as `describe_status` says it)
    priorities: list[tuple[str, str]] = field(default_factory=list)  # (value, right option)
    districts: list[tuple[str, str]] = field(default_factory=list)  # pick list North|South|East|West
    roles: list[tuple[str, str]] = field(default_factory=list)
    request_types: list[tuple[str, str]] = field(default_factory=list)  # (value, right option)
    entry_types: list[tuple[str, str]] = field(default_factory=list)  # (value, right activity type; "" = a note)


TENANTS = [
    Tenant("abbreviations", [
        ("Comp.", "won", WON), ("Re-opened", "reopened", "Open"), ("WIP", "progress", "In Progress"),
        ("Canc", "lost", LOST), ("Awaiting Parts", "hold", "On Hold"), ("Pending Approval", "hold", "On Hold"),
        ("Sched.", "scheduled", "Scheduled"), ("Done", "won", WON), ("Parked", "hold", "On Hold"),
        ("Dispatched", "progress", "In Progress"), ("Void", "lost", LOST), ("Submitted", "new", "New"),
        ("Cmpl", "won", WON), ("IN-PROGRESS", "progress", "In Progress"), ("On-Hold", "hold", "On Hold"),
    ], priorities=[("Urgent", "Emergency"), ("Crit.", "Emergency"), ("Hi", "High"), ("Med", "Medium"),
                   ("Lo", "Low"), ("P1", "Emergency"), ("P3", "Medium")],
        districts=[("Downtown", "Downtown"), ("Est", "East"), ("north", "North"), ("Sth", "South"), ("Wst", "West")],
        roles=[("Tech", "Technician"), ("Requestor", "Requester")],
        request_types=[("Corr.", "Corrective"), ("PM", "Preventive"), ("SR", "Service Request"), ("Insp", "Inspection"),
                       ("Prev Maint", "Preventive")],
        entry_types=[("Tel", "Call"), ("E-mail", "Email"), ("Mtg", "Meeting"), ("Note", ""), ("SMS", "")]),
    Tenant("languages", [
        ("Terminé", "won", WON), ("Abgeschlossen", "won", WON), ("En espera", "hold", "On Hold"),
        ("En cours", "progress", "In Progress"), ("Annulé", "lost", LOST), ("Nouveau", "new", "New"),
        ("Planifié", "scheduled", "Scheduled"), ("Rouvert", "reopened", "Open"), ("Erledigt", "won", WON),
        ("In Bearbeitung", "progress", "In Progress"), ("Storniert", "lost", LOST), ("Cerrado", "won", WON),
        ("Pendiente", "hold", "On Hold"), ("Abierto", "open", "Open"), ("In attesa", "hold", "On Hold"),
    ], priorities=[("Hoch", "High"), ("Niedrig", "Low"), ("Baja", "Low"), ("Alta", "High"), ("Urgente", "Emergency"),
                   ("Mittel", "Medium"), ("Dringend", "Emergency")],
        districts=[("Nord", "North"), ("Ouest", "West"), ("Centre-Ville", "Centre-Ville")],
        roles=[("Techniker", "Technician"), ("Demandeur", "Requester")],
        request_types=[("Reparatur", "Corrective"), ("Wartung", "Preventive"), ("Demande", "Service Request"),
                       ("Inspección", "Inspection"), ("Correctif", "Corrective")],
        entry_types=[("Anruf", "Call"), ("Appel", "Call"), ("Courriel", "Email"), ("Besuch", "Meeting"), ("Notiz", ""),
                     ("Llamada", "Call")]),
    Tenant("misleading", [
        ("Closed for Review", "hold", "On Hold"), ("Finished Parts Order", "progress", "In Progress"),
        ("Open - Invoiced", "won", WON), ("Ready", "won", WON), ("Stage 4", "new", "New"),
        ("Review", "hold", "On Hold"), ("Cancelled - Rebooked", "progress", "In Progress"),
        ("Done Pending QA", "hold", "On Hold"), ("Completed - Awaiting Invoice", "won", WON),
        ("Back to Tech", "reopened", "Open"), ("Resolved", "won", WON), ("Rejected", "lost", LOST),
    ], priorities=[("Normal", "Medium"), ("Routine", "Low"), ("Critical", "Emergency"), ("High ", "High")],
        districts=[("Southh", "South"), ("Harbour", "Harbour")],
        roles=[("Engineer", "Technician"), ("Customer", "Requester")],
        request_types=[("Inspection Request", "Inspection"), ("Breakdown", "Corrective"), ("Planned", "Preventive")],
        entry_types=[("Call Note", ""), ("Email Log", "Email"), ("Phone", "Call")]),
    Tenant("plain", [
        ("Wait Parts", "hold", "On Hold"), ("Waiting on Vendor", "hold", "On Hold"), ("Declined", "lost", LOST),
        ("Duplicate", "lost", LOST), ("Assigned", "open", "Open"), ("Acknowledged", "open", "Open"),
        ("Scheduled Visit", "scheduled", "Scheduled"), ("Fixed", "won", WON), ("Backordered", "hold", "On Hold"),
        ("Complete", "won", WON),
    ], priorities=[("Emergency", "Emergency"), ("low", "Low"), ("P2", "High")],
        districts=[("West", "West"), ("EAST", "East")],
        request_types=[("Repair", "Corrective"), ("Preventative", "Preventive"), ("Service", "Service Request"),
                       ("Inspection", "Inspection"), ("Graffiti", "Graffiti")],
        entry_types=[("Phone Call", "Call"), ("Email", "Email"), ("Site Visit", "Meeting"), ("Fax", ""), ("Comment", "")]),
]
PER_STATUS = 6
T0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)


@dataclass
class Outcome:
    tenant: str
    kind: str  # status | priority | district | role | request (work-order type) | entry (activity type)
    value: str
    expected: str
    proposed: str
    confidence: float
    reason: str
    open_work_orders: bool = False  # statuses only: its work orders are not closed

    @property
    def right(self) -> bool:
        return self.expected == self.proposed

    @property
    def closed_for_open(self) -> bool:
        """A won/lost target proposed with confidence for work orders that are still open."""
        return self.open_work_orders and self.proposed in (WON, LOST) and self.confidence >= CONFIDENT


def _stage_tenant(con, t: Tenant) -> None:
    stage(con, "user_defined_fields", [{"entity": "Work Order", "label": "Council District",
                                        "column": "UDF: Council District", "data_type": "Pick List",
                                        "choices": "North|South|East|West"}])
    wos, logs = [], []
    extras = [p for p, _ in t.priorities] + [d for d, _ in t.districts]
    for si, (value, behaviour, _) in enumerate(t.statuses):
        done, before, after = BEHAVIOUR[behaviour]
        for k in range(PER_STATUS):
            wo = f"WO-{si:02d}{k}"
            at = T0 + timedelta(days=si, hours=k)
            moved_on = after and k % 2 == 0  # half its work orders go on to another status
            path = [*before, value, *(after if moved_on else [])]
            for i, s in enumerate(path):
                logs.append({"log_id": f"L-{wo}-{i}", "wo_number": wo, "from_status": path[i - 1] if i else None,
                             "to_status": s, "changed_at": at + timedelta(hours=6 * i)})
            current = path[-1]
            completed = done or current == "Completed"
            wos.append({"wo_number": wo, "title": "job", "status": current,
                        "priority": extras[(si + k) % len(extras)] if extras and k == 0 else "Low",
                        "date_completed": at + timedelta(days=1) if completed else None,
                        "udf_council_district": t.districts[(si + k) % len(t.districts)][0] if t.districts else None})
    for p, _ in t.priorities:  # every priority and district at least once
        wos.append({"wo_number": f"WO-P-{p}", "title": "p", "status": "Open", "priority": p})
    for d, _ in t.districts:
        wos.append({"wo_number": f"WO-D-{d}", "title": "d", "status": "Open", "udf_council_district": d})
    for r, _ in t.request_types:
        wos.append({"wo_number": f"WO-R-{r}", "title": "r", "status": "Open", "request_type": r})
    stage(con, "notes", [{"note_id": f"N{i}", "wo_number": "WO-000", "entry_type": e}
                         for i, (e, _) in enumerate(t.entry_types)])
    stage(con, "work_orders", wos, extra={"udf_council_district": "VARCHAR"})
    stage(con, "status_log", logs)
    stage(con, "contacts", [{"contact_id": f"C{i}", "first_name": "A", "last_name": r, "role": r}
                            for i, (r, _) in enumerate(t.roles)] or [{"contact_id": "C0", "first_name": "A",
                                                                      "role": "Technician"}])


def run_tenant(t: Tenant) -> list[Outcome]:
    con = duckdb.connect()
    try:
        _stage_tenant(con, t)
        m = propose_mapping(profile_source(con, "full-1"))
    finally:
        con.close()
    out: list[Outcome] = []
    props = m.value_proposals
    for value, behaviour, expected in t.statuses:
        p = props["work_orders.Status"][value]
        out.append(Outcome(t.name, "status", value, expected, describe_status(m.status_map[value]), p.confidence,
                           p.reason, open_work_orders=behaviour not in CLOSED_BEHAVIOUR))
    for kind, key, pairs in (("priority", "work_orders.Priority", t.priorities),
                             ("district", "work_orders.UDF: Council District", t.districts),
                             ("role", "contacts.Role", t.roles),
                             ("request", "work_orders.Request Type", t.request_types),
                             ("entry", "notes.Entry Type", t.entry_types)):
        for value, expected in pairs:
            v = value.strip()
            p = props[key][v]
            out.append(Outcome(t.name, kind, value, expected, m.value_maps[key][v] or "", p.confidence, p.reason))
    return out


def score() -> list[Outcome]:
    return [o for t in TENANTS for o in run_tenant(t)]


__all__ = ["TENANTS", "Outcome", "run_tenant", "score"]
