"""`flitstack status [RUN]`: where a run is — its stage, records done of total, tokens spent today and in
all, the days of token budget left, and what blocks it. Without RUN: one line per registered run.

It reads what the UI shows (the Dagster instance of the data folder), the run's records (DuckDB), the
token ledger, and the settings the way every command does; it sends nothing to Pipedrive.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import duckdb

from flitstack_dagster.core import duck
from flitstack_dagster.core.duck import has_table
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.core.settings import Paths, data_paths
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.ledger import Ledger, utc_day
from flitstack_dagster.loading.reconcile import shaped_count
from flitstack_dagster.novo.runs import MigrationRun, get_run, list_runs

NO_RUNS = "no migration runs are registered yet: add one with `flitstack runs add --bundle DIR --mode full`."
BUSY = ("the data folder's DuckDB file is open in another process (a step is writing it): records are counted "
        "from the load's progress instead")
DONE_OPERATIONS = ("create", "update", "skip", "adopt")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", help="the run key (see `flitstack runs list`); without it, every run in a line")


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.core.settings import check_budget_settings

    paths = data_paths().ensure()
    check_budget_settings()
    if args.run is None:
        lines = [run_line(paths, r, records) for r, records in _all_runs(paths)]
        print("\n".join(lines) if lines else NO_RUNS)
        return 0
    for line in status_lines(paths, args.run):
        print(line)
    return 0


# -- records done / total ---------------------------------------------------------------------------


@dataclass
class Records:
    """Per load entity: records done (landed, skipped as unchanged, or set aside) and shaped for the run."""

    by_entity: dict[str, tuple[int, int]] = field(default_factory=dict)
    from_progress: bool = False  # DuckDB was busy: counts from the ledger's progress of the load steps

    @property
    def done(self) -> int:
        return sum(d for d, _ in self.by_entity.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.by_entity.values())


def _loaded_count(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list) -> int:
    """A count from one of the loader's `meta` tables; 0 before the load made it."""
    return con.execute(sql, params).fetchone()[0] if has_table(con, "meta", table) else 0


def records_of(con: duckdb.DuckDBPyConnection, run_key: str) -> Records:
    out = Records()
    for entity, table in ENTITIES.shaped_tables.items():
        total = shaped_count(con, table, run_key)
        if total is None:  # not shaped yet
            continue
        loaded = _loaded_count(con, "audit_log", "SELECT count(DISTINCT source_id) FROM meta.audit_log WHERE run_key = ? "
                               f"AND entity = ? AND operation IN {DONE_OPERATIONS} AND rolled_back_by IS NULL",
                               [run_key, entity])
        aside = _loaded_count(con, "load_set_aside", "SELECT count(*) FROM meta.load_set_aside WHERE run_key = ? "
                              "AND entity = ?", [run_key, entity])
        out.by_entity[entity] = (min(loaded + aside, total), total)
    return out if out.total else Records()  # shaped tables of other runs only: this one is not shaped yet


def records_from_progress(ledger: Ledger, run_key: str) -> Records:
    steps = {p.step: p for p in ledger.progress(run_key)}
    return Records({e.name: (steps[e.load_asset].done, steps[e.load_asset].total)
                    for e in ENTITIES if e.load_asset in steps}, from_progress=True)


# -- reading a run ----------------------------------------------------------------------------------


def _open(paths: Paths) -> duckdb.DuckDBPyConnection | None:
    """The DuckDB file, or None while another process writes it."""
    if not paths.duckdb.exists():
        return None
    try:
        return duck.connect(paths.duckdb)
    except duckdb.IOException:
        return None


def _all_runs(paths: Paths) -> list[tuple[MigrationRun, Records]]:
    con = _open(paths)
    if con is None and paths.duckdb.exists():
        raise UserError(f"{BUSY.split(':')[0]}: run `flitstack status RUN` for one run, or try again when the step ends.")
    if con is None:
        return []
    with con:
        return [(r, records_of(con, r.run_key)) for r in list_runs(con)]


def _one_run(paths: Paths, run_key: str) -> Records:
    """The run's records; an unknown run is refused in one sentence (get_run's)."""
    con = _open(paths)
    if con is None:
        if paths.duckdb.exists():
            return records_from_progress(Ledger.in_folder(paths.root), run_key)
        con = duck.connect(":memory:")  # nothing registered yet: get_run says so, as for any unknown run
    with con:
        get_run(con, run_key)
        return records_of(con, run_key)


# -- the lines ----------------------------------------------------------------------------------------


def _state(paths: Paths, run_key: str):
    from flitstack_dagster.defs.instance import latest_run_state

    return latest_run_state(paths, run_key)


def _stage(state) -> str:
    if state is None:
        return "not started: nothing materialized yet"
    return f"{state.last_group} (last materialized {state.last_step})" if state.last_step else "nothing materialized yet"


def _outcome(state) -> str:
    if state is None:
        return "never run"
    if state.status == "success":
        return "finished"
    if state.running:
        return "running now"
    if state.failed_checks and not state.failed_steps:
        return "stopped at a blocking check"
    if state.status == "canceled" or not (state.failed_steps or state.failed_checks):
        return "stopped before the end"
    return "stopped by an error"


# what to do about a blocking check, where it is more than fixing what its description names
CHECK_ADVICE = {
    "mapping_approved": "decide the values it names and approve: `flitstack mapping approve` (or the "
                        "`approve_mapping` job)",
}


def _check_sentence(check: str, run_key: str) -> str:
    """`asset.check: description` as what blocks and what to do; a long description is cut (the check's
    page in the UI and the `migrate` outcome have it whole)."""
    name = check.split(":", 1)[0].rsplit(".", 1)[-1]
    advice = CHECK_ADVICE.get(name, "fix what it names")
    return f"blocking check {plain_line(check, 240)}; {advice}, then run `flitstack migrate {run_key}`."


def blocks(state, run_key: str) -> list[str]:
    """What stops the run, each in a sentence with what to do."""
    if state is None or state.running or state.status == "success":
        return []
    out = [_check_sentence(c, run_key) for c in state.failed_checks]
    out += [f"step {plain_line(s, 300)}; then run `flitstack migrate {run_key}` once it is fixed."
            for s in state.failed_steps]
    if not out:
        out.append(f"the last Dagster run stopped before the end (interrupted); run `flitstack migrate {run_key}` "
                   "to resume.")
    return out


def _records_line(records: Records) -> str:
    if not records.by_entity:
        return "records: not shaped yet (counted once `pd_*` is materialized)"
    pct = f" ({records.done / records.total:.0%})" if records.total else ""
    per = ", ".join(f"{e} {d:,}/{t:,}" for e, (d, t) in records.by_entity.items())
    src = " [from the load's progress]" if records.from_progress else ""
    return f"records: {records.done:,} of {records.total:,} done{pct}{src} — {per}"


def _tokens_line(ledger: Ledger, run_key: str) -> str:
    today = utc_day()
    accounts = ledger.accounts(run_key)
    text = (f"tokens: {ledger.tokens(run_key=run_key, day=today):,} today (UTC), "
            f"{ledger.tokens(run_key=run_key):,} in all by this run's loads and read-back")
    if accounts:
        text += "; the account " + ", ".join(
            f"{plain_line(a)} {ledger.tokens(account=a, day=today):,} today over every run" for a in accounts)
    return text


def status_lines(paths: Paths, run_key: str) -> list[str]:
    records = _one_run(paths, run_key)
    state = _state(paths, run_key)
    ledger = Ledger.in_folder(paths.root)
    head = f"{plain_line(run_key)}: {_outcome(state)}"
    if state is not None:
        started = f", started {state.started:%Y-%m-%d %H:%M} UTC" if state.started else ""
        head += f" (Dagster run {state.run_id[:8]}, job {state.job}{started})"
    lines = [head, f"  stage: {_stage(state)}", f"  {_records_line(records)}"]
    if records.from_progress:
        lines.append(f"  note: {BUSY}")
    lines.append(f"  {_tokens_line(ledger, run_key)}")
    lines.append(f"  {eta_line(paths, run_key, records)}")
    lines += [f"  blocks: {b}" for b in blocks(state, run_key)] or ["  blocks: nothing"]
    return lines


def run_line(paths: Paths, r: MigrationRun, records: Records) -> str:
    state = _state(paths, r.run_key)
    ledger = Ledger.in_folder(paths.root)
    done = f"{records.done:,}/{records.total:,} records" if records.by_entity else "not shaped"
    stopped = blocks(state, r.run_key)
    why = f"; blocked: {stopped[0].split(':')[0]}" if stopped else ""
    stage = f"{state.last_group or '-'}" if state else "-"
    return (f"{plain_line(r.run_key):44} {r.mode:6} {_outcome(state):28} stage {stage:16} {done:>22}  "
            f"tokens {ledger.tokens(run_key=r.run_key, day=utc_day()):,} today / {ledger.tokens(run_key=r.run_key):,}"
            f"{why}")


def eta_line(paths: Paths, run_key: str, records: Records) -> str:
    from flitstack_dagster.mapping.eta import eta_text

    return eta_text(paths, run_key, records.by_entity, Ledger.in_folder(paths.root).progress(run_key))


__all__ = ["configure", "run", "status_lines"]
