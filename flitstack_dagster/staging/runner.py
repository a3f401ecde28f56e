"""Run one staging model for one migration run, set-based, in one transaction.

A model's SELECT returns the staged columns plus five bookkeeping columns:
- `_row_reason`, `_row_column`, `_row_raw_value`, `_row_message`: set when the row is NOT staged
  (level `row` in staging.quarantine: missing_required, duplicate_id, orphan_reference, bad_json);
- `_issues`: a list of value-level notices `{column, raw_value, reason_code, message}` for a staged
  row (level `value`: the value is staged empty, or kept as is for unknown_value).

`run_model` writes the rows without `_row_reason` to `staging.<model>` (the run's partition is
replaced) and every notice to `staging.quarantine` (that run + file's rows replaced), atomically.
No Dagster import: the Dagster layer wraps this.
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flitstack_dagster.core.duck import has_table, table_columns
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.novo.columns import NULL_MARKERS
from flitstack_dagster.staging.models import (
    SQL_ROOT,
    RenderContext,
    SqlModel,
    UdfColumn,
    q_ident,
    render,
)

MACROS_FILE = SQL_ROOT / "macros" / "novo_types.sql"
META_COLUMNS = ("_row_reason", "_row_column", "_row_raw_value", "_row_message", "_issues")
# DuckDB's optimizer costs 0.1–0.8 s per model with many typed columns (its cost grows with the
# expanded macro text) and pays that back only on big files: below TINY_MODEL_ROWS source rows it is
# off, below SMALL_MODEL_ROWS its common-subexpression pass is (the results are the same either way).
SKIP_OPTIMIZERS = "common_subexpressions"
TINY_MODEL_ROWS = 5_000
SMALL_MODEL_ROWS = 50_000
QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS staging.quarantine (
    _run_key VARCHAR, file VARCHAR, entity VARCHAR, row_number BIGINT, "column" VARCHAR,
    raw_value VARCHAR, reason_code VARCHAR, message VARCHAR, level VARCHAR
)"""


@dataclass
class ModelResult:
    table: str  # e.g. `staging.stg_work_orders`
    rows: int  # rows staged for this run
    quarantined_rows: int  # distinct rows set aside (level `row`)
    quarantined_values: int  # value-level notices on staged rows
    preview: list[dict] = field(default_factory=list)  # first 5 staged rows (by _row_number)


def _statements(sql: str) -> list[str]:
    """Split a macro file on `;` at the end of a line (comments stripped first)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";[ \t]*$", body, flags=re.MULTILINE) if s.strip()]


def _macro_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_macros(con: duckdb.DuckDBPyConnection, path: Path | str = MACROS_FILE) -> None:
    """(Re)create every `novo_*` macro in the connection's database, plus `novo_macros_version()`."""
    text = Path(path).read_text(encoding="utf-8")
    for stmt in _statements(text):
        con.execute(stmt)
    con.execute(f"CREATE OR REPLACE MACRO novo_macros_version() AS '{_macro_version(text)}'")


def ensure_macros(con: duckdb.DuckDBPyConnection, path: Path | str = MACROS_FILE) -> None:
    """load_macros() unless the database already holds this exact version of the macro file
    (so parallel model runs do not rewrite the catalog for nothing)."""
    want = _macro_version(Path(path).read_text(encoding="utf-8"))
    try:
        have = con.execute("SELECT novo_macros_version()").fetchone()[0]
    except duckdb.Error:
        have = None
    if have != want:
        load_macros(con, path)


def run_context(con: duckdb.DuckDBPyConnection, run_key: str) -> RenderContext:
    """The run's date order, timezone, export instant, kind, UDFs and raw table columns."""
    ensure_macros(con)  # `Required` is read with novo_yesno
    if not has_table(con, "raw", "bundles"):
        raise UserError(f"run {run_key}: nothing landed yet (raw.bundles does not exist); land the bundle first")
    row = con.execute(
        """SELECT date_order, timezone, kind,
                  strftime(timezone('UTC', CAST(exported_at AS TIMESTAMPTZ)), '%Y-%m-%d %H:%M:%S.%f') || '+00'
           FROM raw.bundles WHERE _run_key = ?
           ORDER BY landed_at DESC NULLS LAST LIMIT 1""",
        [run_key],
    ).fetchone()
    if row is None:
        raise UserError(f"run {run_key}: no bundle landed for this run (raw.bundles has no row); land it first")
    date_order, tz, kind, exported_at = row
    date_order = (date_order or "MDY").upper()
    if date_order not in ("MDY", "DMY"):
        raise UserError(f"run {run_key}: date_order {row[0]!r} is not MDY or DMY")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise UserError(f"run {run_key}: timezone {tz!r} is not an IANA time zone name") from None
    raw_columns: dict[str, list[str]] = {}
    for t, c in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'raw' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall():
        raw_columns.setdefault(t, []).append(c)
    udfs: list[UdfColumn] = []
    if "user_defined_fields" in raw_columns and {"Entity", "Column", "Data Type"} <= set(
        raw_columns["user_defined_fields"]
    ):
        have = raw_columns["user_defined_fields"]
        label = '"Label"' if "Label" in have else "NULL"
        choices = '"Choices"' if "Choices" in have else "NULL"
        required = 'coalesce(novo_yesno("Required"), false)' if "Required" in have else "false"
        seen: set[tuple[str, str]] = set()
        for ent, lab, col, dtype, ch, req in con.execute(
            f"""SELECT "Entity", {label}, "Column", "Data Type", {choices}, {required}
                FROM raw.user_defined_fields WHERE _run_key = ? ORDER BY _row_number""",
            [run_key],
        ).fetchall():
            ent, col, dtype = (ent or "").strip(), (col or "").strip(), (dtype or "").strip()
            if col in NULL_MARKERS or (ent, col) in seen:
                continue
            seen.add((ent, col))
            opts = tuple(x.strip() for x in (ch or "").split("|") if x.strip() not in NULL_MARKERS)
            udfs.append(UdfColumn(ent, (lab or col).strip(), col, dtype or "Text", opts, bool(req)))
    earlier: list[str] = []
    if (kind or "").lower() == "delta":
        earlier = [r for (r,) in con.execute(
            """SELECT _run_key FROM raw.bundles
               WHERE tenant = (SELECT tenant FROM raw.bundles WHERE _run_key = ? LIMIT 1)
                 AND _run_key <> ? AND CAST(exported_at AS TIMESTAMPTZ) <= CAST(? AS TIMESTAMPTZ)
               GROUP BY _run_key ORDER BY max(CAST(exported_at AS TIMESTAMPTZ)), _run_key""",
            [run_key, run_key, exported_at],
        ).fetchall()]
    staging_tables = {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall()}
    return RenderContext(
        run_key=run_key, date_order=date_order, timezone=tz, exported_at=exported_at,
        kind=(kind or "full"), udfs=udfs, raw_columns=raw_columns, earlier_runs=earlier,
        staging_tables=staging_tables,
    )


def _sync_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str, result_cols: list[tuple[str, str]]) -> None:
    have = {c for c, _ in table_columns(con, schema, table)}
    for name, dtype in result_cols:
        if name not in have:  # a run that brings a new UDF column
            con.execute(f"ALTER TABLE {q_ident(schema)}.{q_ident(table)} ADD COLUMN {q_ident(name)} {dtype}")


def _source_rows(con: duckdb.DuckDBPyConnection, model: SqlModel, run_key: str) -> int:
    """Rows the model reads from its raw sources for this run (0 for a table that does not exist)."""
    total = 0
    for schema, table in model.sources:
        if has_table(con, schema, table):
            total += con.execute(f"SELECT count(*) FROM {q_ident(schema)}.{q_ident(table)} WHERE _run_key = ?",
                                 [run_key]).fetchall()[0][0]
    return total


def _create_result(con: duckdb.DuckDBPyConnection, tmp: str, sql: str, rows: int) -> None:
    """The model's SELECT into a temp table; a tiny one planned without the optimizer, a small one
    without SKIP_OPTIMIZERS (each restored after)."""
    create = f"CREATE OR REPLACE TEMP TABLE {tmp} AS {sql}"
    if rows >= SMALL_MODEL_ROWS:
        con.execute(create)
        return
    if rows < TINY_MODEL_ROWS:
        con.execute("PRAGMA disable_optimizer")
        try:
            con.execute(create)
        finally:
            con.execute("PRAGMA enable_optimizer")
        return
    (before,) = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0]
    skip = ",".join(x for x in dict.fromkeys([*filter(None, before.split(",")), SKIP_OPTIMIZERS]))
    con.execute(f"SET disabled_optimizers = '{skip}'")
    try:
        con.execute(create)
    finally:
        con.execute(f"SET disabled_optimizers = '{before}'")


def run_model(con: duckdb.DuckDBPyConnection, model: SqlModel, run_key: str) -> ModelResult:
    """Stage `model` for `run_key`: replace that run's rows of the table and its quarantine rows."""
    ensure_macros(con)  # the model cannot run without them
    ctx = run_context(con, run_key)
    for r in model.refs:
        if not has_table(con, "staging", r):
            raise UserError(f"{model.name} needs {r} (ref in {model.path.name}), which has not been staged yet: "
                            f"run {r} first")
    sql = render(model, ctx)
    schema, table = model.layer, model.name
    target = f"{q_ident(schema)}.{q_ident(table)}"
    tmp = q_ident(f"__result_{table}")
    con.execute("BEGIN TRANSACTION")
    try:
        _create_result(con, tmp, sql, _source_rows(con, model, run_key))
        result_cols = [(c, t) for c, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = 'temp' AND table_name = ? ORDER BY ordinal_position",
            [f"__result_{table}"],
        ).fetchall() if c not in META_COLUMNS]
        missing_meta = set(META_COLUMNS) - {
            c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'temp' AND table_name = ?",
                [f"__result_{table}"]).fetchall()}
        if missing_meta:
            raise UserError(f"{model.path}: the model's SELECT lacks {', '.join(sorted(missing_meta))}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q_ident(schema)}")
        con.execute("CREATE SCHEMA IF NOT EXISTS staging")
        staged_cols = ", ".join(q_ident(c) for c, _ in result_cols)
        if not has_table(con, schema, table):
            con.execute(f"CREATE TABLE {target} AS SELECT {staged_cols} FROM {tmp} WHERE false")
        else:
            _sync_columns(con, schema, table, result_cols)
        con.execute(f"DELETE FROM {target} WHERE _run_key = ?", [run_key])
        con.execute(f"INSERT INTO {target} BY NAME SELECT {staged_cols} FROM {tmp} WHERE _row_reason IS NULL")
        con.execute(QUARANTINE_DDL)
        con.execute("DELETE FROM staging.quarantine WHERE _run_key = ? AND file = ?", [run_key, model.file])
        con.execute(
            f"""INSERT INTO staging.quarantine
                SELECT ?, ?, ?, _row_number, _row_column, _row_raw_value, _row_reason, _row_message, 'row'
                FROM {tmp} WHERE _row_reason IS NOT NULL""",
            [run_key, model.file, model.entity],
        )
        con.execute(
            f"""INSERT INTO staging.quarantine
                SELECT ?, ?, ?, _row_number, i."column", i.raw_value, i.reason_code, i.message, 'value'
                FROM (SELECT _row_number, unnest(_issues) AS i FROM {tmp}
                      WHERE _row_reason IS NULL AND len(_issues) > 0)""",
            [run_key, model.file, model.entity],
        )
        staged, qrows, qvalues = con.execute(
            f"""SELECT count(*) FILTER (WHERE _row_reason IS NULL),
                       count(*) FILTER (WHERE _row_reason IS NOT NULL),
                       coalesce(sum(len(_issues)) FILTER (WHERE _row_reason IS NULL), 0)
                FROM {tmp}"""
        ).fetchone()
        cur = con.execute(
            f"SELECT {staged_cols} FROM {tmp} WHERE _row_reason IS NULL ORDER BY _row_number LIMIT 5")
        names = [d[0] for d in cur.description]
        preview = [dict(zip(names, r)) for r in cur.fetchall()]
        con.execute(f"DROP TABLE {tmp}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return ModelResult(
        table=f"{schema}.{table}", rows=int(staged), quarantined_rows=int(qrows),
        quarantined_values=int(qvalues), preview=preview,
    )


def run_all(con: duckdb.DuckDBPyConnection, run_key: str, models: list[SqlModel] | None = None) -> dict[str, ModelResult]:
    """Every model in dependency order (convenience for tests and the CLI)."""
    from flitstack_dagster.staging.models import discover_models

    return {m.name: run_model(con, m, run_key) for m in (models or discover_models())}
