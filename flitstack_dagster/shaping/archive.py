"""The archive cutoff: work orders closed before the approved mapping's `archive_before` become one
archive per organization instead of deals, notes and activities.

- archived: a work order whose Date Completed (its calendar date in the tenant's zone) is before the
  cutoff and whose organization (its account's, else its asset's) is migrated; one without an
  organization to attach to loads as a deal like any other. With it go its status changes, labor
  entries, parts lines, activity-log entries and attachment rows (listed in the archive; each
  attachment's body is also uploaded as a file of its own on the archive's organization, by
  shaping/files.py, so its content is reachable in Pipedrive).
- which work orders, their rows and the files' bodies: mapping/archive.py (the scope document counts
  the same files before shaping).
- per organization and run two files (pd_files, kind `archive`), attached to it with `POST /v1/files`:
  `archive:<run>:<org>:csv`, every column of every archived row (one row per source row, labelled with
  the record it is and its source id), and `archive:<run>:<org>:html`, the same facts readable, one
  section per work order; split by work order into parts (`…:csv:1`, …) when a file would be over the
  mapping's file size limit. Per run: a run archives its own rows (a sample's, a delta's), and a file,
  once uploaded, is never rewritten. Source text is made safe by `core.safe_text` (a cell never runs as
  a formula, text is escaped) and never cut.
- a delta's rows of a work order an earlier run archived (mapping.archive.archived_earlier), without
  the work order's row: archived with the delta's rows in its file of that organization, not orphans.
- accounting: each archived source row is loaded into its organization's archive (`pd_files`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flitstack_dagster.mapping.archive import (ARCHIVE_KIND, CHILDREN, ENTITIES, archive_parts, archived_rows,
                                               of_work_orders, udf_labels)
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.ids import PREFIX, source_ids
from flitstack_dagster.shaping.common import FILES_SCHEMA, SET_ASIDE_SCHEMA, ShapeContext, Shaped, concat, set_aside
from flitstack_dagster.staging.frames import StagedInputs

__all__ = ["ARCHIVE_KIND", "Archive", "archive_id", "split_archive"]

# the rows the archive alone holds; an attachment is listed in it and its body uploaded as a file of its own
RECORDS = tuple(e for e in CHILDREN if e != "attachments")
FORMATS = {"csv": "text/csv", "html": "text/html"}


@dataclass
class Archive:
    """What the cutoff took out of a run: the inputs left to shape (the archived work orders' attachments
    stay, to upload to the archive's organization), the archive files, the source id of every other
    archived row (each one loaded into its organization's archive), and each archived work order's
    organization."""

    rest: StagedInputs
    files: Shaped
    archived: pl.Series
    by_org: dict[str, list[str]]  # organization source id -> its archived work orders' numbers

    def orgs(self) -> pl.DataFrame:
        """wo_number -> the organization its archive (and its attachments' files) go to."""
        return pl.DataFrame([(wo, org) for org, wos in self.by_org.items() for wo in wos],
                            schema={"wo_number": pl.String, "archive_org": pl.String}, orient="row")


def split_archive(inputs: StagedInputs, mapping: Mapping, org_ids: pl.Series, ctx: ShapeContext,
                  out_dir: Path | None = None) -> Archive:
    """Take the work orders the cutoff archives (and their rows) out of `inputs`, with the rows of work
    orders an earlier run archived (`ctx.archived_earlier`); write their archives under `out_dir` (a
    temporary folder when None)."""
    orgs, taken = archived_rows(inputs, mapping, org_ids, ctx.timezone, ctx.already_loaded, ctx.archived_earlier)
    if not orgs.height:
        return Archive(inputs, Shaped(pl.DataFrame(schema=FILES_SCHEMA)), pl.Series([], dtype=pl.String), {})
    wos = orgs["wo_number"]
    rest = inputs.replace(work_orders=inputs.work_orders.filter(~pl.col("wo_number").is_in(wos.implode())),
                          **{e: inputs.frame(e).filter(~of_work_orders(e, inputs.frame(e), wos)) for e in RECORDS})
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="flitstack-archive-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows, too_large = [], []
    for org, parts in archive_parts(orgs, taken, mapping, udf_labels(inputs.user_defined_fields)).items():
        for n, (numbers, bodies) in enumerate(parts, start=1):
            part = (n, len(parts))
            files = [_file_row(folder, org, fmt, body, numbers, mapping, part, ctx) for fmt, body in bodies.items()]
            rows += files
            if any(f["decision"] == "flag_too_large" for f in files):
                too_large += numbers
    aside = _too_large(taken, pl.Series(too_large, dtype=pl.String), mapping, ctx)
    archived = pl.concat([taken[e].select(source_ids(e, taken[e]).alias("s"))["s"] for e in ENTITIES if e in RECORDS
                          or e == "work_orders"])
    archived = archived.filter(~archived.is_in(aside["source_id"].implode()))
    by_org = {org: g["wo_number"].to_list()
              for (org,), g in orgs.sort("wo_number").group_by("_archive_org", maintain_order=True)}
    return Archive(rest, Shaped(pl.DataFrame(rows, schema=FILES_SCHEMA), aside), archived, by_org)


def _too_large(taken: dict[str, pl.DataFrame], wos: pl.Series, mapping: Mapping, ctx: ShapeContext) -> pl.DataFrame:
    """Every archived row of a work order whose archive alone is over the file size limit: set aside (its
    file is flagged for manual handling, not uploaded), never counted as loaded."""
    message = (f"its work order's archive alone is over the {mapping.options.max_file_bytes:,} byte limit: "
               "flagged for manual handling")
    return concat([set_aside(taken[e].filter(of_work_orders(e, taken[e], wos)).with_columns(
                       source_ids(e, taken[e]).alias("source_id")), ctx, PREFIX[e], f"{e}.csv", "file_too_large", message)
                   for e in ENTITIES if e in RECORDS or e == "work_orders"], SET_ASIDE_SCHEMA)


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


