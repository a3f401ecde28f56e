"""The rebuild reference: what does not migrate (workflow rules, routing, PM recurrence, forms,
inventory management), each with its original definition and the Pipedrive pattern that replaces it.

Pipedrive's workflow automations react to record events (created / updated / field changed) with
conditions and actions; schedules, date arithmetic and mail to addresses outside Pipedrive need
Zapier or Make. Read from the staged bundle (`staging.stg_workflow_rules`, `stg_form_configurations`,
`stg_pm_schedules`, `stg_inventory`), so it lists exactly what the export held.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.mapping.model import StatusTarget
from flitstack_dagster.mapping.standard import STANDARD_STATUS
from flitstack_dagster.core.safe_text import cut, md_json_block, md_text
from flitstack_dagster.shaping.recurrence import RecurrenceError, parse_recurrence

PIPEDRIVE = "Pipedrive workflow automation"
ZAP = "Zapier / Make"

# Novo entity -> Pipedrive object and its automation trigger names
OBJECT = {"Work Order": "Deal", "Asset": "Organization", "Account": "Organization", "Contact": "Person"}
TRIGGER = {"On Add": "{obj} created", "On Edit": "{obj} updated", "On Status Change": "{obj} updated"}
# Novo field -> where the default mapping puts it in Pipedrive
FIELD = {
    "Priority": "deal field Novo_Priority__c", "Status": "deal stage / status", "Title": "deal title",
    "Due Date": "deal field Due Date", "Date Completed": "deal field Date Completed (won time)",
    "Description": "deal field Description", "Asset ID": "deal field Asset (organization)",
    "Requester ID": "the deal's person (requester)", "Asset.Asset Class": "Asset_Type__c of the deal's Asset organization",
    "Asset Name": "organization name", "Asset Class": "organization field Asset_Type__c",
    "Requester.Email": "the email of the deal's person",
}
OPERATOR = {"equals": "is", "contains": "contains", "is empty": "is empty", "changed to": "has changed to",
            "older than days": "is older than (days)"}


def _describe(target: StatusTarget) -> str:
    text = f"stage {target.stage}" + ("" if target.status == "open" else f", status {target.status}")
    return text + (f" (reason '{target.lost_reason}')" if target.lost_reason else "")


# Novo status -> deal stage / status (the default status map; the approved mapping may differ)
STATUS = {status: _describe(target) for status, target in STANDARD_STATUS.items()}
ROUTING_ACTIONS = {"Assign", "Route To Department"}
ORIGINAL_VALUE_LIMIT = 1000  # characters of one source value the Markdown shows


@dataclass
class Pattern:
    tool: str  # PIPEDRIVE or ZAP
    trigger: str
    conditions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RebuildItem:
    kind: str  # workflow_rule | routing_rule | pm_recurrence | form
    id: str
    name: str
    entity: str
    enabled: bool | None
    original: dict[str, Any]
    pattern: Pattern
    recurrence: dict[str, Any] | None = None  # PM recurrences: trigger, frequency, interval, rrule, ...


@dataclass
class RebuildReference:
    run_key: str
    items: list[RebuildItem]
    inventory: dict[str, Any]

    def of(self, kind: str) -> list[RebuildItem]:
        return [i for i in self.items if i.kind == kind]

    def summary(self) -> list[dict[str, Any]]:
        """What does not migrate, how many, and what to rebuild it in."""
        rows = []
        for kind, label in (("workflow_rule", "Workflow rules"), ("routing_rule", "Routing rules"),
                            ("pm_recurrence", "PM recurrences"), ("form", "Request forms")):
            items = self.of(kind)
            tools = sorted({i.pattern.tool for i in items})
            rows.append({"what": label, "count": len(items), "enabled": sum(1 for i in items if i.enabled),
                         "rebuild_in": " + ".join(tools) or "-"})
        rows.append({"what": "Inventory management", "count": self.inventory.get("parts", 0),
                     "enabled": None, "rebuild_in": self.inventory.get("rebuild_in", "-")})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"run_key": self.run_key, "summary": self.summary(), "inventory": self.inventory,
                "items": [asdict(i) for i in self.items]}

    def to_markdown(self) -> str:
        return render_markdown(self)


def build_rebuild_reference(con: duckdb.DuckDBPyConnection, run_key: str) -> RebuildReference:
    names = _names(con, run_key)
    items: list[RebuildItem] = []
    for row in _rows(con, "stg_workflow_rules", run_key,
                     "rule_id, name, entity, trigger, conditions, actions, enabled, json"):
        items.append(_rule_item(row, names))
    for row in _rows(con, "stg_pm_schedules", run_key,
                     "pm_id, pm_name, asset_id, trigger, frequency, every, recurrence_rule, meter_name, "
                     "meter_interval, last_meter_reading, start_date, end_date, next_due, assigned_to_id, "
                     "estimated_hours, procedure, active"):
        items.append(_pm_item(row, names))
    for row in _rows(con, "stg_form_configurations", run_key, "form_id, name, entity, fields, enabled, json"):
        items.append(_form_item(row))
    return RebuildReference(run_key, items, _inventory(con, run_key))


# -- reading ------------------------------------------------------------------------------------------


def _rows(con: duckdb.DuckDBPyConnection, table: str, run_key: str, cols: str) -> list[dict[str, Any]]:
    if not has_table(con, "staging", table):
        return []
    cur = con.execute(f"SELECT {cols} FROM staging.{table} WHERE _run_key = ? ORDER BY _row_number", [run_key])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _names(con: duckdb.DuckDBPyConnection, run_key: str) -> dict[str, str]:
    """contact:<id>, department:<id>, asset:<id> -> a readable name."""
    out: dict[str, str] = {}
    for table, key, expr in (("stg_contacts", "contact", "trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"),
                             ("stg_departments", "department", "department_name"),
                             ("stg_assets", "asset", "asset_name")):
        if has_table(con, "staging", table):
            idcol = {"contact": "contact_id", "department": "department_id", "asset": "asset_id"}[key]
            for i, n in con.execute(f"SELECT {idcol}, {expr} FROM staging.{table} WHERE _run_key = ?", [run_key]).fetchall():
                out[f"{key}:{i}"] = n or str(i)
    return out


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


# -- workflow and routing rules ----------------------------------------------------------------------


def _rule_item(row: dict[str, Any], names: dict[str, str]) -> RebuildItem:
    conditions = _json(row["conditions"]) or []
    actions = _json(row["actions"]) or []
    obj = OBJECT.get(row["entity"] or "", row["entity"] or "record")
    trig = row["trigger"] or ""
    zap_reasons: list[str] = []
    if trig == "Timer":
        trigger = f"Schedule (Zapier 'Schedule by Zapier' / Make 'Scheduler', daily) → Pipedrive 'Find {obj.lower()}s' by filter"
        zap_reasons.append("Pipedrive automations start on record events, not on a timer")
    else:
        trigger = TRIGGER.get(trig, "{obj} updated").format(obj=obj)
    conds = []
    for c in conditions if isinstance(conditions, list) else []:
        fld, op, val = c.get("field"), c.get("operator"), c.get("value")
        target = FIELD.get(fld, f"field '{fld}'") if obj == "Deal" else f"{obj.lower()} field '{fld}'"
        text = f"{target} {OPERATOR.get(op, op)}" + ("" if val is None else f" '{val}'")
        if obj == "Deal" and fld == "Status" and val in STATUS:
            text += f" (Pipedrive: {STATUS[val]})"
        if op == "older than days":
            zap_reasons.append("date arithmetic in a condition needs a Zapier/Make filter")
        conds.append(text)
    acts = []
    for a in actions if isinstance(actions, list) else []:
        text, needs_zap = _action(a, obj, names)
        acts.append(text)
        if needs_zap:
            zap_reasons.append(needs_zap)
    kind = "routing_rule" if any(a.get("type") in ROUTING_ACTIONS for a in actions if isinstance(a, dict)) else "workflow_rule"
    pattern = Pattern(ZAP if zap_reasons else PIPEDRIVE, trigger, conds, acts, sorted(set(zap_reasons)))
    original = {k: _json(row[k]) for k in ("rule_id", "name", "entity", "trigger", "conditions", "actions", "enabled")}
    return RebuildItem(kind, row["rule_id"], row["name"] or "", row["entity"] or "", row["enabled"], original, pattern)


def _action(a: dict[str, Any], obj: str, names: dict[str, str]) -> tuple[str, str | None]:
    t = a.get("type")
    if t == "Assign":
        who = names.get(f"contact:{a.get('contact_id')}", a.get("contact_id"))
        return f"Update {obj.lower()} field Owner = the Pipedrive user matched to {who} ({a.get('contact_id')}; see owners.json)", None
    if t == "Route To Department":
        dept = names.get(f"department:{a.get('department_id')}", a.get("department_id"))
        return ((f"Update {obj.lower()} field Owner = the lead user of {dept} (Pipedrive has no departments; "
                "use a team / visibility group for the department)"), None)
    if t == "Set Status":
        st = a.get("status")
        return f"Update {obj.lower()}: {STATUS.get(st, f'stage {st}')} (Novo status '{st}')", None
    if t == "Set Due Date":
        n = a.get("days_from_now")
        return ((f"Create activity 'Due' with due date {n} days after the trigger (or Zapier/Make Formatter: "
                f"today + {n} days → deal field Due Date)"), None)
    if t == "Send Email":
        to, tpl = a.get("to"), a.get("template")
        if isinstance(to, str) and to.startswith("{"):
            return f"Send email from template '{tpl}' to {FIELD.get(to.strip('{}'), to)} (needs Email Sync)", None
        return ((f"Send email from template '{tpl}' to {to} (an address outside Pipedrive: Zapier/Make "
                "Gmail/Outlook 'Send email')"), "mail to a fixed address outside Pipedrive")
    return f"{t}: {json.dumps({k: v for k, v in a.items() if k != 'type'}, sort_keys=True)} (rebuild by hand)", None


# -- PM recurrences ------------------------------------------------------------------------------------


def structured_recurrence(row: dict[str, Any]) -> dict[str, Any]:
    """trigger, frequency, interval, RRULE (plus meter rule) of one PM schedule, as plain values."""
    trigger = row.get("trigger") or "Date"
    out: dict[str, Any] = {"trigger": trigger, "frequency": row.get("frequency"), "interval": _int(row.get("every")),
                           "rrule": None, "source_text": row.get("recurrence_rule"), "style": None, "problem": None}
    if trigger == "Meter":
        out.update({"meter": row.get("meter_name"), "meter_interval": row.get("meter_interval"),
                    "last_meter_reading": row.get("last_meter_reading"), "style": "meter"})
        return out
    try:
        rec = parse_recurrence(row.get("recurrence_rule"), row.get("frequency"), row.get("every"))
    except RecurrenceError as e:
        out["problem"] = str(e)
        return out
    parts = dict(p.split("=", 1) for p in rec.rrule.split(";") if "=" in p)
    out.update({"rrule": rec.rrule, "style": rec.style, "source_text": rec.source_text,
                "frequency": parts.get("FREQ", "").capitalize() or out["frequency"],
                "interval": int(parts.get("INTERVAL", 1))})
    if "BYDAY" in parts:
        out["by_day"] = parts["BYDAY"]
    if "BYMONTHDAY" in parts:
        out["by_month_day"] = parts["BYMONTHDAY"]
    return out


def _pm_item(row: dict[str, Any], names: dict[str, str]) -> RebuildItem:
    rec = structured_recurrence(row)
    asset = names.get(f"asset:{row.get('asset_id')}", row.get("asset_id") or "no asset")
    who = names.get(f"contact:{row.get('assigned_to_id')}", row.get("assigned_to_id"))
    create = (f"Pipedrive 'Create activity': type Task, subject 'PM: {row['pm_name']}', organization = {asset}"
              + (f", owner = the user matched to {who}" if who else "") + ", note = the procedure steps")
    if rec["trigger"] == "Meter":
        trigger = f"a new {rec.get('meter') or 'meter'} reading (webhook or a Google Sheet row)"
        conds = [f"reading ≥ last due reading + {rec.get('meter_interval') or '?'} {rec.get('meter') or ''}".strip()]
        notes = ["Pipedrive has no meters; the migration created one activity for the next due date"]
    else:
        when = rec["rrule"] or f"(unreadable: {rec['problem']})"
        trigger = f"Schedule following RRULE {when} (Make 'Scheduler' / Zapier 'Schedule' + Filter)"
        conds = [f"between {row.get('start_date') or 'start'} and {row.get('end_date') or 'no end date'}"]
        notes = [("Pipedrive activities do not recur; the migration created one task per occurrence inside the "
                 "migration window — rebuild the live schedule so tasks keep coming")]
    if row.get("active") is False:
        notes.append("inactive in Novo: rebuild only if it should run again")
    original = {k: (str(v) if v is not None and not isinstance(v, (int, float, bool, str)) else v)
                for k, v in row.items()}
    return RebuildItem("pm_recurrence", row["pm_id"], row["pm_name"] or "", "PM Schedule", row.get("active"),
                       original, Pattern(ZAP, trigger, conds, [create], notes), rec)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


# -- forms ---------------------------------------------------------------------------------------------


def _form_item(row: dict[str, Any]) -> RebuildItem:
    fields = _json(row["fields"]) or []
    obj = OBJECT.get(row["entity"] or "", "Deal")
    public = any("Public" in (f.get("visible_to") or []) for f in fields if isinstance(f, dict))
    acts = []
    for f in fields if isinstance(fields, list) else []:
        col = f.get("column") or ""
        target = FIELD.get(col) or (f"custom field '{col[5:]}'" if col.startswith("UDF: ") else f"field '{col}'")
        acts.append(f"'{f.get('label')}' → {target}" + (" (required)" if f.get("required") else ""))
    trigger = (f"Pipedrive Web Form (embedded on the website) creating a {obj.lower()}" if public
               else f"Pipedrive Web Form for staff creating a {obj.lower()} (or Google Forms/Typeform → Zapier/Make → Create {obj.lower()})")
    notes = ["Web Forms create a lead or deal with the mapped fields; a staff-only field is filled by staff after intake"
             if public else "restrict the form link to staff"]
    original = {k: _json(row[k]) for k in ("form_id", "name", "entity", "fields", "enabled")}
    return RebuildItem("form", row["form_id"], row["name"] or "", row["entity"] or "", row["enabled"], original,
                       Pattern(PIPEDRIVE, trigger, [], acts, notes))


# -- inventory -----------------------------------------------------------------------------------------


def _inventory(con: duckdb.DuckDBPyConnection, run_key: str) -> dict[str, Any]:
    base = {"parts": 0, "rebuild_in": "an inventory tool (e.g. Zoho Inventory, Sortly) linked by Zapier/Make; "
            "part prices can become Pipedrive Products"}
    if not has_table(con, "staging", "stg_inventory"):
        return base
    parts, cats, value, low, rooms = con.execute(
        "SELECT count(*), count(DISTINCT category), coalesce(sum(unit_cost * qty_on_hand), 0), "
        "count(*) FILTER (WHERE qty_on_hand <= reorder_point), count(DISTINCT storeroom_asset_id) "
        "FROM staging.stg_inventory WHERE _run_key = ?", [run_key]).fetchall()[0]
    return {**base, "parts": parts, "categories": cats, "value_on_hand": round(float(value), 2),
            "at_or_below_reorder_point": low, "storerooms": rooms,
            "migrated_as": "a parts table note and the custom field Parts on each equipment organization"}


# -- markdown ------------------------------------------------------------------------------------------


def render_markdown(ref: RebuildReference) -> str:
    """The reference as Markdown; source text is shown as typed and long values are cut (the JSON file
    beside it, rebuild_reference.json, holds them whole)."""
    out = [f"# Rebuild reference — {_md(ref.run_key)}", "",
           "What does not migrate to Pipedrive, its original definition, and the pattern that replaces it. "
           "Long values are cut here; rebuild_reference.json holds them whole.", "",
           "## Inventory summary", "", "| what | count | enabled | rebuild in |", "|---|---|---|---|"]
    for r in ref.summary():
        out.append(f"| {_md(r['what'])} | {r['count']} | {'' if r['enabled'] is None else r['enabled']} | {_md(r['rebuild_in'])} |")
    inv = ref.inventory
    if inv.get("parts"):
        out += ["", (f"Inventory: {inv['parts']} parts in {inv.get('categories', 0)} categories, "
                f"{inv.get('value_on_hand', 0):,.2f} on hand, {inv.get('at_or_below_reorder_point', 0)} at or below "
                f"their reorder point, {inv.get('storerooms', 0)} storerooms. Migrated as {inv.get('migrated_as')}; "
                f"rebuild inventory management in {inv['rebuild_in']}.")]
    sections = (("workflow_rule", "Workflow rules"), ("routing_rule", "Routing rules"),
                ("pm_recurrence", "PM recurrences"), ("form", "Request forms"))
    for kind, title in sections:
        items = ref.of(kind)
        out += ["", f"## {title} ({len(items)})"]
        if not items:
            out += ["", "_none in this export_"]
        for i in items:
            out += ["", f"### {_md(i.id)} — {_md(i.name)}", "",
                    f"- Novo: {_md(i.entity)}, {'enabled' if i.enabled else 'disabled' if i.enabled is False else 'enabled: unknown'}"]
            if i.recurrence:
                r = i.recurrence
                out.append(f"- Recurrence: trigger {_md(r['trigger'])}, frequency {_md(r.get('frequency') or '-')}, "
                           f"interval {_md(r.get('interval') or '-')}, RRULE {_md(r.get('rrule') or '-')}"
                           + (f", meter {_md(r.get('meter'))} every {_md(r.get('meter_interval'))}"
                              if r['trigger'] == "Meter" else "")
                           + (f" (from '{_md(r['source_text'])}')" if r.get("source_text") else "")
                           + (f" — {_md(r['problem'])}" if r.get("problem") else ""))
            p = i.pattern
            out.append(f"- Rebuild in: **{p.tool}**")
            out.append(f"  - Trigger: {_md(p.trigger)}")
            out += [f"  - Condition: {_md(c)}" for c in p.conditions]
            out += [f"  - {'Field' if kind == 'form' else 'Action'}: {_md(a)}" for a in p.actions]
            out += [f"  - Note: {_md(n)}" for n in p.notes]
            out += ["", "<details><summary>Original definition</summary>", "",
                    *md_json_block(_cut_values(i.original)),
                    "", "</details>"]
    return "\n".join(out) + "\n"


def _md(s: Any) -> str:
    return md_text(s, limit=ORIGINAL_VALUE_LIMIT)


def _cut_values(v: Any) -> Any:
    """The original definition with every long text value cut, for reading."""
    if isinstance(v, dict):
        return {k: _cut_values(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_cut_values(x) for x in v]
    return cut(v, ORIGINAL_VALUE_LIMIT) if isinstance(v, str) else v
