"""The id map, the audit log and pending creates, in DuckDB — written as each record lands.

* `meta.id_map`: Novo source id -> Pipedrive id per entity, with the content hash and the payload
  last sent, so a re-run skips unchanged records and a delta PATCHes only changed fields.
* `meta.audit_log`: one row per operation (create/update/skip/delete/restore/adopt/flag), with
  the values before and after, tokens spent and time — what rollback reverses.
* `meta.load_set_aside`: records the load could not send (a reference that is not in Pipedrive, an
  option that is not provisioned, a file over the limit), with the reason; replaced per run and entity.
* `meta.pending_creates`: a create whose outcome is not yet known. A crash leaves the row behind;
  the next run looks the record up by its source id before creating it again.

One Pipedrive id belongs to at most one source record per entity: a unique index says so, and a
create or adopt answered with an id the map already holds for another record stops the load
(`IdMapConflict`) instead of writing a second mapping.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.core.errors import UserError

DDL = [
    "CREATE SCHEMA IF NOT EXISTS meta",
    """CREATE TABLE IF NOT EXISTS meta.id_map (
        entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL, pipedrive_id BIGINT NOT NULL,
        content_hash VARCHAR, payload VARCHAR, created_by_run VARCHAR NOT NULL, last_run VARCHAR NOT NULL,
        state VARCHAR NOT NULL DEFAULT 'active', updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (entity, source_id))""",
    "CREATE SEQUENCE IF NOT EXISTS meta.audit_seq",
    """CREATE TABLE IF NOT EXISTS meta.audit_log (
        seq BIGINT DEFAULT nextval('meta.audit_seq'), run_key VARCHAR NOT NULL, entity VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL, pipedrive_id BIGINT, operation VARCHAR NOT NULL,
        before VARCHAR, after VARCHAR, tokens INTEGER NOT NULL DEFAULT 0, recorded_at TIMESTAMPTZ NOT NULL,
        rolled_back_by VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.load_set_aside (
        run_key VARCHAR NOT NULL, entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL,
        reason_code VARCHAR NOT NULL, message VARCHAR, recorded_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.pending_creates (
        entity VARCHAR NOT NULL, source_id VARCHAR NOT NULL, run_key VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (entity, source_id))""",
]


# a new mapping replaces the record's old one (INSERT OR REPLACE needs a single unique constraint)
UPSERT_MAPPING = (
    "ON CONFLICT (entity, source_id) DO UPDATE SET pipedrive_id = excluded.pipedrive_id, "
    "content_hash = excluded.content_hash, payload = excluded.payload, created_by_run = excluded.created_by_run, "
    "last_run = excluded.last_run, state = excluded.state, updated_at = excluded.updated_at"
)
UNIQUE_PIPEDRIVE_ID = "CREATE UNIQUE INDEX IF NOT EXISTS id_map_pipedrive_id ON meta.id_map (entity, pipedrive_id)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing; idempotent. An id map that already maps one Pipedrive id to two
    source records keeps working without the unique index until `flitstack repair` fixes it
    (`require_one_source_per_id` refuses the load meanwhile)."""
    for stmt in DDL:
        con.execute(stmt)
    if not _has_unique_index(con) and not shared_ids(con, limit=1):
        con.execute(UNIQUE_PIPEDRIVE_ID)


def _has_unique_index(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT 1 FROM duckdb_indexes() WHERE schema_name = 'meta' AND index_name = 'id_map_pipedrive_id'"
    ).fetchall())


@dataclass(frozen=True)
class SharedId:
    """One Pipedrive id the id map holds for more than one source record of an entity."""

    entity: str
    pipedrive_id: int
    source_ids: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.entity} {self.pipedrive_id} ({', '.join(self.source_ids)})"


def shared_ids(con: duckdb.DuckDBPyConnection, *, limit: int = 10) -> list[SharedId]:
    rows = con.execute(
        "SELECT entity, pipedrive_id, list_sort(list(source_id)) FROM meta.id_map GROUP BY entity, pipedrive_id "
        "HAVING count(*) > 1 ORDER BY entity, pipedrive_id LIMIT ?", [limit],
    ).fetchall()
    return [SharedId(e, int(p), tuple(s)) for e, p, s in rows]


def require_one_source_per_id(con: duckdb.DuckDBPyConnection, run_key: str) -> None:
    """Refuse to load on an id map that already lies (a database from before the unique index)."""
    shared = shared_ids(con, limit=5)
    if shared:
        raise UserError(
            f"The id map holds one Pipedrive id for several source records ({'; '.join(map(str, shared))}). "
            f"Run `flitstack repair {run_key}` to rebuild the id map from what the account holds."
        )


class IdMapConflict(UserError):
    """Pipedrive answered a create (or a look-up adopted) an id the map holds for another record."""

    def __init__(self, run_key: str, entity: str, source_id: str, pipedrive_id: int, other: str, *,
                 operation: str = "create"):
        what = "the create" if operation == "create" else "the look-up"
        super().__init__(
            f"Pipedrive answered {what} of {entity} {source_id} with id {pipedrive_id}, which the id map already "
            f"holds for {other}: the account lost records it had acknowledged, or someone else writes to it. "
            f"Run `flitstack repair {run_key}` to rebuild the id map from what the account holds."
        )
        self.entity, self.source_id, self.pipedrive_id, self.other = entity, source_id, pipedrive_id, other


def holder_of(con: duckdb.DuckDBPyConnection, entity: str, pipedrive_id: int, source_id: str) -> str | None:
    """The other source record the id map holds this Pipedrive id for, if any."""
    rows = con.execute(
        "SELECT source_id FROM meta.id_map WHERE entity = ? AND pipedrive_id = ? AND source_id <> ? LIMIT 1",
        [entity, pipedrive_id, source_id],
    ).fetchall()
    return rows[0][0] if rows else None


@dataclass(frozen=True)
class Mapped:
    pipedrive_id: int
    content_hash: str | None
    payload: dict[str, Any]
    state: str
    created_by_run: str


class LoadStore:
    """Thread-safe writer over one DuckDB connection; every call commits on its own."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._lock = threading.Lock()
        ensure_schema(con)

    # -- reads ---------------------------------------------------------------------------------
    def id_map(self, entity: str) -> dict[str, Mapped]:
        with self._lock:
            rows = self.con.execute(
                "SELECT source_id, pipedrive_id, content_hash, payload, state, created_by_run "
                "FROM meta.id_map WHERE entity = ?",
                [entity],
            ).fetchall()
        return {r[0]: Mapped(r[1], r[2], json.loads(r[3] or "{}"), r[4], r[5]) for r in rows}

    def pending(self, entity: str) -> set[str]:
        with self._lock:
            rows = self.con.execute("SELECT source_id FROM meta.pending_creates WHERE entity = ?", [entity]).fetchall()
        return {r[0] for r in rows}

    # -- writes --------------------------------------------------------------------------------
    def begin_create(self, entity: str, source_id: str, run_key: str) -> None:
        with self._lock:
            self.con.execute(
                "INSERT OR REPLACE INTO meta.pending_creates VALUES (?, ?, ?, ?)",
                [entity, source_id, run_key, _now()],
            )

    def cancel_create(self, entity: str, source_id: str) -> None:
        """A create that was never sent (refused before it left): nothing to look up next time."""
        with self._lock:
            self.con.execute("DELETE FROM meta.pending_creates WHERE entity = ? AND source_id = ?", [entity, source_id])

    def record(
        self,
        run_key: str,
        entity: str,
        source_id: str,
        operation: str,
        pipedrive_id: int | None,
        *,
        content_hash: str | None = None,
        payload: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        tokens: int = 0,
        state: str = "active",
    ) -> None:
        """One landed operation: audit row, id map and pending create change in one transaction."""
        now = _now()
        with self._lock:
            self.con.execute("BEGIN")
            try:
                if operation in ("create", "adopt") and pipedrive_id is not None:
                    other = holder_of(self.con, entity, int(pipedrive_id), source_id)
                    if other is not None:
                        raise IdMapConflict(run_key, entity, source_id, int(pipedrive_id), other, operation=operation)
                self.con.execute(
                    "INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, before, after, "
                    "tokens, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_key, entity, source_id, pipedrive_id, operation, _dump(before), _dump(after), tokens, now],
                )
                if operation in ("create", "adopt"):
                    self.con.execute(
                        f"INSERT INTO meta.id_map VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) {UPSERT_MAPPING}",
                        [entity, source_id, pipedrive_id, content_hash, _dump(payload), run_key, run_key, state, now],
                    )
                    self.con.execute(
                        "DELETE FROM meta.pending_creates WHERE entity = ? AND source_id = ?", [entity, source_id]
                    )
                elif operation in ("update", "restore", "flag"):
                    self.con.execute(
                        "UPDATE meta.id_map SET content_hash = coalesce(?, content_hash), payload = coalesce(?, payload), "
                        "last_run = ?, state = ?, updated_at = ? WHERE entity = ? AND source_id = ?",
                        [content_hash, _dump(payload), run_key, state, now, entity, source_id],
                    )
                elif operation == "delete":
                    self.con.execute("DELETE FROM meta.id_map WHERE entity = ? AND source_id = ?", [entity, source_id])
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    def record_skips(self, run_key: str, entity: str, skips: list[dict[str, Any]]) -> None:
        """Unchanged records, audited in one insert (a re-run of a finished load writes only these)."""
        if not skips:
            return
        frame = pl.DataFrame(
            {"source_id": [s["source_id"] for s in skips], "pipedrive_id": [s["pipedrive_id"] for s in skips]},
            schema={"source_id": pl.String, "pipedrive_id": pl.Int64},
        )
        with self._lock:
            self.con.register("_skips", frame)
            self.con.execute(
                "INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, tokens, recorded_at) "
                "SELECT ?, ?, source_id, pipedrive_id, 'skip', 0, ? FROM _skips",
                [run_key, entity, _now()],
            )
            self.con.unregister("_skips")

    def replace_set_aside(self, run_key: str, entity: str, rows: list[dict[str, Any]]) -> None:
        """This load's set-aside records (the previous attempt's are replaced: they may have loaded since)."""
        with self._lock:
            self.con.execute("BEGIN")
            try:
                self.con.execute("DELETE FROM meta.load_set_aside WHERE run_key = ? AND entity = ?", [run_key, entity])
                if rows:
                    self.con.executemany(
                        "INSERT INTO meta.load_set_aside VALUES (?, ?, ?, ?, ?, ?)",
                        [[run_key, entity, r["source_id"], r["reason_code"], r["message"], _now()] for r in rows],
                    )
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    def forget_mapping(self, run_key: str, entity: str, source_id: str, pipedrive_id: int, *, by: str) -> None:
        """A mapping the account does not back (`loading.repair`): the row goes, every standing audit
        row of this record under that id is retired (the id may be handed out again: no rollback may
        delete or restore it for this record), and a `forget` audit row says so — in one transaction."""
        with self._lock:
            self.con.execute("BEGIN")
            try:
                self.con.execute(
                    "INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, after, tokens, "
                    "recorded_at, rolled_back_by) VALUES (?, ?, ?, ?, 'forget', ?, 0, ?, ?)",
                    [run_key, entity, source_id, pipedrive_id, _dump({"forgotten_by": by}), _now(), by],
                )
                self.con.execute(
                    "UPDATE meta.audit_log SET rolled_back_by = ? WHERE entity = ? AND source_id = ? AND pipedrive_id = ? "
                    "AND rolled_back_by IS NULL",
                    [by, entity, source_id, pipedrive_id],
                )
                self.con.execute(
                    "DELETE FROM meta.id_map WHERE entity = ? AND source_id = ? AND pipedrive_id = ?",
                    [entity, source_id, pipedrive_id],
                )
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    # -- rollback (flitstack_dagster.loading.rollback) -----------------------------------------------
    def mapping(self, entity: str, source_id: str) -> Mapped | None:
        with self._lock:
            rows = self.con.execute(
                "SELECT pipedrive_id, content_hash, payload, state, created_by_run FROM meta.id_map "
                "WHERE entity = ? AND source_id = ?", [entity, source_id],
            ).fetchall()
        if not rows:
            return None
        r = rows[0]
        return Mapped(r[0], r[1], json.loads(r[2] or "{}"), r[3], r[4])

    def record_reversal(
        self,
        seq: int,
        by_run: str,
        entity: str,
        source_id: str,
        *,
        operation: str | None = None,
        pipedrive_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        tokens: int = 0,
        drop_mapping: bool = False,
        mapping_changes: dict[str, Any] | None = None,
    ) -> None:
        """One reversed audit row in one transaction: the rollback's own audit row (when it did
        something), the id-map change and `rolled_back_by` on the original — so an interrupted
        rollback resumes exactly where it stopped."""
        unknown = set(mapping_changes or {}) - set(MAPPING_COLUMNS)
        if unknown:
            raise ValueError(f"not id-map columns: {sorted(unknown)}")
        now = _now()
        with self._lock:
            self.con.execute("BEGIN")
            try:
                if operation is not None:
                    self.con.execute(
                        "INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, before, "
                        "after, tokens, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [by_run, entity, source_id, pipedrive_id, operation, _dump(before), _dump(after), tokens, now],
                    )
                if drop_mapping:
                    self.con.execute(
                        "DELETE FROM meta.id_map WHERE entity = ? AND source_id = ? AND pipedrive_id = ?",
                        [entity, source_id, pipedrive_id],
                    )
                elif mapping_changes:
                    values = [_dump(v) if c == "payload" else v for c, v in mapping_changes.items()]
                    self.con.execute(
                        f"UPDATE meta.id_map SET {', '.join(f'{c} = ?' for c in mapping_changes)}, updated_at = ? "
                        "WHERE entity = ? AND source_id = ?",
                        [*values, now, entity, source_id],
                    )
                self.con.execute(
                    "UPDATE meta.audit_log SET rolled_back_by = ? WHERE seq = ? AND rolled_back_by IS NULL",
                    [by_run, seq],
                )
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    def mark_rolled_back(self, run_key: str, operations: list[str], by_run: str) -> int:
        """Mark a run's live rows of these operations reversed (rows with nothing to undo, e.g. skips)."""
        with self._lock:
            n = self.con.execute(
                "SELECT count(*) FROM meta.audit_log WHERE run_key = ? AND rolled_back_by IS NULL "
                "AND list_contains(?, operation)", [run_key, operations],
            ).fetchall()[0][0]
            self.con.execute(
                "UPDATE meta.audit_log SET rolled_back_by = ? WHERE run_key = ? AND rolled_back_by IS NULL "
                "AND list_contains(?, operation)", [by_run, run_key, operations],
            )
        return int(n)


@dataclass(frozen=True)
class AuditRow:
    seq: int
    run_key: str
    entity: str
    source_id: str
    pipedrive_id: int | None
    operation: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


# id-map columns a rollback may set back (LoadStore.record_reversal)
MAPPING_COLUMNS = ("pipedrive_id", "content_hash", "payload", "created_by_run", "last_run", "state")


def audit_rows(con: duckdb.DuckDBPyConnection, run_key: str, *, live_only: bool = True) -> list[AuditRow]:
    """A run's audit rows in seq order; `live_only` leaves out the rows a rollback already reversed."""
    ensure_schema(con)
    live = "AND rolled_back_by IS NULL" if live_only else ""
    rows = con.execute(
        "SELECT seq, run_key, entity, source_id, pipedrive_id, operation, before, after FROM meta.audit_log "
        f"WHERE run_key = ? {live} ORDER BY seq",
        [run_key],
    ).fetchall()
    return [AuditRow(r[0], r[1], r[2], r[3], r[4], r[5], _load(r[6]), _load(r[7])) for r in rows]


def _dump(v: dict[str, Any] | None) -> str | None:
    return None if v is None else json.dumps(v, sort_keys=True, default=str)


def _now() -> datetime:
    return datetime.now(UTC)


def _load(v: str | None) -> dict[str, Any] | None:
    return None if v is None else json.loads(v)
