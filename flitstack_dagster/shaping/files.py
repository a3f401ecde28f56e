"""Attachments -> Pipedrive files (pd_files), uploaded by the loader with `POST /v1/files`.

- source id `attachment:<Attachment ID>`; kind `work_order` or `asset` (the parent type).
- linked to the work order's deal (`deal_ref`) or the asset's organization (`org_ref`); an archived
  work order's (archive cutoff) to the organization its archive goes to; a parent that is not
  migrated -> set aside `orphan_reference`.
- the body: `body_path` = Bundle Path (relative to the bundle root). When a bundle root is known,
  every body is checked *without ever reading outside the bundle*: a path that leaves the bundle
  (`../`, absolute, drive letter) -> `hostile_path`; no body -> `body_missing`; a size different from
  the row's -> `size_mismatch`; a SHA-256 different from the row's -> `hash_mismatch`. Without a
  bundle root (unit tests, dry shaping) only the path's shape is checked.
- size: the body's actual size when checked, else the declared Size. Over the mapping's
  `max_file_bytes` (Pipedrive's limit unless the mapping sets less): policy `flag` -> decision `flag_too_large` and set aside
  `file_too_large` (manual handling); policy `split` -> decision `split` (the loader uploads parts).
  Otherwise decision `upload`.
- payload: file_name, content_type, the description and original upload time/uploader as text
  (files cannot be backdated).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.bundle import sha256_file
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    SET_ASIDE_SCHEMA,
    ShapeContext,
    Shaped,
    concat,
    finish,
    record_columns,
    set_aside,
    utc_iso,
)


def path_is_safe(rel: str | None) -> bool:
    """A relative path that stays inside its root: no absolute path, drive, `..` or NUL."""
    if not rel or "\x00" in rel:
        return False
    if rel.startswith(("/", "\\")) or PureWindowsPath(rel).drive or PureWindowsPath(rel).is_absolute():
        return False
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    return ".." not in parts


def default_resolver(root: Path) -> Callable[[str], Path | None]:
    """Fallback for `Bundle.resolve_inside`: the resolved path, or None when it leaves `root`."""
    base = root.resolve()

    def resolve(rel: str) -> Path | None:
        if not path_is_safe(rel):
            return None
        p = (base / rel.replace("\\", "/")).resolve()
        return p if p.is_relative_to(base) else None

    return resolve


def check_bodies(df: pl.DataFrame, ctx: ShapeContext) -> pl.DataFrame:
    """Adds `_actual_size` (Int64) and `_body_problem` (reason code or null) per attachment.

    Rows staging passed with landing's `_body_bytes` are already checked (body found inside the
    bundle, size and hash matched; docs/contracts.md), so only the others are opened here.
    """
    if "_body_bytes" in df.columns:
        checked = df.filter(pl.col("_body_bytes").is_not_null())
        if checked.height:
            rest = df.filter(pl.col("_body_bytes").is_null())
            done = checked.with_columns(
                pl.col("_body_bytes").cast(pl.Int64).alias("_actual_size"), pl.lit(None, dtype=pl.String).alias("_body_problem")
            )
            return pl.concat([done, check_bodies(rest.drop("_body_bytes"), ctx).with_columns(
                pl.lit(None, dtype=pl.Int64).alias("_body_bytes"))], how="diagonal_relaxed").select(done.columns).sort("_row_number")
    resolver = ctx.resolve_inside or (default_resolver(ctx.bundle_root) if ctx.bundle_root else None)
    sizes: list[int | None] = []
    problems: list[str | None] = []
    for rel, size, digest in df.select("bundle_path", "size", "sha_256").iter_rows():
        if not path_is_safe(rel):
            sizes.append(None)
            problems.append("body_missing" if not rel else "hostile_path")
            continue
        if resolver is None:
            sizes.append(None)
            problems.append(None)
            continue
        p = resolver(rel)
        if p is None:
            sizes.append(None)
            problems.append("hostile_path")
            continue
        if not p.is_file():
            sizes.append(None)
            problems.append("body_missing")
            continue
        actual = p.stat().st_size
        sizes.append(actual)
        if size is not None and int(size) != actual:
            problems.append("size_mismatch")
        elif digest and sha256_file(p) != digest.strip().lower():
            problems.append("hash_mismatch")
        else:
            problems.append(None)
    return df.with_columns(
        pl.Series("_actual_size", sizes, dtype=pl.Int64), pl.Series("_body_problem", problems, dtype=pl.String)
    )


PROBLEM_MESSAGES = {
    "hostile_path": "bundle path leaves the bundle; the body is not read",
    "body_missing": "attachment body is missing from the bundle",
    "size_mismatch": "body size differs from the attachment row",
    "hash_mismatch": "body SHA-256 differs from the attachment row",
}


def shape_files(attachments: pl.DataFrame, org_ids, deal_ids, mapping: Mapping, ctx: ShapeContext,
                archived: pl.DataFrame | None = None) -> Shaped:
    """`archived`: wo_number -> archive_org of the work orders the archive cutoff archived."""
    opts = mapping.options
    wo = sid("work_order", "parent_id")
    asset = sid("asset", "parent_id")
    on_wo = pl.col("parent_type") == "Work Order"
    archives = (archived if archived is not None else pl.DataFrame(schema={"wo_number": pl.String, "archive_org": pl.String}))
    df = attachments.join(archives.rename({"wo_number": "parent_id", "archive_org": "_archive_org"}), on="parent_id",
                          how="left", maintain_order="left").with_columns(
        sid("attachment", "attachment_id").alias("source_id"),
        pl.when(on_wo & in_set(wo, deal_ids)).then(wo).alias("deal_ref"),
        pl.when((pl.col("parent_type") == "Asset") & in_set(asset, org_ids)).then(asset)
        .when(on_wo).then(pl.col("_archive_org")).alias("org_ref"),
    )
    orphan = df.filter(pl.col("deal_ref").is_null() & pl.col("org_ref").is_null())
    df = check_bodies(df.filter(pl.col("deal_ref").is_not_null() | pl.col("org_ref").is_not_null()), ctx)
    df = df.with_columns(pl.coalesce(pl.col("_actual_size"), pl.col("size").cast(pl.Int64)).alias("_size"))
    too_big = pl.col("_size") > opts.max_file_bytes
    df = df.with_columns(
        pl.when(too_big)
        .then(pl.lit("split" if opts.large_file_policy == "split" else "flag_too_large"))
        .otherwise(pl.lit("upload"))
        .alias("decision")
    )
    bad_body = df.filter(pl.col("_body_problem").is_not_null())
    good = df.filter(pl.col("_body_problem").is_null())
    fields = {
        "file_name": pl.coalesce(pl.col("file_name"), pl.col("bundle_path").str.split("/").list.last()),
        "content_type": pl.col("content_type"),
        "description": pl.col("description"),
        "uploaded_at": utc_iso(pl.col("uploaded_at")),
        "uploaded_by": sid("contact", "uploaded_by_id"),
    }
    frame = good.select(
        *record_columns("attachment", pl.col("parent_type").str.to_lowercase().str.replace(" ", "_"), fields),
        "org_ref",
        "deal_ref",
        pl.col("bundle_path").alias("body_path"),
        pl.col("_size").alias("size"),
        pl.col("sha_256").str.strip_chars().str.to_lowercase().alias("sha256"),
        fields["file_name"].alias("file_name"),
        "content_type",
        "decision",
    )
    sa = concat(
        [
            set_aside(orphan, ctx, "attachment", "attachments.csv", "orphan_reference",
                      pl.format("parent {} {} is not migrated", pl.col("parent_type").fill_null("?"), pl.col("parent_id").fill_null("-"))),
            *[
                set_aside(g, ctx, "attachment", "attachments.csv", code,
                          pl.lit(PROBLEM_MESSAGES[code] + ": ") + pl.col("bundle_path").fill_null("(no path)"))
                for (code,), g in bad_body.group_by("_body_problem")
            ],
            set_aside(
                good.filter(pl.col("decision") == "flag_too_large"), ctx, "attachment", "attachments.csv", "file_too_large",
                pl.format("{} bytes is over the {} byte limit: flagged for manual handling", pl.col("_size"), pl.lit(opts.max_file_bytes)),
            ),
        ],
        SET_ASIDE_SCHEMA,
    )
    return Shaped(finish(frame, ctx, files=True), sa)
