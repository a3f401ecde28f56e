"""Shared pieces of shaping: the context, owners, the output schema, source ids, payload JSON,
content hashes, HTML escaping, value maps and field names from the approved mapping.

Everything here is pure Polars/Python; no Dagster.

Conventions every `pd_*` frame follows (see `OUTPUT_SCHEMA`):
- `source_id` is `<entity>:<novo id>` (`work_order:WO-004211`, `asset:00042`): ids are strings,
  leading zeros survive.
- `origin_id` is the source id of the staged row the record came from (a PM schedule's occurrences,
  a work order's description note); the reconciliation groups by it.
- `payload` is a JSON object whose keys are Pipedrive field *names* (standard keys such as `name`,
  `title`, `due_date`, or custom field names such as `Novo_Priority__c`), sorted; enum values are
  option labels; times are UTC ISO-8601 (`2026-11-20T14:15:00Z`); a reference to another record
  inside the payload is `{"$ref": "<source id>"}`; a null value means "no value" (the loader drops
  it on create and clears the field on update).
- `content_hash` = sha256 of kind + payload + references + owner (+ file body facts): equal for equal
  records across runs, so deltas compare hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping as AbcMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import polars as pl
import polars_hash as plh

from flitstack_dagster.mapping.activity_rows import structural
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.columns import snake

Mode = Literal["sample", "full", "delta"]

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "run_key": pl.String(),
    "source_entity": pl.String(),
    "source_id": pl.String(),
    "origin_id": pl.String(),
    "kind": pl.String(),
    "payload": pl.String(),
    "org_ref": pl.String(),
    "person_ref": pl.String(),
    "deal_ref": pl.String(),
    "parent_ref": pl.String(),
    "owner_id": pl.Int64(),
    "content_hash": pl.String(),
}
FILE_EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "body_path": pl.String(),
    "size": pl.Int64(),
    "sha256": pl.String(),
    "file_name": pl.String(),
    "content_type": pl.String(),
    "decision": pl.String(),
}
FILES_SCHEMA = {**OUTPUT_SCHEMA, **FILE_EXTRA_SCHEMA}
REF_COLUMNS = ("org_ref", "person_ref", "deal_ref", "parent_ref")

SET_ASIDE_SCHEMA: dict[str, pl.DataType] = {
    "run_key": pl.String(),
    "source_entity": pl.String(),
    "source_id": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
    "reason_code": pl.String(),
    "message": pl.String(),
}
WARNING_SCHEMA: dict[str, pl.DataType] = {
    "run_key": pl.String(),
    "code": pl.String(),
    "source_entity": pl.String(),
    "source_id": pl.String(),
    "message": pl.String(),
}

PLACEHOLDER_ID = "placeholder:unassigned_assets"


@dataclass(frozen=True)
class ShapeContext:
    run_key: str
    exported_at: datetime  # UTC instant of the bundle
    timezone: str = "UTC"  # tenant IANA zone
    mode: Mode = "full"
    bundle_root: Path | None = None
    already_loaded: frozenset[str] = frozenset()
    # Bundle.resolve_inside: relative path -> absolute path inside the bundle, or None when it leaves it.
    resolve_inside: Callable[[str], Path | None] | None = None
    # content_hash left null by `finish` and computed as each output is saved (saves a pass at scale)
    hash_on_save: bool = False
    # a delta's record plan: the lines already loaded for work orders (folding.prior_lines), else None
    prior_lines: pl.DataFrame | None = field(default=None, compare=False, hash=False)
    # where the archive cutoff writes its files (shaping/archive.py); None: a temporary folder
    archive_dir: Path | None = None
    # a delta's record plan with deal fields: the deals last sent for the work orders it touches (OUTPUT_SCHEMA)
    prior_deals: pl.DataFrame | None = field(default=None, compare=False, hash=False)
    # the work orders an earlier run archived (mapping.archive.archived_earlier): wo_number, archive_org
    archived_earlier: pl.DataFrame | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.exported_at.tzinfo is None:
            object.__setattr__(self, "exported_at", self.exported_at.replace(tzinfo=timezone.utc))
        object.__setattr__(self, "already_loaded", frozenset(self.already_loaded))


@dataclass(frozen=True)
class Owners:
    """Owner resolution's result: Novo contact id -> Pipedrive user id, plus the fallback user."""

    frame: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"contact_id": pl.String, "owner_id": pl.Int64})
    )
    default_owner_id: int | None = None

    @staticmethod
    def of(pairs: AbcMapping[str, int], default_owner_id: int | None) -> "Owners":
        return Owners(
            pl.DataFrame(
                {"contact_id": list(pairs), "owner_id": list(pairs.values())},
                schema={"contact_id": pl.String, "owner_id": pl.Int64},
            ),
            default_owner_id,
        )


# ---------------------------------------------------------------------------------------- ids


# ---------------------------------------------------------------------------------------- text


_HTML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "\r\n": "<br>", "\n": "<br>"}


def html_text(expr: pl.Expr) -> pl.Expr:
    """Plain text -> HTML that shows exactly that text (`<script>` arrives as text); newlines -> <br>.
    One pass over the text for every escape (replaced text is not scanned again)."""
    return expr.cast(pl.String).str.replace_many(list(_HTML_ESCAPES), list(_HTML_ESCAPES.values()))


def html_line(label: str, expr: pl.Expr) -> pl.Expr:
    """`<b>label:</b> value<br>` or empty string when the value is null/empty."""
    v = html_text(expr.cast(pl.String))
    return pl.when(v.is_not_null() & (v != "")).then(pl.lit(f"<b>{label}:</b> ") + v + pl.lit("<br>")).otherwise(
        pl.lit("")
    )


def clean_name(expr: pl.Expr) -> pl.Expr:
    """Trim and collapse inner whitespace; empty -> null."""
    e = expr.cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


# ---------------------------------------------------------------------------------------- times


def utc_iso(expr: pl.Expr) -> pl.Expr:
    return expr.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%SZ")


def iso_date(expr: pl.Expr) -> pl.Expr:
    return expr.dt.to_string("%Y-%m-%d")


def money(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).round(2)


def monetary(expr: pl.Expr, currency: str) -> pl.Expr:
    v = money(expr)
    return pl.when(v.is_not_null()).then(pl.struct(value=v, currency=pl.lit(currency))).otherwise(None)


def ref(expr: pl.Expr) -> pl.Expr:
    """A reference to another record inside a payload: `{"$ref": source_id}`, resolved at load."""
    return pl.when(expr.is_not_null()).then(pl.struct(expr.alias("$ref"))).otherwise(None)


# ---------------------------------------------------------------------------------------- mapping


def target_name(mapping: Mapping, entity: str, column: str, default: str | None) -> str | None:
    """The Pipedrive field name a source column's *value* lands in: the mapping's row, else the
    spec default.

    A column may have several rows (the proposal also records structural uses: `relationship:parent`,
    `source_id:*`, lookups); those are skipped, as the shaping module implements them itself. Only
    rows with target `none` (no field) mean "not migrated": None.
    """
    rows = [f for f in mapping.fields if f.source_entity == entity and f.source_column == column]
    if not rows:
        return default
    if all(f.target_entity == "none" or not f.target_field for f in rows):
        return None
    value_rows = [f for f in rows if not structural(f)]
    if not value_rows:
        return default
    named = [f.target_field for f in value_rows if f.target_entity != "none" and f.target_field]
    return named[0] if named else None  # the lead pointed the value row at none: not migrated


def value_map(mapping: Mapping, key: str) -> dict[str, str | None] | None:
    """The approved value map for `<entity>.<column>`; None when there is none (identity)."""
    return mapping.value_maps.get(key)


def map_values(expr: pl.Expr, mapping: Mapping, key: str) -> pl.Expr:
    """Source value -> option label through the approved value map.

    No map for the key: the source value is its own label. A map: mapped values get their label;
    values missing from it or mapped to None become null (and `checks.check_values_mapped` blocks
    the load until they are mapped).
    """
    vm = value_map(mapping, key)
    e = expr.cast(pl.String).str.strip_chars()  # trimmed, as the source profile saw the values
    if vm is None:
        return e
    return e.replace_strict(
        pl.Series(list(vm.keys()), dtype=pl.String),
        pl.Series(list(vm.values()), dtype=pl.String),
        default=None,
        return_dtype=pl.String,
    )


def _typed_value(df_schema: pl.Schema, col: str, mapping: Mapping, fm, currency: str) -> pl.Expr:
    dtype = df_schema[col]
    c = pl.col(col)
    key = f"{fm.source_entity}.{fm.source_column}"
    ft = fm.field_type
    if dtype == pl.Boolean:
        c = pl.when(c).then(pl.lit("Yes")).when(~c).then(pl.lit("No")).otherwise(None)
        dtype = pl.String()
    if ft == "enum":
        return map_values(c, mapping, key)
    if ft == "set":
        lst = c if isinstance(dtype, pl.List) else c.cast(pl.String).str.split("; ")
        vm = value_map(mapping, key)
        if vm is None:
            return lst
        return lst.list.eval(
            pl.element().replace_strict(
                pl.Series(list(vm.keys()), dtype=pl.String),
                pl.Series(list(vm.values()), dtype=pl.String),
                default=None,
                return_dtype=pl.String,
            )
        )
    if ft == "monetary":
        return monetary(c, currency)
    if ft == "double":
        return c.cast(pl.Float64)
    if ft == "date":
        if isinstance(dtype, pl.Datetime):
            return iso_date(c.dt.date())
        if dtype == pl.Date:
            return iso_date(c)
        return c.cast(pl.String)
    if isinstance(dtype, pl.List):
        return c.list.join("; ")
    if isinstance(dtype, pl.Datetime):
        return utc_iso(c)
    if dtype == pl.Date:
        return iso_date(c)
    if isinstance(dtype, pl.Decimal):
        return c.cast(pl.Float64).cast(pl.String)
    return c.cast(pl.String)


def mapped_extras(
    mapping: Mapping, entity: str, target: str, df: pl.DataFrame, handled: Iterable[str]
) -> dict[str, pl.Expr]:
    """Payload entries for every mapped column the module does not shape itself (UDFs, extras).

    `handled` lists the source column labels the module already turned into payload keys.
    """
    done = set(handled)
    out: dict[str, pl.Expr] = {}
    for fm in mapping.fields:
        if fm.source_entity != entity or fm.target_entity != target or not fm.target_field:
            continue
        if fm.source_column in done or fm.target_field in out:
            continue
        col = snake(fm.source_column)
        if col not in df.columns:
            continue
        out[fm.target_field] = _typed_value(df.schema, col, mapping, fm, mapping.options.currency)
    return out


# ---------------------------------------------------------------------------------------- frames


def payload_json(fields: AbcMapping[str, pl.Expr]) -> pl.Expr:
    """Canonical JSON object of the payload: keys sorted, so it is stable across runs."""
    if not fields:
        return pl.lit("{}")
    return pl.struct([fields[k].alias(k) for k in sorted(fields)]).struct.json_encode()


def select_rows(df: pl.DataFrame, *exprs: pl.Expr | str) -> pl.DataFrame:
    """`df.select(*exprs)` on Polars' streaming engine, for the selects that build a million records:
    a payload is one expression, which the in-memory engine evaluates on one core; streamed, batches
    of rows are shaped on every core (same rows, same order)."""
    return df.lazy().select(*exprs).collect(engine="streaming")


def record_columns(
    source_entity: str,
    kind: str | pl.Expr,
    fields: AbcMapping[str, pl.Expr],
    source_id: pl.Expr | None = None,
    origin_id: pl.Expr | None = None,
) -> list[pl.Expr]:
    """The columns every record starts with: source entity, source id, origin, kind and payload.

    `source_id` and `origin_id` default to the frame's `source_id` column (a record of its own origin).
    """
    own_id = pl.col("source_id")
    return [
        pl.lit(source_entity).alias("source_entity"),
        (own_id if source_id is None else source_id).alias("source_id"),
        (own_id if origin_id is None else origin_id).alias("origin_id"),
        (pl.lit(kind) if isinstance(kind, str) else kind).alias("kind"),
        payload_json(fields).alias("payload"),
    ]


HASH_PARTS = ("kind", "payload", *REF_COLUMNS, "owner_id")
FILE_HASH_PARTS = (*HASH_PARTS, "body_path", "size", "sha256", "decision")


def content_hash(files: bool = False) -> pl.Expr:
    """`content_hash`: sha256 (hex) of the parts joined by \\x1f, a null part as \\x00.

    Computed by Polars (the polars-hash plugin) rather than hashlib row by row: ~10 M records at a
    million work orders, at a third of the CPU and without holding the GIL while shaping goes on."""
    parts = FILE_HASH_PARTS if files else HASH_PARTS
    joined = pl.concat_str([pl.col(p).cast(pl.String).fill_null("\x00") for p in parts], separator="\x1f")
    return plh.CryptographicHashingNameSpace(joined).sha2_256().alias("content_hash")


def with_content_hash(df: pl.DataFrame, files: bool = False) -> pl.DataFrame:
    """`df` with `content_hash` (see `content_hash`)."""
    return df.with_columns(content_hash(files))


def finish(df: pl.DataFrame, ctx: ShapeContext, files: bool = False) -> pl.DataFrame:
    """Add run_key and content_hash (unless the saving step computes it: `ctx.hash_on_save`), fill
    absent reference columns, select the output schema."""
    schema = FILES_SCHEMA if files else OUTPUT_SCHEMA
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in df.columns and c != "run_key"]
    df = df.with_columns(*missing, pl.lit(ctx.run_key).alias("run_key"))
    df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
    return df if ctx.hash_on_save else with_content_hash(df, files)


def empty_output(files: bool = False) -> pl.DataFrame:
    return pl.DataFrame(schema=FILES_SCHEMA if files else OUTPUT_SCHEMA)


def split_linked(df: pl.DataFrame, linked: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows `linked` holds for, the orphans): the test is evaluated once — a membership test
    against a million ids costs far more than the two filters."""
    mask = df.select(linked.alias("_linked")).to_series()
    return df.filter(mask), df.filter(~mask)


def set_aside(
    df: pl.DataFrame, ctx: ShapeContext, source_entity: str, file: str, reason_code: str, message: pl.Expr | str
) -> pl.DataFrame:
    """Set-aside rows for every row of `df` (which has `source_id` and `_row_number`)."""
    msg = pl.lit(message) if isinstance(message, str) else message
    if df.height == 0:
        return pl.DataFrame(schema=SET_ASIDE_SCHEMA)
    row = pl.col("_row_number") if "_row_number" in df.columns else pl.lit(None)
    return df.select(
        pl.lit(ctx.run_key).alias("run_key"),
        pl.lit(source_entity).alias("source_entity"),
        pl.col("source_id"),
        pl.lit(file).alias("file"),
        row.cast(pl.Int64).alias("row_number"),
        pl.lit(reason_code).alias("reason_code"),
        msg.cast(pl.String).alias("message"),
    ).cast(SET_ASIDE_SCHEMA)


def warnings(df: pl.DataFrame, ctx: ShapeContext, code: str, source_entity: str, message: pl.Expr | str) -> pl.DataFrame:
    msg = pl.lit(message) if isinstance(message, str) else message
    if df.height == 0:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    return df.select(
        pl.lit(ctx.run_key).alias("run_key"),
        pl.lit(code).alias("code"),
        pl.lit(source_entity).alias("source_entity"),
        pl.col("source_id"),
        msg.cast(pl.String).alias("message"),
    ).cast(WARNING_SCHEMA)


def dropped_reference(
    df: pl.DataFrame, ctx: ShapeContext, source_entity: str, named: str, resolved: str, message: str
) -> pl.DataFrame:
    """`reference_dropped` warnings for the rows that name a record (column `named`) the run could not
    resolve (column `resolved` is null); `message` has one `{}` for the named value."""
    return warnings(
        df.filter(pl.col(named).is_not_null() & pl.col(resolved).is_null()),
        ctx,
        "reference_dropped",
        source_entity,
        pl.format(message, pl.col(named)),
    )


def concat(frames: Iterable[pl.DataFrame], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    fs = [f for f in frames if f is not None and f.height > 0]
    if not fs:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.select(list(schema)).cast(schema) for f in fs], how="vertical")


@dataclass
class Shaped:
    """What one shaping function returns: the records, what it set aside, and warnings."""

    frame: pl.DataFrame
    set_aside: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SET_ASIDE_SCHEMA))
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNING_SCHEMA))


def finished(part: Shaped, ctx: ShapeContext, files: bool = False) -> Shaped:
    """A part of an output with its frame finished (`finish`)."""
    return Shaped(finish(part.frame, ctx, files), part.set_aside, part.warnings)


def merge(parts: Iterable[Shaped], files: bool = False) -> Shaped:
    """Finished parts of one output as one."""
    parts = list(parts)
    frame = pl.concat([p.frame for p in parts]) if parts else empty_output(files)
    return Shaped(frame, concat([p.set_aside for p in parts], SET_ASIDE_SCHEMA), concat([p.warnings for p in parts], WARNING_SCHEMA))


def owner_lookup(df: pl.DataFrame, contact_col: str, owners: Owners) -> pl.DataFrame:
    """Adds `owner_id` (the contact's user, else the fallback owner) and `_fallback_owner`."""
    o = owners.frame.select(
        pl.col("contact_id").cast(pl.String).alias("__cid"), pl.col("owner_id").cast(pl.Int64).alias("__oid")
    ).unique("__cid", keep="first")
    out = df.join(o, left_on=contact_col, right_on="__cid", how="left", maintain_order="left")
    return out.with_columns(
        pl.coalesce(pl.col("__oid"), pl.lit(owners.default_owner_id, dtype=pl.Int64)).alias("owner_id"),
        (pl.col("__oid").is_null() & pl.col(contact_col).is_not_null()).alias("_fallback_owner"),
    ).drop("__oid")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
