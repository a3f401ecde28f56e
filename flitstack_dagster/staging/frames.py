"""The staged tables as Polars frames (one per Novo entity), for one migration run.

`StagedInputs` normalises whatever it is given to the staging contract (docs/contracts.md): every
standard column present with its staged type (absent ones as nulls), `_run_key`/`_row_number`
present, timestamps in UTC. Tests therefore build frames with only the columns they care about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import duckdb
import polars as pl

from flitstack_dagster.core.duck import has_table, read_frame
from flitstack_dagster.novo.columns import BY_ENTITY, ColType

_DTYPE: dict[ColType, pl.DataType] = {
    ColType.ID: pl.String(),
    ColType.TEXT: pl.String(),
    ColType.LONG_TEXT: pl.String(),
    ColType.TIME: pl.String(),
    ColType.EMAIL: pl.String(),
    ColType.DATE: pl.Date(),
    ColType.DATETIME: pl.Datetime("us", "UTC"),
    ColType.MONEY: pl.Decimal(18, 2),
    ColType.NUMBER: pl.Float64(),
    ColType.YESNO: pl.Boolean(),
    ColType.MULTI: pl.List(pl.String()),
}
JSON_ENTITIES = ("workflow_rules", "form_configurations")
QUARANTINE_SCHEMA = {
    "_run_key": pl.String(),
    "file": pl.String(),
    "entity": pl.String(),
    "row_number": pl.Int64(),
    "column": pl.String(),
    "raw_value": pl.String(),
    "reason_code": pl.String(),
    "message": pl.String(),
    "level": pl.String(),
}


def staged_schema(entity: str) -> dict[str, pl.DataType]:
    if entity in JSON_ENTITIES:
        return {"_run_key": pl.String(), "_row_number": pl.Int64(), "json": pl.String()}
    f = BY_ENTITY[entity]
    out: dict[str, pl.DataType] = {"_run_key": pl.String(), "_row_number": pl.Int64()}
    for c in f.columns:
        out[c.name] = _DTYPE[c.type]
    return out


def normalise(entity: str, df: pl.DataFrame | None) -> pl.DataFrame:
    """Bring a frame to the staged schema of `entity`; unknown (UDF) columns are kept as they are."""
    schema = staged_schema(entity)
    if df is None:
        return pl.DataFrame(schema=schema)
    if "_row_number" not in df.columns:
        df = df.with_row_index("_row_number", offset=1)
    exprs = []
    for c, t in schema.items():
        if c not in df.columns:
            exprs.append(pl.lit(None, dtype=t).alias(c))
            continue
        have = df.schema[c]
        if isinstance(t, pl.Datetime):
            if isinstance(have, pl.Datetime):
                e = pl.col(c).dt.replace_time_zone("UTC") if have.time_zone is None else pl.col(c).dt.convert_time_zone("UTC")
                exprs.append(e.dt.cast_time_unit("us").alias(c))
            else:
                exprs.append(pl.col(c).cast(t).alias(c))
        elif isinstance(t, pl.Decimal) and have != t:
            exprs.append(pl.col(c).cast(pl.Float64).round(2).cast(t).alias(c))
        else:
            exprs.append(pl.col(c).cast(t).alias(c))
    extra = [c for c in df.columns if c not in schema]
    return df.select(*exprs, *extra)


@dataclass
class StagedInputs:
    """One migration run's staged rows. Missing entities are empty frames of the staged schema."""

    departments: pl.DataFrame | None = None
    accounts: pl.DataFrame | None = None
    contacts: pl.DataFrame | None = None
    assets: pl.DataFrame | None = None
    work_orders: pl.DataFrame | None = None
    labor: pl.DataFrame | None = None
    parts_used: pl.DataFrame | None = None
    status_log: pl.DataFrame | None = None
    notes: pl.DataFrame | None = None
    pm_schedules: pl.DataFrame | None = None
    pm_history: pl.DataFrame | None = None
    inventory: pl.DataFrame | None = None
    asset_parts: pl.DataFrame | None = None
    attachments: pl.DataFrame | None = None
    user_defined_fields: pl.DataFrame | None = None
    deleted: pl.DataFrame | None = None
    workflow_rules: pl.DataFrame | None = None
    form_configurations: pl.DataFrame | None = None
    quarantine: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_unread", {})  # entity -> (read it, its row count): see `defer`
        for f in fields(self):
            if f.name == "quarantine":
                q = self.quarantine
                self.quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA) if q is None else q
                continue
            setattr(self, f.name, normalise(f.name, getattr(self, f.name)))

    def __getattribute__(self, name: str):
        if name in _ENTITIES:  # a deferred frame is read the first time anything asks for it
            unread = object.__getattribute__(self, "_unread")
            if name in unread:
                read, _ = unread.pop(name)
                object.__setattr__(self, name, normalise(name, read()))
        return object.__getattribute__(self, name)

    @staticmethod
    def entities() -> list[str]:
        return list(_ENTITY_ORDER)

    def frame(self, entity: str) -> pl.DataFrame:
        return getattr(self, entity)

    def defer(self, entity: str, read: Callable[[], pl.DataFrame], rows: int) -> None:
        """Read `entity`'s frame only when it is first asked for (`rows` long): at scale a big staged
        table is then not held while the steps before the one that needs it run."""
        self._unread[entity] = (read, rows)

    def height(self, entity: str) -> int:
        """An entity's row count, without reading a deferred frame."""
        unread = self._unread.get(entity)
        return unread[1] if unread else self.frame(entity).height

    def release(self, *entities: str) -> None:
        """Drop frames no later step reads (streamed shaping at scale); they become empty."""
        for e in entities:
            self._unread.pop(e, None)
            setattr(self, e, normalise(e, None))

    def replace(self, **frames: pl.DataFrame) -> "StagedInputs":
        """The same inputs with these frames replaced; a deferred frame stays deferred."""
        kw = {e: self.frame(e) for e in self.entities() if e not in self._unread}
        kw.update(frames)
        out = StagedInputs(**kw, quarantine=self.quarantine)
        for e, unread in self._unread.items():
            if e not in frames:
                out.defer(e, *unread)
        return out


_ENTITY_ORDER = tuple(f for f in StagedInputs.__dataclass_fields__ if f != "quarantine")
_ENTITIES = frozenset(_ENTITY_ORDER)


def read_staged(con: duckdb.DuckDBPyConnection, run_key: str, defer: tuple[str, ...] = ()) -> StagedInputs:
    """Read one run's rows of every `staging.stg_<entity>` (and the JSON raw tables) into frames; the
    entities in `defer` are read when first asked for (`StagedInputs.defer`)."""
    frames: dict[str, pl.DataFrame] = {}
    tables = {}
    for entity in StagedInputs.entities():
        schema, table = ("raw", entity) if entity in JSON_ENTITIES else ("staging", f"stg_{entity}")
        if has_table(con, schema, table):
            tables[entity] = f'"{schema}"."{table}"'
            if entity not in defer:
                frames[entity] = _read_table(con, tables[entity], run_key)
    q = None
    if has_table(con, "staging", "quarantine"):
        q = con.sql("select * from staging.quarantine where _run_key = ?", params=[run_key]).pl()
    inputs = StagedInputs(**frames, quarantine=q)
    for entity in defer:
        if entity in tables:
            rows = con.execute(f"select count(*) from {tables[entity]} where _run_key = ?", [run_key]).fetchall()[0][0]
            inputs.defer(entity, lambda t=tables[entity]: _read_table(con, t, run_key), rows)
    return inputs


def _read_table(con: duckdb.DuckDBPyConnection, table: str, run_key: str) -> pl.DataFrame:
    # sorted here rather than by DuckDB: its sort materialises the table and keeps the memory; the run
    # key is one value for every row, held once (a scalar column), not per row
    df = read_frame(con, f"select * exclude (_run_key) from {table} where _run_key = ?", [run_key])
    df = df.with_columns(pl.lit(run_key, dtype=pl.String).alias("_run_key"))
    return df if df["_row_number"].is_sorted() else df.sort("_row_number")


def local_date(expr: pl.Expr, tz: str) -> pl.Expr:
    """A staged (UTC) timestamp's calendar date in the tenant's zone (what the user saw in Novo)."""
    return expr.dt.convert_time_zone(tz).dt.date()
