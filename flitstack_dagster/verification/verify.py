"""Read-back verification of one migration run: every migrated record, every mapped field.

Expected values are what shaping intended, turned into this account's request body by the same
resolver and field registry the loader uses (`loading.loader.build_body`), so a custom field's key,
an option id or a reference resolves exactly as it did when the record was sent. Each field is then
compared with what Pipedrive answers now (`compare`), and shown in the user's words: field names
as mapped, option labels, stage names, `#17 asset:00042` for references.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading import readback
from flitstack_dagster.loading.compare import (
    CUSTOM_KINDS,
    KINDS,
    MATCH,
    MISMATCH,
    MISSING,
    compare,
    display,
    empty,
)
from flitstack_dagster.loading.loader import SOURCE_ID_FIELD, build_body
from flitstack_dagster.loading.marker import MARKED, marked_file_name, marker
from flitstack_dagster.loading.resolve import Registry, Resolver, Unresolved
from flitstack_dagster.loading.reconcile import shaped_count
from flitstack_dagster.loading.run import shaped_rows
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.loading.verified_samples import forget_verified_sample, record_verified_sample
from flitstack_dagster.mapping.provision import PLAN_FIELDS
from flitstack_dagster.novo.runs import mode_of
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent, PipedriveError
from flitstack_dagster.mapping.archive import listed_work_orders
from flitstack_dagster.shaping.archive import ARCHIVE_KIND
from flitstack_dagster.shaping.folding import TIMELINE_KIND, lines_in
from flitstack_dagster.pipedrive.limits import file_limit_text
from flitstack_dagster.verification.store import save_run

PLAN_FIELD_NAMES = frozenset(f.name for f in PLAN_FIELDS.values())
RENAMED = {"pipeline_id": "pipeline", "stage_id": "stage", "rel_owner_org_id": "parent",
           "rel_linked_org_id": "child"}

DIFF_SCHEMA = {"run_key": pl.String, "entity": pl.String, "source_id": pl.String, "pipedrive_id": pl.Int64,
               "field": pl.String, "expected": pl.String, "actual": pl.String, "outcome": pl.String,
               "note": pl.String, "accepted": pl.String}
RECORD_SCHEMA = {"run_key": pl.String, "entity": pl.String, "source_id": pl.String, "pipedrive_id": pl.Int64,
                 "status": pl.String, "message": pl.String}
DUP_SCHEMA = {"run_key": pl.String, "entity": pl.String, "source_value": pl.String, "pipedrive_ids": pl.String,
              "in_run": pl.Boolean}


@dataclass(frozen=True)
class AcceptedMismatch:
    """A difference the migration lead accepted in config: entity + field, optionally one record."""

    entity: str
    field: str
    reason: str
    source_id: str | None = None

    def covers(self, entity: str, fld: str, source_id: str) -> bool:
        return self.entity == entity and self.field == fld and self.source_id in (None, "", source_id)


@dataclass
class VerificationResult:
    run_key: str
    field_diff: pl.DataFrame
    records: pl.DataFrame
    duplicates: pl.DataFrame
    tokens: int = 0
    stopped: str | None = None
    mapping_hash: str | None = None
    sample_verified: bool = False
    scanned: str = "the whole account"  # where duplicates were looked for

    @property
    def unexplained(self) -> int:
        d = self.field_diff
        return d.filter(pl.col("outcome").is_in([MISMATCH, MISSING]) & pl.col("accepted").is_null()).height

    @property
    def clean(self) -> bool:
        """Zero unexplained mismatches, no duplicates, every id-map record read back."""
        return (self.stopped is None and self.unexplained == 0 and self.run_duplicates().height == 0
                and self.records.filter(pl.col("status") == "missing").height == 0)

    def missing(self) -> pl.DataFrame:
        """Records the account does not hold: in the id map but not (or no longer) in Pipedrive, or
        shaped for the run and in neither the id map nor the loader's set-aside."""
        return self.records.filter(pl.col("status").is_in(["missing", "not_loaded"]))

    def run_duplicates(self) -> pl.DataFrame:
        """Source records of this run the account holds more than once."""
        return self.duplicates.filter(pl.col("in_run"))

    def once_problems(self, shown: int = 5) -> list[str]:
        """Each duplicated or missing record named (the first `shown` of each), with the counts."""
        out: list[str] = []
        dups, missing = self.run_duplicates(), self.missing()
        if dups.height:
            named = "; ".join(f"{d['entity']} {d['source_value']} (ids {d['pipedrive_ids']})"
                              for d in dups.head(shown).to_dicts())
            out.append(f"{dups.height} source records held more than once: {named}"
                       + (" …" if dups.height > shown else ""))
        if missing.height:
            named = "; ".join(f"{m['entity']} {m['source_id']} ({m['message']})" for m in missing.head(shown).to_dicts())
            out.append(f"{missing.height} records missing from Pipedrive: {named}" + (" …" if missing.height > shown else ""))
        if self.stopped:
            out.append(self.stopped)
        return out

    def summary(self) -> dict[str, Any]:
        d = self.field_diff
        count = lambda o: d.filter(pl.col("outcome") == o).height
        return {
            "run_key": self.run_key, "verified_at": _now(), "records": self.records.height, "fields": d.height,
            "matches": count(MATCH), "mismatches": count(MISMATCH), "missing": count(MISSING),
            "accepted": d.filter(pl.col("accepted").is_not_null()).height, "unexplained": self.unexplained,
            "duplicates": self.duplicates.height, "missing_records": self.missing().height, "tokens": self.tokens, "stopped": self.stopped,
            "mapping_hash": self.mapping_hash,
        }

    def by_field(self) -> pl.DataFrame:
        """Per entity and field: matches, mismatches, missing, and one example of a difference."""
        return field_summary(self.field_diff)


def field_summary(diff: pl.DataFrame) -> pl.DataFrame:
    if diff.height == 0:
        return pl.DataFrame(schema={"entity": pl.String, "field": pl.String, "match": pl.UInt32,
                                    "mismatch": pl.UInt32, "missing": pl.UInt32, "accepted": pl.UInt32,
                                    "example": pl.String})
    bad = pl.col("outcome") != MATCH
    example = pl.format("{}: expected {} got {}", pl.col("source_id"), pl.col("expected").fill_null("(empty)"),
                        pl.col("actual").fill_null("(empty)"))
    return (
        diff.group_by("entity", "field")
        .agg((pl.col("outcome") == MATCH).sum().alias("match"), (pl.col("outcome") == MISMATCH).sum().alias("mismatch"),
             (pl.col("outcome") == MISSING).sum().alias("missing"), pl.col("accepted").is_not_null().sum().alias("accepted"),
             example.filter(bad).first().alias("example"))
        .with_columns(pl.col("example").fill_null(""))
        .sort(pl.col("mismatch") + pl.col("missing"), "entity", "field", descending=[True, False, False])
    )


def account_of(client) -> str:
    """The field registry's account key, the way the loader asks for it."""
    acct = getattr(client, "account", None)
    return acct() if callable(acct) else str(client.base_url)


def verify_run(
    con: duckdb.DuckDBPyConnection, client, run_key: str, *,
    accepted: Iterable[AcceptedMismatch] = (), entities: Iterable[str] = ENTITIES.load_order,
    scan_duplicates: bool = True, whole_account: bool = False, mapping_hash: str | None = None,
    sample: bool | None = None,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> VerificationResult:
    """Read back, compare, store (`verification.*`); a clean sample run is recorded as verified.
    `progress(done, total, tokens, seconds)` is told after each entity's records are compared."""
    accepted = list(accepted)
    store = LoadStore(con)
    registry = Registry.load(con, account_of(client))
    id_maps = {e: store.id_map(e) for e in ENTITIES.load_order}
    resolver = Resolver(registry, {e: {s: m.pipedrive_id for s, m in id_maps[e].items()}
                                   for e in ENTITIES.referenced})
    names = _Names(registry, resolver.id_maps)
    diffs: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    dups: list[dict[str, Any]] = []
    tokens0, stopped, started = client.tokens_spent, None, time.monotonic()
    set_aside_at_load = _flagged(con, run_key)
    entities = list(entities)
    total, done = sum(shaped_count(con, ENTITIES[e].shaped_table, run_key) or 0 for e in entities), 0
    window = None
    try:
        if scan_duplicates and not whole_account and mode_of(run_key) == "delta":
            window = _delta_window(con, client, run_key)
        for entity in entities:
            rows = shaped_rows(con, run_key, entity)
            mapped = id_maps[entity]
            todo = []
            for row in rows:
                sid = row["source_id"]
                m = mapped.get(sid)
                if m is None or m.state == "deleted":
                    why = set_aside_at_load.get((entity, sid)) or (
                        f"over {file_limit_text()}: flagged for manual handling" if row.get("decision") == "flag_too_large" else None)
                    records.append(_rec(run_key, entity, sid, None, "set_aside" if why else "not_loaded",
                                        why or "shaped for this run but not in the id map"))
                    continue
                todo.append((row, m.pipedrive_id))
            found, identity = _read(client, entity, [pid for _, pid in todo], registry, scan_duplicates, run_key,
                                    {r["source_id"] for r in rows}, dups, window)
            for row, pid in todo:
                other = identity.get(pid)
                actual = found.get(pid) if other in (None, row["source_id"]) else None  # an id reused for another
                out = _compare_record(entity, row, pid, actual, resolver, names, accepted, run_key)
                if actual is not None and row.get("kind") == ARCHIVE_KIND:
                    out += _archive_rows(client, row, pid, run_key)
                diffs.extend(out)
                bad = [d for d in out if d["outcome"] != MATCH and d["accepted"] is None]
                if actual is None:
                    status, message = "missing", (f"id {pid} now holds {other}" if other else "not in Pipedrive")
                else:
                    status, message = ("differs" if bad else "verified"), ", ".join(sorted({d["field"] for d in bad})) or None
                records.append(_rec(run_key, entity, row["source_id"], pid, status, message))
            done += len(rows)
            if progress is not None:
                progress(done, total, client.tokens_spent - tokens0, time.monotonic() - started)
    except DailyBudgetSpent as e:
        stopped = f"the daily token budget is spent ({e}); verify again after the reset"
    result = VerificationResult(
        run_key, pl.DataFrame(diffs, schema=DIFF_SCHEMA), pl.DataFrame(records, schema=RECORD_SCHEMA),
        pl.DataFrame(dups, schema=DUP_SCHEMA), client.tokens_spent - tokens0, stopped, mapping_hash,
        scanned=_scanned(scan_duplicates, window),
    )
    save_run(con, run_key, {"field_diff": result.field_diff, "records": result.records,
                            "duplicates": result.duplicates}, result.summary())
    is_sample = run_key.startswith("sample-") if sample is None else sample
    if is_sample and mapping_hash:
        if result.clean and not result.records.filter(pl.col("status") == "not_loaded").height:
            s = result.summary()
            record_verified_sample(con, mapping_hash, run_key, s["records"], s["fields"], s["accepted"])
            result.sample_verified = True
        else:
            forget_verified_sample(con, run_key)
    return result


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeltaWindow:
    """What a delta run wrote (entity -> Pipedrive id -> when, our clock) and when it began writing on
    Pipedrive's clock (None: it could not be told, so the whole account is listed)."""

    writes: dict[str, dict[int, datetime]]
    since: datetime | None


def _scanned(scan: bool, window: DeltaWindow | None) -> str:
    if not scan:
        return "nowhere (scan_duplicates is off)"
    if window is None or window.since is None:
        return "the whole account"
    return (f"records changed since {window.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC (Pipedrive's clock), of what this delta "
            "wrote; whole_account: true lists every record")


def _delta_window(con: duckdb.DuckDBPyConnection, client, run_key: str) -> DeltaWindow:
    writes: dict[str, dict[int, datetime]] = {}
    for entity, pid, at in con.execute(
            "SELECT entity, pipedrive_id, max(recorded_at) FROM meta.audit_log WHERE run_key = ? "
            "AND pipedrive_id IS NOT NULL AND operation IN ('create', 'adopt', 'update', 'restore') GROUP BY ALL",
            [run_key]).fetchall():
        writes.setdefault(entity, {})[int(pid)] = at
    return DeltaWindow(writes, readback.run_window(client, writes))


def _read(client, entity: str, ids: list[int], registry: Registry, scan: bool, run_key: str,
          run_sources: set[str], dups: list[dict[str, Any]], window: DeltaWindow | None = None,
          ) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """The records at `ids`, and which source record each says it is (scanned entities only). A delta
    run scans only the entities it wrote, and only what changed since it began writing: that finds a
    record it created twice (a lost answer, a retry), not one it created for a source the account
    held before the run — the whole-account scan of full runs and of `flitstack repair` does."""
    if not (scan and entity in readback.IDENTIFIED and ids) or (window and entity not in window.writes):
        return readback.read_back(client, entity, ids), {}
    cf = registry.fields.get(entity, {}).get(SOURCE_ID_FIELD)
    markers = {marker(entity, sid): sid for sid in run_sources} if entity in MARKED else None
    since = window.since if window else None
    s = readback.scan_entity(client, entity, cf.key if cf else None, markers, updated_since=since,
                             also=ids if since else ())
    for value, pids in sorted(s.duplicates.items()):
        dups.append({"run_key": run_key, "entity": entity, "source_value": value,
                     "pipedrive_ids": ", ".join(map(str, pids)), "in_run": value in run_sources})
    return {i: s.records[i] for i in ids if i in s.records}, s.identity


def _flagged(con: duckdb.DuckDBPyConnection, run_key: str) -> dict[tuple[str, str], str]:
    """Records the loader set aside for this run (`meta.load_set_aside`, or audit operation `flag`)."""
    out = {(e, s): str(m) for e, s, m in con.execute(
        "SELECT entity, source_id, coalesce(after, 'set aside by the loader') FROM meta.audit_log "
        "WHERE run_key = ? AND operation = 'flag'", [run_key]).fetchall()}
    if has_table(con, "meta", "load_set_aside"):
        out.update({(e, s): f"{code}: {msg or ''}".rstrip(": ") for e, s, code, msg in con.execute(
            "SELECT entity, source_id, reason_code, message FROM meta.load_set_aside WHERE run_key = ?",
            [run_key]).fetchall()})
    return out


def _rec(run_key, entity, sid, pid, status, message) -> dict[str, Any]:
    return {"run_key": run_key, "entity": entity, "source_id": sid, "pipedrive_id": pid, "status": status,
            "message": message}


# -- comparing -----------------------------------------------------------------------------------------


class _Names:
    """Ids back to the user's words: option labels, pipeline/stage names, source ids."""

    def __init__(self, registry: Registry, id_maps: dict[str, dict[str, int]]):
        self.registry = registry
        self.custom = {e: {cf.key: (name, cf) for name, cf in fields.items()} for e, fields in registry.fields.items()}
        self.pipelines = {v: k for k, v in registry.pipelines.items()}
        self.stages = {v: name for (_, name), v in registry.stages.items()}
        self.sources = {e: {pid: sid for sid, pid in m.items()} for e, m in id_maps.items()}

    def ref(self, entity: str, v: Any) -> Any:
        if isinstance(v, dict):
            v = v.get("value", v.get("id"))
        if v is None:
            return None
        sid = self.sources.get(entity, {}).get(int(v))
        return f"#{v} {sid}" if sid else f"#{v}"

    def option(self, cf, v: Any) -> Any:
        labels = {i: label for label, i in cf.options.items()}
        if isinstance(v, list):
            return [labels.get(int(x), f"option {x}") for x in v]
        return labels.get(int(v), f"option {v}") if v is not None else None


def expected_fields(entity: str, row: dict[str, Any], resolver: Resolver, names: _Names
                    ) -> list[tuple[str, str, tuple[str, ...], Any]]:
    """(field, kind, where in the API record, expected API value) for every mapped field of a record."""
    body = build_body(entity, resolver, row)
    out: list[tuple[str, str, tuple[str, ...], Any]] = []
    for key, value in body.items():
        if key == "custom_fields":
            for ck, cv in (value or {}).items():
                name, cf = names.custom.get(entity, {}).get(ck, (ck, None))
                out.append((name, CUSTOM_KINDS.get(cf.field_type if cf else "", "text"), ("custom_fields", ck), cv))
        else:
            out.append((RENAMED.get(key, key), KINDS.get(key, "text"), (key,), value))
    if entity == "file":
        out.append(("file_name", "text", ("file_name",), marked_file_name(entity, row["source_id"], row["file_name"])))
        out.append(("file_size", "int", ("file_size",), row.get("size")))
    return out


def _compare_record(entity: str, row: dict[str, Any], pid: int, actual: dict[str, Any] | None,
                    resolver: Resolver, names: _Names, accepted: list[AcceptedMismatch], run_key: str
                    ) -> list[dict[str, Any]]:
    sid = row["source_id"]
    try:
        fields = expected_fields(entity, row, resolver, names)
    except Unresolved as e:
        fields = [("(record)", "text", ("(record)",), f"not resolvable now: {e}")]
    out = []
    for name, kind, path, exp in fields:
        act = _at(actual, path) if actual is not None else None
        if _holds_lines(entity, row, name, path):
            out += _line_rows(entity, row, pid, name, exp, act, actual is not None, accepted, run_key)
            continue
        if actual is None:
            res_outcome, note = (MATCH, None) if empty(exp) else (MISSING, "record not found in Pipedrive")
        else:
            r = compare(kind, exp, act, field=path[-1])
            res_outcome, note = r.outcome, r.note
        acc = next((a.reason for a in accepted if res_outcome != MATCH and a.covers(entity, name, sid)), None)
        out.append({"run_key": run_key, "entity": entity, "source_id": sid, "pipedrive_id": pid, "field": name,
                    "expected": display(_shown(entity, path, exp, names)),
                    "actual": display(_shown(entity, path, act, names)) if actual is not None else None,
                    "outcome": res_outcome, "note": note, "accepted": acc})
    return out


def _archive_rows(client, row: dict[str, Any], pid: int, run_key: str) -> list[dict[str, Any]]:
    """One diff row per work order an archive file must list, read from the file as Pipedrive serves it;
    a work order the file lists that the run did not archive there is a mismatch of its own."""
    fmt = "html" if row.get("content_type") == "text/html" else "csv"
    where, host = f"archived in {fmt.upper()}", f"in {row['file_name']} (#{pid})"
    try:
        have = listed_work_orders(fmt, client.download_file(pid).decode("utf-8", errors="replace"))
    except PipedriveError as e:
        if isinstance(e, UserError):  # a refused token or a spent budget stops the read-back, in its sentence
            raise
        have, host = set(), f"{row['file_name']} (#{pid}) could not be downloaded: {e}"
    want = [f"work_order:{wo}" for wo in json.loads(row["payload"])["work_orders"]]
    out = []
    for wo in [*want, *sorted(have - set(want))]:
        outcome = (MATCH if wo in have else MISSING) if wo in want else MISMATCH
        out.append({"run_key": run_key, "entity": "file", "source_id": wo, "pipedrive_id": pid, "field": where,
                    "expected": "listed" if wo in want else None, "actual": "listed" if wo in have else None,
                    "outcome": outcome, "note": host if wo in want else f"a work order the run did not archive, {host}",
                    "accepted": None})
    return out


def _holds_lines(entity: str, row: dict[str, Any], name: str, path: tuple[str, ...]) -> bool:
    """A field whose text is a record plan's folded facts, one line each: a deal's long-text plan field
    or a timeline note's content."""
    if entity == "deal":
        return path[0] == "custom_fields" and name in PLAN_FIELD_NAMES
    return entity == "note" and row.get("kind") == TIMELINE_KIND and path == ("content",)


def _line_rows(entity: str, row: dict[str, Any], pid: int, name: str, exp: Any, act: Any, found: bool,
               accepted: list[AcceptedMismatch], run_key: str) -> list[dict[str, Any]]:
    """One diff row per folded fact: its line where the plan put it, under the fact's own source id; a
    line the record holds that the run did not send is a mismatch of its own."""
    html_body = entity == "note"
    want, have = lines_in(exp, html_body), lines_in(act if isinstance(act, str) else None, html_body)
    where = f"{name} line" if entity == "deal" else "timeline line"
    host = f"in {row['source_id']} (#{pid})"
    out = []
    for fact in [*want, *(k for k in have if k not in want)]:
        e, a = want.get(fact), have.get(fact)
        if e is None:
            outcome, note = MISMATCH, f"a line the run did not send, {host}"
        elif a is None:
            outcome, note = MISSING, (f"not {host}" if found else "record not found in Pipedrive")
        else:
            outcome, note = (MATCH, host) if e == a else (MISMATCH, host)
        acc = next((x.reason for x in accepted if outcome != MATCH and x.covers(entity, where, fact)), None)
        out.append({"run_key": run_key, "entity": entity, "source_id": fact, "pipedrive_id": pid, "field": where,
                    "expected": e, "actual": a, "outcome": outcome, "note": note, "accepted": acc})
    return out


def _at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    v: Any = record
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    return v


def _shown(entity: str, path: tuple[str, ...], v: Any, names: _Names) -> Any:
    """A value in the user's words."""
    if v is None:
        return None
    key = path[-1]
    if path[0] == "custom_fields":
        _, cf = names.custom.get(entity, {}).get(key, (key, None))
        if cf is not None and cf.field_type in ("enum", "set"):
            return names.option(cf, v)
        if cf is not None and cf.field_type == "org":
            return names.ref("organization", v)
        return v
    if key == "pipeline_id":
        return names.pipelines.get(int(v), f"#{v}")
    if key == "stage_id":
        return names.stages.get(int(v), f"#{v}")
    if key in ENTITIES.reference_fields:
        return names.ref(ENTITIES.reference_fields[key], v)
    if key == "address" and isinstance(v, dict):
        return v.get("value")
    return v


def _now() -> datetime:
    return datetime.now(UTC)

