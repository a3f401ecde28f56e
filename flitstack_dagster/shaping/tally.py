"""What the checks, the reconciliation and the asset metadata need of each shaped output, taken as
the output is produced, so a saved output's frame can be dropped at once (at a million work orders
the seven frames together are several gigabytes).

Outputs arrive in foreign-key order; a reference to an output not seen yet is kept as pending and
resolved against every output at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.shaping.common import REF_COLUMNS

REQUIRED: dict[str, tuple[str, ...]] = {e.shaped_table: e.required for e in ENTITIES}
# which reference column must point at which output
REF_TARGET = {col: ENTITIES[parent].shaped_table for col, parent in ENTITIES.reference_columns.items()}
# what references (and `$ref`s) point at
REFERENCE_TARGETS = tuple(ENTITIES[name].shaped_table for name in ENTITIES.referenced)
PREVIEW_ROWS = 5
_REF = r'\{"\$ref":"((?:[^"\\]|\\.)*)"\}'


def payload_refs(df: pl.DataFrame) -> pl.DataFrame:
    """Every `{"$ref": id}` inside payloads (top-level values), with the record's source id."""
    has = df.select("source_id", "payload").filter(pl.col("payload").str.contains('{"$ref":', literal=True))
    return (
        has.select("source_id", pl.col("payload").str.extract_all(_REF).alias("ref")).explode("ref")
        .drop_nulls("ref").with_columns(pl.col("ref").str.replace(r'^\{"\$ref":"', "").str.replace(r'"\}$', ""))
    )


def missing_key(key: str) -> pl.Expr:
    """The payload lacks top-level `key` or has it null. Payloads are flat JSON objects whose only
    nested objects are `{"$ref": …}`, and a quote inside a string value is escaped, so `"key":` can
    only be that key: a literal search, much cheaper than parsing every payload."""
    p = pl.col("payload")
    return ~p.str.contains(f'"{key}":', literal=True) | p.str.contains(f'"{key}":null', literal=True)


@dataclass
class OutputTally:
    """Running facts about a run's outputs; `add` each output (or part of it) once. Source ids are
    checked unique within what one `add` gets: the parts of an output are different kinds of record
    with different id prefixes."""

    already_loaded: frozenset[str] = frozenset()
    heights: dict[str, int] = field(default_factory=dict)
    previews: dict[str, pl.DataFrame] = field(default_factory=dict)
    ids: dict[str, pl.Series] = field(default_factory=dict)  # reference targets only
    produced: list[pl.DataFrame] = field(default_factory=list)  # origin_id, target, n
    inventory_orgs: set[str] = field(default_factory=set)
    duplicates: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    files: pl.DataFrame | None = None  # source_id, decision, size of pd_files
    _pending: list[pl.DataFrame] = field(default_factory=list)  # label, ref, target
    _by_origin: pl.DataFrame | None = None

    def add(self, name: str, df: pl.DataFrame) -> None:
        self._by_origin = None
        self.heights[name] = self.heights.get(name, 0) + df.height
        if name not in self.previews:
            self.previews[name] = df.head(PREVIEW_ROWS).select("source_id", "kind", "payload")
        if name in REFERENCE_TARGETS:
            prev = self.ids.get(name)
            s = df["source_id"]
            self.ids[name] = s if prev is None else pl.concat([prev, s])
        if not df.height:
            return
        origins = df.select("origin_id").filter(pl.col("origin_id").is_not_null())
        if (df["origin_id"] == df["source_id"]).all():  # one record per source row (most outputs): no grouping
            per_origin = origins.with_columns(pl.lit(1, dtype=pl.UInt32).alias("n"))
        else:
            per_origin = origins.group_by("origin_id").len("n")
        self.produced.append(per_origin.with_columns(pl.lit(name).alias("target")))
        if name == "pd_notes":
            self.inventory_orgs |= set(df.filter(pl.col("kind") == "inventory")["org_ref"].drop_nulls().to_list())
        if name == "pd_files":
            part = df.select("source_id", "decision", "size")
            self.files = part if self.files is None else pl.concat([self.files, part])
        self.duplicates += [f"{name}:{d}" for d in _duplicated(df["source_id"]).to_list()]
        self._required(name, df)
        self._references(name, df)

    def fold(self, name: str, origins: pl.Series) -> None:
        """Source rows a record plan folded into lines of `name`'s records: each one accounted for there."""
        if not origins.len():
            return
        self._by_origin = None
        self.produced.append(pl.DataFrame({"origin_id": origins.cast(pl.String)}).with_columns(
            pl.lit(1, dtype=pl.UInt32).alias("n"), pl.lit(name).alias("target")))

    def _required(self, name: str, df: pl.DataFrame) -> None:
        """Records lacking what their output requires; every test in one select (run side by side)."""
        tests = {key: missing_key(key) for key in REQUIRED[name]}
        if name == "pd_notes":
            tests["no deal/org/person"] = pl.col("deal_ref").is_null() & pl.col("org_ref").is_null() & pl.col("person_ref").is_null()
        if name == "pd_org_relationships":
            tests["parent"] = pl.col("parent_ref").is_null() | pl.col("org_ref").is_null()
        if name == "pd_files":
            tests["body_path"] = pl.col("body_path").is_null()
        if not tests:
            return
        failed = df.select(*(test.alias(f"_{i}") for i, test in enumerate(tests.values())))
        for label, mask in zip(tests, failed.iter_columns(), strict=True):
            if mask.any():
                self.missing_required += [f"{name}:{s} {label}" for s in df["source_id"].filter(mask).to_list()]

    def _references(self, name: str, df: pl.DataFrame) -> None:
        """Keeps the references not resolved yet (labels are built for those only: at scale there are
        millions of references and almost all resolve)."""
        for col in REF_COLUMNS:
            refs = df.select("source_id", pl.col(col).alias("ref")).filter(pl.col("ref").is_not_null())
            open_refs = self._unresolved(refs, REF_TARGET[col])
            self._pending.append(open_refs.select(
                pl.format("{}:{} {}={}", pl.lit(name), pl.col("source_id"), pl.lit(col), pl.col("ref")).alias("label"),
                "ref", pl.lit(REF_TARGET[col]).alias("target")))
        open_refs = self._unresolved(payload_refs(df), "$ref").unique("ref")
        self._pending.append(open_refs.select(
            pl.format("{} $ref={}", pl.lit(name), pl.col("ref")).alias("label"), "ref", pl.lit("$ref").alias("target")))

    def _known(self, target: str) -> pl.Series:
        names = REFERENCE_TARGETS if target == "$ref" else (target,)
        parts = [self.ids[n] for n in names if n in self.ids]
        return pl.concat([*parts, pl.Series(list(self.already_loaded), dtype=pl.String)])

    def _unresolved(self, refs: pl.DataFrame, target: str) -> pl.DataFrame:
        """`refs` (never null) whose `ref` is no known id: an anti join hashes the known ids ~4× faster
        than `is_in`, which matters with a million of them checked again for every part."""
        if not refs.height:
            return refs
        known = self._known(target).alias("ref").to_frame()
        return refs.join(known, on="ref", how="anti", maintain_order="left")

    def unresolved_references(self) -> list[str]:
        """References still unresolved now that every output is known."""
        pending = [p for p in self._pending if p.height]
        if not pending:
            return []
        bad = [self._unresolved(g, target)["label"] for (target,), g in pl.concat(pending).group_by("target")]
        return pl.concat(bad).unique().to_list()

    def produced_by_origin(self) -> pl.DataFrame:
        """origin_id -> targets (comma-joined output names, sorted) and records. Taken once every
        output is in: the per-output lists are folded into it and let go."""
        if self._by_origin is None:
            if not self.produced:
                self._by_origin = pl.DataFrame(schema={"origin_id": pl.String, "targets": pl.String, "records": pl.Int64})
            else:
                per_target = pl.concat(self.produced)
                origins = per_target["origin_id"]
                shared = origins.is_in(_duplicated(origins).implode())  # one origin, several records: rare
                one = per_target.filter(~shared).select("origin_id", pl.col("target").alias("targets"),
                                                        pl.col("n").cast(pl.Int64).alias("records"))
                several = (
                    per_target.filter(shared).group_by("origin_id", "target").agg(pl.col("n").sum())
                    .group_by("origin_id").agg(pl.col("target").sort().str.join(",").alias("targets"),
                                               pl.col("n").sum().cast(pl.Int64).alias("records"))
                )
                self._by_origin = pl.concat([one, several])
                self.produced = [self._by_origin.select("origin_id", pl.col("records").cast(pl.UInt32).alias("n"),
                                                        pl.col("targets").alias("target"))]
        return self._by_origin


def _duplicated(ids: pl.Series) -> pl.Series:
    """The ids found more than once. Equal ids always share a 64-bit hash: distinct hashes (the usual
    case, told by a count: 6× cheaper than a mask) mean no duplicate; else the candidates by hash,
    then by text among the candidates only."""
    hashes = ids.hash(7)
    if hashes.n_unique() == hashes.len():
        return ids.clear()
    candidates = ids.filter(hashes.is_duplicated())
    return candidates.filter(candidates.is_duplicated()).unique()


def tally_of(outputs: Iterable[tuple[str, pl.DataFrame]], already_loaded: Iterable[str] = ()) -> OutputTally:
    t = OutputTally(already_loaded=frozenset(already_loaded))
    for name, df in outputs:
        t.add(name, df)
    return t
