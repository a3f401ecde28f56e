"""Checks that gate loading. Blocking (severity ERROR): references resolve, source ids unique,
required fields present, every status/priority/pick-list value mapped, file sizes within policy,
the accounting identity. Warnings (WARN, never block): invalid emails, flattened hierarchies,
broken cycles, fallback owners.

Every function returns a `CheckResult`; `run_checks` runs them all. The Dagster layer wires each
into an asset check; this module does not import Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.columns import snake
from flitstack_dagster.shaping.deals import effective_status_map
from flitstack_dagster.staging.frames import StagedInputs
from flitstack_dagster.shaping.tally import OutputTally, tally_of

Severity = Literal["ERROR", "WARN"]

# the pick-list columns with a value map, and where the values live
VALUE_COLUMNS = {
    "work_orders.Priority": ("work_orders", "priority"),
    "work_orders.Request Type": ("work_orders", "request_type"),
    "contacts.Role": ("contacts", "role"),
    "assets.Asset Class": ("assets", "asset_class"),
    "accounts.Account Type": ("accounts", "account_type"),
}


@dataclass
class CheckResult:
    name: str
    passed: bool
    severity: Severity
    count: int = 0  # offending records
    message: str = ""
    sample: list[str] = field(default_factory=list)  # up to 20 offending ids / values


def _result(name: str, severity: Severity, bad: list[str], ok_msg: str, bad_msg: str) -> CheckResult:
    return CheckResult(
        name, not bad, severity, len(bad), ok_msg if not bad else bad_msg.format(n=len(bad)), sorted(bad)[:20]
    )


def _tally(run, already_loaded: Iterable[str] = ()) -> OutputTally:
    """The run's tally: kept by a streamed run (its frames are saved and dropped), else taken now."""
    kept = getattr(run, "tally", None)
    return kept if kept is not None else tally_of(run.outputs().items(), already_loaded)


def check_references(run, already_loaded: Iterable[str] = ()) -> CheckResult:
    """Every reference (org/person/deal/parent, `$ref` in payloads) resolves to a record of this run
    in the right output, or to a record already loaded."""
    bad = _tally(run, already_loaded).unresolved_references()
    return _result("references_resolve", "ERROR", bad, "every reference resolves", "{n} reference(s) do not resolve")


def check_unique_ids(run) -> CheckResult:
    bad = _tally(run).duplicates
    return _result("source_ids_unique", "ERROR", bad, "source ids are unique per output", "{n} duplicated source id(s)")


def check_required(run) -> CheckResult:
    bad = _tally(run).missing_required
    return _result("required_fields", "ERROR", bad, "required fields present", "{n} required value(s) missing")


def unmapped_values(inputs: StagedInputs, mapping: Mapping) -> list[str]:
    """Every status / pick-list value in the data without an approved target."""
    out: list[str] = []
    statuses = inputs.work_orders["status"].str.strip_chars().drop_nulls().unique().sort().to_list()
    out += [f"work order status '{s}'" for s, t in effective_status_map(mapping, statuses).items() if t is None]
    keys = dict(VALUE_COLUMNS)
    for fm in mapping.fields:
        if fm.field_type in ("enum", "set") and fm.target_field:
            keys.setdefault(f"{fm.source_entity}.{fm.source_column}", (fm.source_entity, snake(fm.source_column)))
    for key, (entity, col) in keys.items():
        vm = mapping.value_maps.get(key)
        df = inputs.frame(entity)
        if vm is None or col not in df.columns or not df.height:
            continue
        s = df[col]
        if isinstance(s.dtype, pl.List):
            s = s.explode()
        elif s.dtype == pl.Boolean:
            s = s.replace_strict({True: "Yes", False: "No"}, return_dtype=pl.String)
        for v in s.drop_nulls().cast(pl.String).unique().sort().to_list():
            if vm.get(v) is None:
                out.append(f"{key} value '{v}'")
    for key, (entity, col) in {"contacts.Department ID": ("contacts", "department_id"),
                               "accounts.Department ID": ("accounts", "department_id")}.items():
        vm = mapping.value_maps.get(key)
        if vm is None or key in keys or not inputs.frame(entity).height:
            continue
        vals = inputs.frame(entity)[col].drop_nulls().unique().sort().to_list()
        out += [f"{key} value '{v}'" for v in vals if vm.get(v) is None]
    return out


def check_values_mapped(inputs: StagedInputs, mapping: Mapping) -> CheckResult:
    bad = unmapped_values(inputs, mapping)
    return _result("values_mapped", "ERROR", bad, "every status and pick-list value is mapped",
                   "{n} value(s) have no approved mapping; map them before loading")


def check_file_sizes(run, mapping: Mapping) -> CheckResult:
    f = _tally(run).files
    if f is None:
        return _result("file_sizes", "ERROR", [], "every uploaded file is within the size policy", "")
    bad = f.filter((pl.col("decision") == "upload") & (pl.col("size") > mapping.options.max_file_bytes))["source_id"].to_list()
    if mapping.options.large_file_policy == "flag":
        bad += f.filter(pl.col("decision") == "split")["source_id"].to_list()
    return _result("file_sizes", "ERROR", bad, "every uploaded file is within the size policy", "{n} file(s) break the size policy")


def check_accounting(run, inputs: StagedInputs | None = None) -> CheckResult:
    """Staged rows per file = loaded + set aside + not migrated, each row exactly once; every shaped
    record comes from a staged row; nothing unaccounted."""
    rec = run.reconciliation
    bad = [f"{f}:{r} {s}" for f, r, s in rec.filter(pl.col("outcome") == "unaccounted").select("file", "row_number", "source_id").iter_rows()]
    per_file = rec.group_by("file").agg(pl.len().alias("n"), pl.col("row_number").n_unique().alias("rows"))
    counts = dict(per_file.select("file", "n").iter_rows())
    staged = getattr(run, "staged_rows", None) or {e: inputs.frame(e).height for e in StagedInputs.entities()}
    for e in StagedInputs.entities():
        n = staged.get(e, 0)
        file = next((f for f in counts if f.rsplit(".", 1)[0] == e), None)
        if n and counts.get(file, 0) != n:
            bad.append(f"{e}: {n} staged rows, {counts.get(file, 0)} accounted")
    for file in per_file.filter(pl.col("n") != pl.col("rows"))["file"]:  # a row counted twice (looked at only then)
        rows = rec.filter(pl.col("file") == file)["row_number"]
        bad += [f"{file}:{r} counted twice" for r in rows.filter(rows.is_duplicated()).unique().to_list()]
    # produced origins without a source row. Compared by 64-bit hash first (a set of 10 M strings is
    # gigabytes at a million work orders): a hash not among the rows' is certainly stray; a stray whose
    # hash collides with a row's (p ≈ 5e-6 at 10 M rows) would go unreported.
    produced = _tally(run).produced_by_origin().with_columns(pl.col("origin_id").hash(7).alias("_hash"))
    rows = rec.select(pl.col("source_id").hash(7).alias("_hash"))
    stray = produced.join(rows, on="_hash", how="anti", maintain_order="left")
    bad += [f"{t}:{o} has no source row" for o, t in stray.select("origin_id", "targets").iter_rows()]
    return _result("accounting_identity", "ERROR", bad, "every source row is accounted for", "{n} accounting problem(s)")


def _warn(run, name: str, codes: tuple[str, ...], label: str) -> CheckResult:
    w = run.warnings.filter(pl.col("code").is_in(list(codes)))
    ids = w["source_id"].to_list()
    return CheckResult(name, True, "WARN", len(ids), f"{len(ids)} {label}" if ids else f"no {label}", sorted(ids)[:20])


def warn_invalid_emails(run) -> CheckResult:
    return _warn(run, "invalid_emails", ("invalid_email",), "contact(s) with an invalid email")


def warn_flattened(run) -> CheckResult:
    return _warn(run, "hierarchy_flattened", ("hierarchy_flattened", "hierarchy_cycle_broken", "hierarchy_missing_parent"),
                 "asset(s) flattened, cycle-broken or re-rooted")


def warn_fallback_owners(run) -> CheckResult:
    return _warn(run, "fallback_owners", ("fallback_owner",), "record(s) owned by the fallback owner")


def run_checks(run, inputs: StagedInputs | None, mapping: Mapping, already_loaded: Iterable[str] = (),
               values_mapped: CheckResult | None = None) -> list[CheckResult]:
    """Every check. A streamed run passes `inputs=None` with `values_mapped` (run before shaping released
    the staged frames); its row counts come from `run.staged_rows`."""
    return [
        check_references(run, already_loaded),
        check_unique_ids(run),
        check_required(run),
        values_mapped or check_values_mapped(inputs, mapping),
        check_file_sizes(run, mapping),
        check_accounting(run, inputs),
        warn_invalid_emails(run),
        warn_flattened(run),
        warn_fallback_owners(run),
    ]


def blocking_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == "ERROR" and not r.passed]


def to_json(results: list[CheckResult]) -> str:
    return json.dumps([r.__dict__ for r in results], indent=2)
