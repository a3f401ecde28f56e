"""The archive cutoff: work orders closed before the approved mapping's `archive_before` become one
archive per organization instead of deals, notes and activities.

- archived: a work order whose Date Completed (its calendar date in the tenant's zone) is before the
  cutoff and whose organization (its account's, else its asset's) is migrated; one without an
  organization to attach to loads as a deal like any other. With it go its status changes, labor
  entries, parts lines, activity-log entries and attachment rows (their metadata: the bodies stay in
  the bundle, named by Bundle Path and SHA-256).
- per organization and run two files (pd_files, kind `archive`), attached to it with `POST /v1/files`:
  `archive:<run>:<org>:csv`, every column of every archived row (one row per source row, labelled with
  the record it is and its source id), and `archive:<run>:<org>:html`, the same facts readable, one
  section per work order; split by work order into parts (`…:csv:1`, …) when a file would be over the
  mapping's file size limit. Per run: a run archives its own rows (a sample's, a delta's), and a file,
  once uploaded, is never rewritten. Source text is made safe by `core.safe_text` (a cell never runs as
  a formula, text is escaped) and never cut.
- accounting: each archived source row is loaded into its organization's archive (`pd_files`).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.core.safe_text import csv_row, html_text
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.profile import SIZE_BANDS
from flitstack_dagster.mapping.scope import ArchiveScope
from flitstack_dagster.novo.columns import BY_ENTITY, snake
from flitstack_dagster.shaping.accounting import source_ids
from flitstack_dagster.shaping.common import FILES_SCHEMA, ShapeContext, Shaped, in_set, local_date, sid
from flitstack_dagster.shaping.inputs import StagedInputs, read_staged, staged_schema

ARCHIVE_KIND = "archive"
# the rows that travel with their work order into the archive, in the order the archive shows them
CHILDREN = ("status_log", "labor", "parts_used", "notes", "attachments")
ENTITIES = ("work_orders", *CHILDREN)
FIXED = ["Archived record", "Source ID", "Source file", "Source row"]
FORMATS = {"csv": "text/csv", "html": "text/html"}


@dataclass
class Archive:
    """What the cutoff took out of a run: the inputs left to shape, the archive files, and the source id
    of every archived row (each one loaded into its organization's archive)."""

    rest: StagedInputs
    files: Shaped
    archived: pl.Series
    by_org: dict[str, list[str]]  # organization source id -> its archived work orders' numbers


def closed_before(cutoff: date, tz: str) -> pl.Expr:
    return pl.col("date_completed").is_not_null() & (local_date(pl.col("date_completed"), tz) < cutoff)


def archive_org(org_ids: pl.Series) -> pl.Expr:
    """The organization a work order's archive goes to: its account's, else its asset's, when migrated."""
    acc, ast = sid("account", "account_id"), sid("asset", "asset_id")
    return pl.when(in_set(acc, org_ids)).then(acc).when(in_set(ast, org_ids)).then(ast).otherwise(None)


def of_work_orders(entity: str, df: pl.DataFrame, wos: pl.Series) -> pl.Expr:
    """The rows of `entity` that belong to one of `wos` (never null: a row without a work order is not)."""
    if entity == "attachments":
        mine = (pl.col("parent_type") == "Work Order") & pl.col("parent_id").is_in(wos.implode())
    else:
        mine = pl.col("wo_number").is_in(wos.implode())
    return mine.fill_null(False)


def _archived(inputs: StagedInputs, mapping: Mapping, org_ids: pl.Series, tz: str
              ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The work orders the cutoff archives (with `_archive_org`), and every staged row that goes with
    them, per entity (empty when there is no cutoff)."""
    cutoff = mapping.archive_before
    archived = closed_before(cutoff, tz) & pl.col("_archive_org").is_not_null() if cutoff else pl.lit(False)
    wo = inputs.work_orders.with_columns(archive_org(org_ids).alias("_archive_org")).filter(archived)
    wos = wo["wo_number"]
    taken = {e: inputs.frame(e).filter(of_work_orders(e, inputs.frame(e), wos)) for e in CHILDREN}
    return wo, {"work_orders": wo.drop("_archive_org"), **taken}


def split_archive(inputs: StagedInputs, mapping: Mapping, org_ids: pl.Series, ctx: ShapeContext,
                  out_dir: Path | None = None) -> Archive:
    """Take the work orders the cutoff archives (and their rows) out of `inputs`; write their archives
    under `out_dir` (a temporary folder when None)."""
    wo, taken = _archived(inputs, mapping, org_ids, ctx.timezone)
    if not wo.height:
        return Archive(inputs, Shaped(pl.DataFrame(schema=FILES_SCHEMA)), pl.Series([], dtype=pl.String), {})
    wos = wo["wo_number"]
    rest = inputs.replace(work_orders=inputs.work_orders.filter(~pl.col("wo_number").is_in(wos.implode())),
                          **{e: inputs.frame(e).filter(~of_work_orders(e, inputs.frame(e), wos)) for e in CHILDREN})
    archived = pl.concat([taken[e].select(source_ids(e, taken[e]).alias("s"))["s"] for e in ENTITIES])
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="flitstack-archive-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for org, parts in archive_parts(wo, taken, mapping, udf_labels(inputs.user_defined_fields)).items():
        for n, (numbers, bodies) in enumerate(parts, start=1):
            part = (n, len(parts))
            rows += [_file_row(folder, org, fmt, body, numbers, mapping, part, ctx) for fmt, body in bodies.items()]
    by_org = {org: g["wo_number"].to_list()
              for (org,), g in wo.sort("wo_number").group_by("_archive_org", maintain_order=True)}
    return Archive(rest, Shaped(pl.DataFrame(rows, schema=FILES_SCHEMA)), archived, by_org)


Part = tuple[list[str], dict[str, bytes]]  # the work orders of one part of an archive, and its files' bodies


def archive_parts(wo: pl.DataFrame, taken: dict[str, pl.DataFrame], mapping: Mapping,
                  labels: dict[str, str]) -> dict[str, list[Part]]:
    """Per organization, its archive in parts: one part unless a file would be over the mapping's file
    size limit, then halved by work order until every file fits (a work order is never split)."""
    wo = wo.sort("wo_number")
    org_of = wo.select(pl.col("wo_number").alias("_wo"), "_archive_org")
    per_org = {e: _per_org(e, taken[e], org_of) for e in CHILDREN}
    title = f"Novo work orders closed before {mapping.archive_before.isoformat()}"
    out: dict[str, list[Part]] = {}
    for (org,), group in wo.group_by("_archive_org", maintain_order=True):
        frames = {"work_orders": group.drop("_archive_org"),
                  **{e: per_org[e].get(org, taken[e].clear()) for e in CHILDREN}}

        def build(numbers: list[str], frames=frames, org=org) -> Part:
            mine = {e: f.filter(of_work_orders(e, f, pl.Series(numbers, dtype=pl.String))) for e, f in frames.items()}
            return numbers, {"csv": archive_csv(mine, labels).encode("utf-8"),
                             "html": archive_html(mine, title, org, labels).encode("utf-8")}

        out[org] = _fitting(group["wo_number"].to_list(), build, mapping.options.max_file_bytes)
    return out


def _per_org(entity: str, rows: pl.DataFrame, org_of: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """`rows` of `entity` split by the organization of their work order (`org_of`: _wo -> _archive_org)."""
    wo = pl.col("parent_id") if entity == "attachments" else pl.col("wo_number")
    joined = rows.with_columns(wo.alias("_wo")).join(org_of, on="_wo", how="inner", maintain_order="left")
    return {k[0]: g.drop("_wo", "_archive_org") for k, g in joined.partition_by("_archive_org", as_dict=True).items()}


def _fitting(numbers: list[str], build, limit: int) -> list[Part]:
    part = build(numbers)
    if len(numbers) == 1 or max(len(b) for b in part[1].values()) <= limit:
        return [part]
    half = len(numbers) // 2
    return _fitting(numbers[:half], build, limit) + _fitting(numbers[half:], build, limit)


def archive_scope(inputs: StagedInputs, mapping: Mapping, tz: str) -> ArchiveScope | None:
    """What the cutoff will archive, for the scope document, before shaping: every staged account and
    asset is taken as an organization that migrates; the archives are built (not written) to count
    their parts."""
    if mapping.archive_before is None:
        return None
    org_ids = pl.concat([inputs.accounts.select(sid("account", "account_id"))[:, 0],
                         inputs.assets.select(sid("asset", "asset_id"))[:, 0]])
    wo, taken = _archived(inputs, mapping, org_ids, tz)
    by_org = {org: g.sort("wo_number")["wo_number"].to_list()
              for (org,), g in wo.sort("_archive_org").group_by("_archive_org", maintain_order=True)}
    notes = taken["notes"]["entry_type"].fill_null("").value_counts()
    history = pl.concat([taken["status_log"]["wo_number"], taken["parts_used"]["wo_number"]]).n_unique()
    limit = mapping.options.description_field_max
    return ArchiveScope(
        cutoff=mapping.archive_before, by_org=by_org, rows={e: taken[e].height for e in ENTITIES},
        files=sum(2 * len(p) for p in archive_parts(wo, taken, mapping,
                                                    udf_labels(inputs.user_defined_fields)).values()),
        note_entry_types={t: int(n) for t, n in notes.iter_rows()},
        attachments_by_size=_bands(taken["attachments"]["size"]), with_history=history,
        long_descriptions=taken["work_orders"].filter(pl.col("description").str.len_chars() > limit).height)


def _bands(sizes: pl.Series) -> dict[str, int]:
    """Attachments per size band, as the source profile counts them."""
    out: dict[str, int] = {}
    for size in sizes.to_list():
        band = "unknown" if size is None else next((b for b, lim in SIZE_BANDS if lim is None or size < lim))
        out[band] = out.get(band, 0) + 1
    return out


def read_archive_scope(con: duckdb.DuckDBPyConnection, run_key: str, mapping: Mapping) -> ArchiveScope | None:
    """`archive_scope` of one run's staged rows (None without a cutoff)."""
    if mapping.archive_before is None:
        return None
    tz = con.execute("SELECT timezone FROM raw.bundles WHERE _run_key = ?", [run_key]).fetchall()
    return archive_scope(read_staged(con, run_key), mapping, tz[0][0] if tz else "UTC")


def _file_row(folder: Path, org: str, fmt: str, body: bytes, numbers: list[str], mapping: Mapping,
              part: tuple[int, int], ctx: ShapeContext) -> dict[str, Any]:
    n, of = part
    cutoff = mapping.archive_before.isoformat()
    suffix = f"-part-{n}-of-{of}" if of > 1 else ""
    name = f"novo-archive-{_safe_name(org)}-closed-before-{cutoff}-{_safe_name(ctx.run_key)}{suffix}.{fmt}"
    path = folder / name
    path.write_bytes(body)
    payload = {"file_name": name, "content_type": FORMATS[fmt], "archived_before": cutoff, "work_orders": numbers}
    too_big = len(body) > mapping.options.max_file_bytes  # one work order's rows alone: handled by hand
    return {"run_key": ctx.run_key, "source_entity": "work_order",
            "source_id": archive_id(ctx.run_key, org, fmt, n if of > 1 else None), "origin_id": None,
            "kind": ARCHIVE_KIND, "payload": json.dumps(payload, sort_keys=True), "org_ref": org,
            "person_ref": None, "deal_ref": None, "parent_ref": None, "owner_id": None, "content_hash": None,
            "body_path": str(path.resolve()), "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "file_name": name, "content_type": FORMATS[fmt], "decision": "flag_too_large" if too_big else "upload"}


def archive_id(run_key: str, org: str, fmt: str, part: int | None = None) -> str:
    return f"archive:{run_key}:{org}:{fmt}" + (f":{part}" if part else "")


def _safe_name(text: str) -> str:
    """A file-name part from a source id: letters, digits, dot, dash and underscore only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "organization"


# -- the archive's columns and cells -----------------------------------------------------------------


def udf_labels(udfs: pl.DataFrame) -> dict[str, str]:
    """Staged UDF column -> its header in the export (`udf_ward` -> `UDF: Ward`)."""
    return {snake(c): c for c in udfs["column"].drop_nulls().to_list()}


def columns(entity: str, df: pl.DataFrame, labels: dict[str, str]) -> list[tuple[str, str]]:
    """(label, staged column) of every column of `entity`'s rows: the standard ones, then its UDFs
    (`labels`: their headers in the export)."""
    std = [(c.label, c.name) for c in BY_ENTITY[entity].columns]
    known = set(staged_schema(entity))
    return std + [(labels.get(c, c), c) for c in df.columns if c not in known and not c.startswith("_")]


def cell(value: Any) -> str:
    """A value as the archive shows it: timestamps in UTC, lists joined, yes/no; empty stays empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return "; ".join(cell(v) for v in value)
    return str(value)


def _records(entity: str, df: pl.DataFrame, labels: dict[str, str]) -> list[tuple[str, int, dict[str, str]]]:
    """(source id, source row, {label: shown value}) of each row."""
    cols = columns(entity, df, labels)
    ids = df.select(source_ids(entity, df).alias("s"))["s"].to_list()
    return [(s, r["_row_number"], {label: cell(r.get(name)) for label, name in cols})
            for s, r in zip(ids, df.iter_rows(named=True))]


def archive_csv(frames: dict[str, pl.DataFrame], labels: dict[str, str]) -> str:
    """One CSV row per archived source row; the header is the union of every entity's column labels."""
    header = list(FIXED)
    for e in ENTITIES:
        header += [label for label, _ in columns(e, frames[e], labels) if label not in header]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_row(header))
    for e in ENTITIES:
        for s, row_number, values in _records(e, frames[e], labels):
            fixed = {"Archived record": BY_ENTITY[e].label, "Source ID": s, "Source file": BY_ENTITY[e].file,
                     "Source row": str(row_number)}
            w.writerow(csv_row({**values, **fixed}.get(h, "") for h in header))
    return buf.getvalue()


def _h(value: Any) -> str:
    """Source text escaped for HTML, never cut (an archive keeps every character it can show)."""
    return html_text(value, limit=sys.maxsize)


def archive_html(frames: dict[str, pl.DataFrame], title: str, org: str, labels: dict[str, str]) -> str:
    """The archive readable: one section per work order, its columns, then a table per kind of row."""
    wos = frames["work_orders"]
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{_h(title)} · {_h(org)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:.5em 0}"
           "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left;"
           "white-space:pre-wrap}</style>",
           "</head><body>", f"<h1>{_h(title)}</h1>",
           f"<p>Organization {_h(org)}: {wos.height} work order(s), every column of each and of its rows.</p>"]
    for s, row_number, values in _records("work_orders", wos, labels):
        number = values["WO Number"]
        out += [f'<h2 id="{_h(s)}">{_h(s)} · {_h(values["Title"])}</h2>',
                f"<p>work_orders.csv row {row_number}</p>", "<table>"]
        out += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in values.items()]
        out.append("</table>")
        for e in CHILDREN:
            mine = frames[e].filter(of_work_orders(e, frames[e], pl.Series([number], dtype=pl.String)))
            if mine.height:
                out += _child_table(e, mine, labels)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _child_table(entity: str, df: pl.DataFrame, udfs: dict[str, str]) -> list[str]:
    labels = [label for label, _ in columns(entity, df, udfs)]
    out = [f"<h3>{_h(BY_ENTITY[entity].label)} ({df.height})</h3>", "<table>",
           "<tr>" + "".join(f"<th>{_h(x)}</th>" for x in ["Source ID", "Source row", *labels]) + "</tr>"]
    for s, row_number, values in _records(entity, df, udfs):
        out.append("<tr>" + "".join(f"<td>{_h(x)}</td>" for x in [s, row_number, *values.values()]) + "</tr>")
    return [*out, "</table>"]


def listed_work_orders(fmt: str, text: str) -> set[str]:
    """The source ids of the work orders a downloaded archive lists (what the read-back looks for)."""
    if fmt == "html":
        return {html.unescape(s) for s in re.findall(r'<h2 id="([^"]*)">', text)}
    rows = csv.DictReader(io.StringIO(text))
    return {r["Source ID"] for r in rows if r.get("Archived record") == BY_ENTITY["work_orders"].label}
