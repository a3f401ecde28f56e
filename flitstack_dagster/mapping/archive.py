"""What the archive cutoff archives, decided before shaping so the scope document, `flitstack calendar`
and the ETA count what shaping will take out: the work orders closed before the approved mapping's
`archive_before` (per organization), every row that goes with them, and the archive files' bodies
(one CSV and one readable HTML per organization, split by work order into parts when over the file
size limit). Shaping (shaping/archive.py) writes and lists these same files.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sys
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from flitstack_dagster.core import duck
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.safe_text import csv_row, html_text
from flitstack_dagster.core.settings import Paths
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.profile import SIZE_BANDS
from flitstack_dagster.mapping.scope import ArchiveScope
from flitstack_dagster.novo.columns import BY_ENTITY, snake
from flitstack_dagster.novo.ids import PREFIX, in_set, sid, source_ids
from flitstack_dagster.staging.frames import StagedInputs, local_date, normalise, read_staged, staged_schema

# the rows that travel with their work order into the archive, in the order the archive shows them
CHILDREN = ("status_log", "labor", "parts_used", "notes", "attachments")
ENTITIES = ("work_orders", *CHILDREN)
FIXED = ["Archived record", "Source ID", "Source file", "Source row"]
ARCHIVE_KIND = "archive"  # the kind of an archive file in pd_files

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


def archived_rows(inputs: StagedInputs, mapping: Mapping, org_ids: pl.Series, tz: str,
                  loaded: frozenset[str] = frozenset(), earlier: pl.DataFrame | None = None
                  ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Every work order the cutoff archives in this run with its organization (`wo_number`,
    `_archive_org`), and every staged row that goes with them, per entity (empty when there is no
    cutoff). A work order `loaded` already as a deal stays one: archiving it too would put its facts in
    two places. A work order an earlier run archived (`earlier`, see `archived_earlier`) whose rows this
    run carries without it: its rows go to this run's archive of the same organization."""
    cutoff = mapping.archive_before
    archived = closed_before(cutoff, tz) & pl.col("_archive_org").is_not_null() if cutoff else pl.lit(False)
    if loaded:
        archived = archived & ~in_set(sid(PREFIX["work_orders"], "wo_number"), loaded)
    wo = inputs.work_orders.with_columns(archive_org(org_ids).alias("_archive_org")).filter(archived)
    orgs = wo.select("wo_number", "_archive_org")
    if cutoff and earlier is not None and earlier.height:
        orgs = pl.concat([orgs, _earlier_with_rows(inputs, earlier, loaded)])
    wos = orgs["wo_number"]
    # nothing archived: the other staged tables are not read (a deferred one stays unread)
    taken = {e: inputs.frame(e).filter(of_work_orders(e, inputs.frame(e), wos)) if wos.len() else normalise(e, None)
             for e in CHILDREN}
    return orgs, {"work_orders": wo.drop("_archive_org"), **taken}


def _earlier_with_rows(inputs: StagedInputs, earlier: pl.DataFrame, loaded: frozenset[str]) -> pl.DataFrame:
    """The work orders of `earlier` (wo_number, archive_org) this run carries rows of but not the work
    order itself (one it carries is decided by its own row), and that are not deals now."""
    mine = pl.concat([_numbers(e, inputs.frame(e)) for e in CHILDREN])
    rows_only = earlier.filter(pl.col("wo_number").is_in(mine.implode())
                               & ~pl.col("wo_number").is_in(inputs.work_orders["wo_number"].implode()))
    if loaded:
        rows_only = rows_only.filter(~in_set(sid(PREFIX["work_orders"], "wo_number"), loaded))
    return rows_only.select("wo_number", pl.col("archive_org").alias("_archive_org")).sort("wo_number")


def _numbers(entity: str, rows: pl.DataFrame) -> pl.Series:
    """The numbers of the work orders `rows` of `entity` belong to (an attachment's parent work order)."""
    if entity == "attachments":
        return rows.filter(pl.col("parent_type") == "Work Order")["parent_id"].drop_nulls()
    return rows["wo_number"].drop_nulls()


EARLIER_SCHEMA = {"wo_number": pl.String, "archive_org": pl.String}


def archived_earlier(con: duckdb.DuckDBPyConnection, run_key: str) -> pl.DataFrame:
    """The work orders an earlier run archived (wo_number, archive_org): those an archive file of another
    run lists, the file still in Pipedrive; when several do, the organization of the latest file."""
    if not (duck.has_table(con, "shaped", "pd_files") and duck.has_table(con, "meta", "id_map")):
        return pl.DataFrame(schema=EARLIER_SCHEMA)
    files = con.execute(
        "SELECT s.org_ref, s.payload FROM shaped.pd_files s JOIN meta.id_map m ON m.entity = 'file' "
        "AND m.source_id = s.source_id AND m.state <> 'deleted' WHERE s.kind = ? AND s.run_key <> ? "
        "ORDER BY m.updated_at, s.source_id", [ARCHIVE_KIND, run_key]).fetchall()
    org_of = {wo: org for org, payload in files for wo in json.loads(payload)["work_orders"]}
    return pl.DataFrame(list(org_of.items()), schema=EARLIER_SCHEMA, orient="row")


Part = tuple[list[str], dict[str, bytes]]  # the work orders of one part of an archive, and its files' bodies


def archive_parts(orgs: pl.DataFrame, taken: dict[str, pl.DataFrame], mapping: Mapping,
                  labels: dict[str, str]) -> dict[str, list[Part]]:
    """Per organization (`orgs`: wo_number -> _archive_org), its archive in parts: one part unless a file
    would be over the mapping's file size limit, then halved by work order until every file fits (a work
    order is never split)."""
    orgs = orgs.sort("wo_number")
    org_of = orgs.select(pl.col("wo_number").alias("_wo"), "_archive_org")
    per_org = {e: _per_org(e, taken[e], org_of) for e in ENTITIES}
    title = f"Novo work orders closed before {mapping.archive_before.isoformat()}"
    out: dict[str, list[Part]] = {}
    for (org,), group in orgs.group_by("_archive_org", maintain_order=True):
        frames = {e: per_org[e].get(org, taken[e].clear()) for e in ENTITIES}

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


def archive_scope(inputs: StagedInputs, mapping: Mapping, tz: str,
                  earlier: pl.DataFrame | None = None) -> ArchiveScope | None:
    """What the cutoff will archive, for the scope document, before shaping: every staged account and
    asset is taken as an organization that migrates; the archives are built (not written) to count
    their parts. `earlier`: the work orders earlier runs archived (`archived_earlier`)."""
    if mapping.archive_before is None:
        return None
    org_ids = pl.concat([inputs.accounts.select(sid("account", "account_id"))[:, 0],
                         inputs.assets.select(sid("asset", "asset_id"))[:, 0]])
    orgs, taken = archived_rows(inputs, mapping, org_ids, tz, earlier=earlier)
    by_org = {org: g.sort("wo_number")["wo_number"].to_list()
              for (org,), g in orgs.sort("_archive_org").group_by("_archive_org", maintain_order=True)}
    notes = taken["notes"]["entry_type"].fill_null("").value_counts()
    history = pl.concat([taken["status_log"]["wo_number"], taken["parts_used"]["wo_number"]]).n_unique()
    limit = mapping.options.description_field_max
    return ArchiveScope(
        cutoff=mapping.archive_before, by_org=by_org, rows={e: taken[e].height for e in ENTITIES},
        rows_only=orgs.height - taken["work_orders"].height,
        files=sum(2 * len(p) for p in archive_parts(orgs, taken, mapping,
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
    return archive_scope(read_staged(con, run_key), mapping, tz[0][0] if tz else "UTC",
                         archived_earlier(con, run_key))



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
    wos, earlier = frames["work_orders"], _rows_only(frames)
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{_h(title)} · {_h(org)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:.5em 0}"
           "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left;"
           "white-space:pre-wrap}</style>",
           "</head><body>", f"<h1>{_h(title)}</h1>",
           f"<p>Organization {_h(org)}: {wos.height} work order(s), every column of each and of its rows"
           + (f"; rows of {len(earlier)} work order(s) archived by an earlier run" if earlier else "") + ".</p>"]
    for s, row_number, values in _records("work_orders", wos, labels):
        out += [f'<h2 id="{_h(s)}">{_h(s)} · {_h(values["Title"])}</h2>',
                f"<p>work_orders.csv row {row_number}</p>", "<table>"]
        out += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in values.items()]
        out.append("</table>")
        out += _children_html(frames, values["WO Number"], labels)
    for number in earlier:
        s = f"{PREFIX['work_orders']}:{number}"
        out += [f'<h2 id="{_h(s)}">{_h(s)} · archived by an earlier run</h2>',
                "<p>The work order is in an earlier archive of this organization; these are its rows this "
                "export adds.</p>"]
        out += _children_html(frames, number, labels)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _rows_only(frames: dict[str, pl.DataFrame]) -> list[str]:
    """The work orders an archive holds rows of without their own row (archived by an earlier run)."""
    numbers = pl.concat([_numbers(e, frames[e]) for e in CHILDREN])
    return sorted(set(numbers.to_list()) - set(frames["work_orders"]["wo_number"].to_list()))


def _children_html(frames: dict[str, pl.DataFrame], number: str, labels: dict[str, str]) -> list[str]:
    out = []
    for e in CHILDREN:
        mine = frames[e].filter(of_work_orders(e, frames[e], pl.Series([number], dtype=pl.String)))
        if mine.height:
            out += _child_table(e, mine, labels)
    return out


def _child_table(entity: str, df: pl.DataFrame, udfs: dict[str, str]) -> list[str]:
    labels = [label for label, _ in columns(entity, df, udfs)]
    out = [f"<h3>{_h(BY_ENTITY[entity].label)} ({df.height})</h3>", "<table>",
           "<tr>" + "".join(f"<th>{_h(x)}</th>" for x in ["Source ID", "Source row", *labels]) + "</tr>"]
    for s, row_number, values in _records(entity, df, udfs):
        out.append("<tr>" + "".join(f"<td>{_h(x)}</td>" for x in [s, row_number, *values.values()]) + "</tr>")
    return [*out, "</table>"]


def listed_work_orders(fmt: str, text: str) -> set[str]:
    """The source ids of the work orders a downloaded archive lists, by their own row or by rows of theirs
    (what the read-back looks for)."""
    if fmt == "html":
        return {html.unescape(s) for s in re.findall(r'<h2 id="([^"]*)">', text)}
    return {wo for r in csv.DictReader(io.StringIO(text)) if (wo := _work_order_of(r))}


def _work_order_of(row: dict[str, str]) -> str | None:
    """The work order a CSV row of an archive is or belongs to (a row of one archived by an earlier run
    names it in its WO Number, or its Parent ID for an attachment)."""
    if row.get("Archived record") == BY_ENTITY["work_orders"].label:
        return row["Source ID"]
    number = row.get("WO Number") or (row.get("Parent ID") if row.get("Parent Type") == "Work Order" else None)
    return f"{PREFIX['work_orders']}:{number}" if number else None



def run_archive_scope(paths: Paths, run_key: str, mapping: Mapping,
                      con: duckdb.DuckDBPyConnection | None = None) -> ArchiveScope | None:
    """What the cutoff archives in a run's staged rows: the one count the scope document, `flitstack
    calendar` and the ETA share (None without a cutoff). Counted with `con` by the scope document and
    kept in the run's work folder per mapping, so the ETA reads it while a step holds the DuckDB file;
    without `con` and nothing kept, it opens the project's DuckDB read-only."""
    if mapping.archive_before is None:
        return None
    kept, stamp = paths.work / run_key / "archive_scope.json", mapping.content_hash()
    if con is None:
        try:
            saved = json.loads(kept.read_text(encoding="utf-8"))
            if saved.get("mapping") == stamp:
                return ArchiveScope.model_validate(saved["scope"])
        except (OSError, ValueError, KeyError):
            pass
    scope = read_archive_scope(con, run_key, mapping) if con is not None else _count_now(paths, run_key, mapping)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps({"mapping": stamp, "scope": scope.model_dump(mode="json")}), encoding="utf-8")
    return scope


def _count_now(paths: Paths, run_key: str, mapping: Mapping) -> ArchiveScope | None:
    try:
        own = duck.connect(paths.duckdb, read_only=True)
    except duckdb.Error:
        raise UserError(f"the archive cutoff's work orders cannot be counted now: {paths.duckdb} is in use by a "
                        "running step; try again when it has finished.") from None
    with own:
        return read_archive_scope(own, run_key, mapping)
