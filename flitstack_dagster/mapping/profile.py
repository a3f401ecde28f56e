"""Source profile: what the staged Novo data of one migration run looks like.

Everything is computed with set-based DuckDB SQL over `staging.stg_<entity>` (column numbers in
`column_stats`: one grouped pass per column; a recursive CTE for the asset hierarchy), so it stays
fast on ten million rows. The profile feeds the proposal (names, types, value sets), the approval check (what values
the data holds) and the scope document (counts, depth, sizes).

`profile_hash` is the hash of the *shape* a mapping depends on: entities and their columns with
types, the UDF declarations, and the distinct values of every value-mapped column. Row counts are
not part of it, so re-profiling the same data (or a delta with the same vocabulary) keeps the hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.mapping.column_stats import column_stats
from flitstack_dagster.mapping.evidence import StatusEvidence, status_evidence
from flitstack_dagster.novo.columns import BY_ENTITY, FILES, UDF_FILE, snake
from flitstack_dagster.pipedrive.limits import MAX_FILE_BYTES, MAX_FILE_MB

CLOSED_STATUSES = {"Completed", "Closed", "Cancelled"}  # a status entered from one of these is a re-entry
VALUE_SET_CAP = 1000  # value sets (for value maps) keep at most this many distinct values
SHOW_MAX = 80  # characters of a value shown in top values / examples

# Columns whose every distinct value matters to the mapping (value maps), per entity: labels.
VALUE_MAPPED: dict[str, tuple[str, ...]] = {
    "work_orders": ("Status", "Priority", "Request Type"),
    "contacts": ("Role", "Department ID"),
    "accounts": ("Account Type", "Department ID"),
    "assets": ("Asset Class",),
    "notes": ("Entry Type",),
}

SIZE_BANDS: tuple[tuple[str, float | None], ...] = (
    ("< 1 MB", 1024**2),
    ("1–10 MB", 10 * 1024**2),
    (f"10–{MAX_FILE_MB} MB", MAX_FILE_BYTES),
    (f"> {MAX_FILE_MB} MB", None),
)


class ColumnProfile(BaseModel):
    name: str  # staged column name (snake)
    label: str  # the Novo header
    type_seen: str  # DuckDB type of the staged column
    udf: bool = False
    rows: int = 0
    null_count: int = 0
    null_rate: float = 0.0
    distinct: int = 0
    max_length: int | None = None  # characters of the longest value (list: most elements)
    top_values: list[tuple[str, int]] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class EntityProfile(BaseModel):
    entity: str
    staged: bool = True
    rows: int = 0
    columns: list[ColumnProfile] = Field(default_factory=list)

    def column(self, label_or_name: str) -> ColumnProfile | None:
        for c in self.columns:
            if c.label == label_or_name or c.name == label_or_name:
                return c
        return None


class UdfDef(BaseModel):
    entity: str  # UDF entity as Novo writes it: "Work Order", "Asset", "Contact", "Account"
    label: str
    column: str  # header, e.g. "UDF: Council District"
    data_type: str  # Text, Long Text, Number, Currency, Date, Yes/No, Pick List, Multi Pick List
    choices: list[str] = Field(default_factory=list)
    required: bool = False
    declared: bool = True  # False: a UDF column seen in the data but not declared

    @property
    def source_entity(self) -> str:
        return UDF_FILE[self.entity].entity if self.entity in UDF_FILE else self.entity


class Department(BaseModel):
    id: str
    name: str
    type: str | None = None
    active: bool | None = None


class Hierarchy(BaseModel):
    assets: int = 0
    roots: int = 0
    missing_parent: int = 0  # assets whose parent id is not an asset (treated as roots)
    depth_histogram: dict[int, int] = Field(default_factory=dict)  # depth (root = 1) -> assets
    max_depth: int = 0
    deeper_than_2: int = 0  # nodes that will be flattened under their level-2 ancestor
    cycles: list[list[str]] = Field(default_factory=list)  # each cycle's asset ids, smallest first
    in_cycle: int = 0
    under_cycle: int = 0  # not in a cycle but only reachable through one


class PmCadence(BaseModel):
    style: str  # rrule | phrase | frequency | meter | none
    unit: str | None = None  # DAILY | WEEKLY | MONTHLY | YEARLY | None
    interval: int = 1
    schedules: int = 0


class Inventory(BaseModel):
    counts: dict[str, int] = Field(default_factory=dict)
    quarantined: dict[str, int] = Field(default_factory=dict)
    wo_status: dict[str, int] = Field(default_factory=dict)
    wo_priority: dict[str, int] = Field(default_factory=dict)  # "" = empty
    hierarchy: Hierarchy = Field(default_factory=Hierarchy)
    pm_by_style: dict[str, int] = Field(default_factory=dict)
    pm_cadence: list[PmCadence] = Field(default_factory=list)  # active schedules only
    attachments_by_size: dict[str, int] = Field(default_factory=dict)
    attachments_over_limit_bytes: int = 0
    descriptions_over_255: int = 0
    note_entry_types: dict[str, int] = Field(default_factory=dict)
    note_entry_types_on_work_orders: dict[str, int] = Field(default_factory=dict)  # entries naming a work order
    work_orders_with_history: int = 0  # work orders with a status change or a parts line (a timeline to fold)
    equipment_with_parts: int = 0


class SourceProfile(BaseModel):
    run_key: str
    profiled_at: datetime | None = None
    entities: dict[str, EntityProfile] = Field(default_factory=dict)
    udfs: list[UdfDef] = Field(default_factory=list)
    departments: list[Department] = Field(default_factory=list)
    # every distinct value (with row count) of the value-mapped columns, keyed "<entity>.<label>"
    value_sets: dict[str, dict[str, int]] = Field(default_factory=dict)
    # what the data says about each work-order status (completion dates, status-log position); not hashed
    status_evidence: dict[str, StatusEvidence] = Field(default_factory=dict)
    inventory: Inventory = Field(default_factory=Inventory)
    profile_hash: str = ""

    def entity(self, name: str) -> EntityProfile | None:
        return self.entities.get(name)

    def udf(self, source_entity: str, column: str) -> UdfDef | None:
        for u in self.udfs:
            if u.source_entity == source_entity and u.column == column:
                return u
        return None

    def compute_hash(self) -> str:
        body = {
            "columns": {
                e: sorted([c.label, c.type_seen] for c in p.columns) for e, p in sorted(self.entities.items())
            },
            "udfs": sorted(
                [u.entity, u.column, u.data_type, sorted(u.choices)] for u in self.udfs
            ),
            "departments": sorted([d.id, d.name, d.type or ""] for d in self.departments),
            "value_sets": {k: sorted(v) for k, v in sorted(self.value_sets.items())},
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def profile_hash(profile: SourceProfile) -> str:
    return profile.compute_hash()


# ----------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _show(v: Any) -> str:
    s = str(v)
    return s if len(s) <= SHOW_MAX else s[: SHOW_MAX - 1] + "…"


def _staged_columns(con, entity: str) -> list[tuple[str, str]] | None:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = ? ORDER BY ordinal_position",
        [f"stg_{entity}"],
    ).fetchall()
    return [(r[0], r[1]) for r in rows] or None


def _raw_labels(con, entity: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ?",
        [entity],
    ).fetchall()
    return {snake(r[0]): r[0] for r in rows if not r[0].startswith("_")}


def _split_choices(s: str | None) -> list[str]:
    if not s:
        return []
    out: list[str] = []
    for part in str(s).split("|"):
        p = part.strip()
        if p and p not in out:
            out.append(p)
    return out


def _load_udfs(con, run_key: str) -> list[UdfDef]:
    cols = _staged_columns(con, "user_defined_fields")
    if not cols:
        return []
    names = {c for c, _ in cols}
    req = "required" if "required" in names else "NULL"
    rows = con.execute(
        f"SELECT entity, label, \"column\", data_type, choices, {req} FROM staging.stg_user_defined_fields "
        "WHERE _run_key = ? ORDER BY entity, \"column\"",
        [run_key],
    ).fetchall()
    out: list[UdfDef] = []
    seen: set[tuple[str, str]] = set()
    for ent, label, column, dtype, choices, required in rows:
        if not ent or not column or (ent, column) in seen:
            continue
        seen.add((ent, column))
        out.append(
            UdfDef(entity=ent, label=(label or column.removeprefix("UDF:").strip()), column=column,
                   data_type=dtype or "Text", choices=_split_choices(choices), required=bool(required))
        )
    return out


def _profile_entity(con, entity: str, run_key: str, cols: list[tuple[str, str]], labels: dict[str, str],
                    udf_names: set[str]) -> EntityProfile:
    table = f"staging.stg_{entity}"
    data_cols = [(c, t) for c, t in cols if not c.startswith("_")]
    rows = con.execute(f"SELECT count(*) FROM {table} WHERE _run_key = ?", [run_key]).fetchall()[0][0]
    prof = EntityProfile(entity=entity, rows=rows)
    for (c, t), st in zip(data_cols, column_stats(con, table, run_key, data_cols), strict=True):
        nulls = rows - st.nonnull
        prof.columns.append(
            ColumnProfile(
                name=c, label=labels.get(c, c), type_seen=t, udf=c in udf_names, rows=rows,
                null_count=nulls, null_rate=round(nulls / rows, 4) if rows else 0.0, distinct=st.distinct,
                max_length=st.max_length, top_values=[(_show(v), n) for v, n in st.top],
                examples=[_show(v) for v in st.examples],
            )
        )
    return prof


def _value_set(con, entity: str, column: str, type_: str, run_key: str) -> dict[str, int]:
    qc = _q(column)
    if type_.endswith("[]"):
        sql = (f"SELECT v, count(*) FROM (SELECT trim(CAST(unnest({qc}) AS VARCHAR)) AS v FROM staging.stg_{entity} "
               f"WHERE _run_key = ?) WHERE v IS NOT NULL AND v <> '' GROUP BY v ORDER BY count(*) DESC, v LIMIT {VALUE_SET_CAP}")
    else:
        sql = (f"SELECT v, count(*) FROM (SELECT trim(CAST({qc} AS VARCHAR)) AS v FROM staging.stg_{entity} "
               f"WHERE _run_key = ?) WHERE v IS NOT NULL AND v <> '' GROUP BY v ORDER BY count(*) DESC, v LIMIT {VALUE_SET_CAP}")
    return {str(v): int(n) for v, n in con.execute(sql, [run_key]).fetchall()}


def _hierarchy(con, run_key: str) -> Hierarchy:
    h = Hierarchy()
    if not has_table(con, "staging", "stg_assets"):
        return h
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _prof_nodes AS
           SELECT asset_id AS id, any_value(NULLIF(trim(parent_asset_id), '')) AS parent
           FROM staging.stg_assets WHERE _run_key = ? AND asset_id IS NOT NULL GROUP BY asset_id""",
        [run_key],
    )
    h.assets = con.execute("SELECT count(*) FROM _prof_nodes").fetchone()[0]
    h.missing_parent = con.execute(
        "SELECT count(*) FROM _prof_nodes n WHERE parent IS NOT NULL AND parent NOT IN (SELECT id FROM _prof_nodes)"
    ).fetchone()[0]
    depth_rows = con.execute(
        """WITH RECURSIVE walk(id, depth) AS (
               SELECT id, 1 FROM _prof_nodes
               WHERE parent IS NULL OR parent NOT IN (SELECT id FROM _prof_nodes)
               UNION ALL
               SELECT c.id, w.depth + 1 FROM _prof_nodes c JOIN walk w ON c.parent = w.id
           )
           SELECT depth, count(*) FROM walk GROUP BY depth ORDER BY depth"""
    ).fetchall()
    h.depth_histogram = {int(d): int(n) for d, n in depth_rows}
    h.roots = h.depth_histogram.get(1, 0)
    h.max_depth = max(h.depth_histogram, default=0)
    h.deeper_than_2 = sum(n for d, n in h.depth_histogram.items() if d > 2)
    reached = sum(h.depth_histogram.values())
    if reached < h.assets:
        # Nodes never reached from a root sit on a cycle or below one. Walk their parent pointers.
        unreached = dict(
            con.execute(
                """WITH RECURSIVE walk(id) AS (
                       SELECT id FROM _prof_nodes WHERE parent IS NULL OR parent NOT IN (SELECT id FROM _prof_nodes)
                       UNION ALL SELECT c.id FROM _prof_nodes c JOIN walk w ON c.parent = w.id)
                   SELECT id, parent FROM _prof_nodes WHERE id NOT IN (SELECT id FROM walk)"""
            ).fetchall()
        )
        state: dict[str, int] = {}  # 1 = on current path, 2 = done
        cycles: list[list[str]] = []
        for start in sorted(unreached):
            path: list[str] = []
            node: str | None = start
            while node is not None and node in unreached and state.get(node) is None:
                state[node] = 1
                path.append(node)
                node = unreached[node]
            if node is not None and state.get(node) == 1:
                cyc = path[path.index(node):]
                i = cyc.index(min(cyc))
                cycles.append(cyc[i:] + cyc[:i])
            for p in path:
                state[p] = 2
        h.cycles = sorted(cycles)
        h.in_cycle = sum(len(c) for c in cycles)
        h.under_cycle = len(unreached) - h.in_cycle
    con.execute("DROP TABLE IF EXISTS _prof_nodes")
    return h


_RRULE_FREQ = re.compile(r"FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)", re.IGNORECASE)
_RRULE_INTERVAL = re.compile(r"INTERVAL=(\d+)", re.IGNORECASE)
_PHRASE = re.compile(r"every\s+(\d+)?\s*(day|week|month|year)s?", re.IGNORECASE)
_PHRASE_UNIT = {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
_PHRASE_ADJ = re.compile(r"^\s*(daily|weekly|monthly|yearly|annually)\b", re.IGNORECASE)


def cadence_of(trigger: str | None, frequency: str | None, every: float | None, rule: str | None) -> PmCadence:
    """Classify one PM schedule's recurrence: style, unit and interval (best effort, for estimates)."""
    rule = (rule or "").strip()
    if (trigger or "").strip().lower() == "meter":
        return PmCadence(style="meter")
    if rule:
        m = _RRULE_FREQ.search(rule)
        if m:
            iv = _RRULE_INTERVAL.search(rule)
            return PmCadence(style="rrule", unit=m.group(1).upper(), interval=int(iv.group(1)) if iv else 1)
        m2 = _PHRASE.search(rule)
        if m2:
            return PmCadence(style="phrase", unit=_PHRASE_UNIT[m2.group(2).lower()], interval=int(m2.group(1) or 1))
        m3 = _PHRASE_ADJ.search(rule)
        if m3:
            w = m3.group(1).lower()
            return PmCadence(style="phrase", unit="YEARLY" if w == "annually" else w.upper())
        return PmCadence(style="phrase")
    if frequency:
        f = frequency.strip().upper()
        unit = f if f in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY") else None
        return PmCadence(style="frequency", unit=unit, interval=max(int(every or 1), 1))
    return PmCadence(style="none")


def _pm(con, run_key: str, inv: Inventory) -> None:
    cols = _staged_columns(con, "pm_schedules")
    if not cols:
        return
    names = {c for c, _ in cols}

    def col(n: str) -> str:
        return _q(n) if n in names else "NULL"

    active = "active" if "active" in names else "NULL"
    rows = con.execute(
        f"""SELECT {col('trigger')}, {col('frequency')}, {col('every')}, {col('recurrence_rule')},
                   coalesce(CAST({active} AS VARCHAR) NOT IN ('false', '0'), true) AS is_active, count(*)
            FROM staging.stg_pm_schedules WHERE _run_key = ? GROUP BY ALL""",
        [run_key],
    ).fetchall()
    by_style: Counter[str] = Counter()
    cad: Counter[tuple[str, str | None, int]] = Counter()
    for trig, freq, every, rule, is_active, n in rows:
        c = cadence_of(trig, freq, float(every) if every is not None else None, rule)
        by_style[c.style] += n
        if is_active:
            cad[(c.style, c.unit, c.interval)] += n
    inv.pm_by_style = dict(sorted(by_style.items()))
    inv.pm_cadence = [PmCadence(style=s, unit=u, interval=i, schedules=n)
                      for (s, u, i), n in sorted(cad.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2]))]


def _work_orders_with_history(con, run_key: str) -> int:
    """Work orders with at least one status change or parts line: the deals a folded timeline is written for."""
    parts = [f"SELECT wo_number FROM staging.stg_{t} WHERE _run_key = $1 AND wo_number IS NOT NULL"
             for t in ("status_log", "parts_used") if has_table(con, "staging", f"stg_{t}")]
    if not parts or not has_table(con, "staging", "stg_work_orders"):
        return 0
    return int(con.execute(
        f"SELECT count(DISTINCT wo_number) FROM ({' UNION ALL '.join(parts)}) WHERE wo_number IN "
        "(SELECT wo_number FROM staging.stg_work_orders WHERE _run_key = $1)", [run_key]).fetchone()[0])


def profile_source(con, run_key: str) -> SourceProfile:
    """Profile every staged entity of `run_key` (see module doc)."""
    prof = SourceProfile(run_key=run_key, profiled_at=datetime.now(UTC))
    prof.udfs = _load_udfs(con, run_key)
    declared_cols = {(u.source_entity, snake(u.column)) for u in prof.udfs}
    for nf in FILES:
        cols = _staged_columns(con, nf.entity)
        if cols is None:
            prof.entities[nf.entity] = EntityProfile(entity=nf.entity, staged=False)
            continue
        labels = {c.name: c.label for c in nf.columns}
        udf_names = {c for c, _ in cols if c.startswith("udf_")}
        if udf_names:
            raw_labels = _raw_labels(con, nf.entity)
            by_snake = {snake(u.column): u.column for u in prof.udfs if u.source_entity == nf.entity}
            for c in sorted(udf_names):
                labels[c] = by_snake.get(c) or raw_labels.get(c) or "UDF: " + c[4:].replace("_", " ").title()
                if (nf.entity, c) not in declared_cols and nf.udf_entity:
                    # a UDF column in the data without a declaration: keep it visible, type from staging
                    t = dict(cols)[c]
                    dtype = {"DOUBLE": "Number", "DATE": "Date", "BOOLEAN": "Yes/No", "VARCHAR[]": "Multi Pick List"}.get(
                        t, "Currency" if t.startswith("DECIMAL") else "Text")
                    prof.udfs.append(UdfDef(entity=nf.udf_entity, label=labels[c].removeprefix("UDF:").strip(),
                                            column=labels[c], data_type=dtype, declared=False))
        ep = _profile_entity(con, nf.entity, run_key, cols, labels, udf_names)
        prof.entities[nf.entity] = ep
        prof.inventory.counts[nf.entity] = ep.rows
        # value sets of the value-mapped columns and of pick-list UDFs
        types = dict(cols)
        wanted = [snake(lbl) for lbl in VALUE_MAPPED.get(nf.entity, ())]
        wanted += [snake(u.column) for u in prof.udfs
                   if u.source_entity == nf.entity and u.data_type in ("Pick List", "Multi Pick List")]
        for c in wanted:
            if c in types:
                prof.value_sets[f"{nf.entity}.{labels.get(c, c)}"] = _value_set(con, nf.entity, c, types[c], run_key)
    prof.udfs.sort(key=lambda u: (u.entity, u.column))

    # departments
    if prof.entities.get("departments") and prof.entities["departments"].staged:
        dcols = {c for c, _ in _staged_columns(con, "departments") or []}
        dtype = "department_type" if "department_type" in dcols else "NULL"
        dact = "active" if "active" in dcols else "NULL"
        for did, name, typ, act in con.execute(
            f"SELECT department_id, department_name, {dtype}, {dact} FROM staging.stg_departments "
            "WHERE _run_key = ? AND department_id IS NOT NULL ORDER BY department_id",
            [run_key],
        ).fetchall():
            prof.departments.append(Department(id=str(did), name=str(name or did).strip(), type=typ,
                                               active=None if act is None else bool(act)))

    inv = prof.inventory
    inv.wo_status = prof.value_sets.get("work_orders.Status", {})
    if prof.entities.get("work_orders") and prof.entities["work_orders"].staged:
        pr = prof.value_sets.get("work_orders.Priority", {})
        empty = con.execute(
            "SELECT count(*) FROM staging.stg_work_orders WHERE _run_key = ? AND coalesce(trim(priority), '') = ''",
            [run_key],
        ).fetchone()[0]
        inv.wo_priority = dict(pr) | ({"": int(empty)} if empty else {})
        inv.descriptions_over_255 = con.execute(
            "SELECT count(*) FROM staging.stg_work_orders WHERE _run_key = ? AND length(description) > 255",
            [run_key],
        ).fetchone()[0]
    inv.hierarchy = _hierarchy(con, run_key)
    prof.status_evidence = status_evidence(con, run_key, CLOSED_STATUSES)
    _pm(con, run_key, inv)
    if prof.entities.get("attachments") and prof.entities["attachments"].staged:
        case = " ".join(f"WHEN size < {lim} THEN '{b}'" for b, lim in SIZE_BANDS if lim is not None)
        bands = dict(con.execute(
            f"SELECT CASE WHEN size IS NULL THEN 'unknown' {case} ELSE '{SIZE_BANDS[-1][0]}' END AS band, count(*) "
            "FROM staging.stg_attachments WHERE _run_key = ? GROUP BY band",
            [run_key],
        ).fetchall())
        inv.attachments_by_size = {b: int(bands.get(b, 0)) for b, _ in SIZE_BANDS} | (
            {"unknown": int(bands["unknown"])} if bands.get("unknown") else {})
        inv.attachments_over_limit_bytes = int(con.execute(
            "SELECT coalesce(sum(size), 0) FROM staging.stg_attachments WHERE _run_key = ? AND size >= ?",
            [run_key, MAX_FILE_BYTES],
        ).fetchone()[0])
    if prof.entities.get("notes") and prof.entities["notes"].staged:
        inv.note_entry_types = {str(k): int(n) for k, n in con.execute(
            "SELECT coalesce(entry_type, ''), count(*) FROM staging.stg_notes WHERE _run_key = ? GROUP BY 1 ORDER BY 1",
            [run_key]).fetchall()}
        inv.note_entry_types_on_work_orders = {str(k): int(n) for k, n in con.execute(
            "SELECT coalesce(entry_type, ''), count(*) FROM staging.stg_notes WHERE _run_key = ? "
            "AND wo_number IS NOT NULL GROUP BY 1 ORDER BY 1", [run_key]).fetchall()}
    inv.work_orders_with_history = _work_orders_with_history(con, run_key)
    if prof.entities.get("asset_parts") and prof.entities["asset_parts"].staged:
        inv.equipment_with_parts = con.execute(
            "SELECT count(DISTINCT asset_id) FROM staging.stg_asset_parts WHERE _run_key = ?", [run_key]
        ).fetchone()[0]
    if has_table(con, "staging", "quarantine"):
        inv.quarantined = {str(e): int(n) for e, n in con.execute(
            "SELECT entity, count(DISTINCT row_number) FROM staging.quarantine WHERE _run_key = ? AND level = 'row' "
            "GROUP BY entity ORDER BY entity", [run_key]).fetchall()}
    prof.profile_hash = prof.compute_hash()
    return prof


__all__ = [
    "BY_ENTITY",
    "ColumnProfile",
    "Department",
    "EntityProfile",
    "Hierarchy",
    "Inventory",
    "PmCadence",
    "SourceProfile",
    "UdfDef",
    "cadence_of",
    "profile_hash",
    "profile_source",
]
