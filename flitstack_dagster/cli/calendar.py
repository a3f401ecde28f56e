"""`flitstack calendar RUN`: the days of Pipedrive's token budget a registered run's bundle needs.

The same table as the scope document's Calendar section: every record plan × every Pipedrive plan at
the account's seats, with the reserve (PIPEDRIVE_DAILY_RESERVE), and what more seats would save. It
reads what the mapping step saved for the run (source profile, account audit, the approved mapping or
else the stored proposal), and the work orders the archive cutoff archives from the staged rows.
"""

from __future__ import annotations

import argparse

from flitstack_dagster.core.safe_text import plain_line
from flitstack_dagster.cli.registered import add_run_argument, registered_run


def configure(p: argparse.ArgumentParser) -> None:
    add_run_argument(p)


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.mapping import store
    from flitstack_dagster.mapping.archive import run_archive_scope
    from flitstack_dagster.mapping.calendar import calendar_summary, calendar_table
    from flitstack_dagster.mapping.scope import RECORD_PLAN_COSTS, run_calendar

    paths, _ = registered_run(args.run)
    profile = store.load_profile(paths, args.run)
    audit = store.load_audit(paths, args.run)
    mapping = store.current_mapping(paths, profile, audit)
    cal = run_calendar(profile, mapping, audit, archive=run_archive_scope(paths, args.run, mapping))
    print(f"calendar for {plain_line(args.run)}: {calendar_summary(cal)}")
    for rp in RECORD_PLAN_COSTS:
        print(f"  record plan {rp.name}: {rp.what}")
    print()
    print("\n".join(text_table(*calendar_table(cal))))
    return 0


def text_table(headers: list[str], rows: list[list[object]]) -> list[str]:
    """Columns aligned for a terminal: text left, numbers right."""
    cells = [headers, *([str(c) for c in r] for r in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(r[i], (int, float)) or str(r[i]).replace(",", "").replace(".", "").isdigit()
                   for r in rows) for i in range(len(headers))]
    return ["  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)).rstrip()
            for r in cells]


__all__ = ["configure", "run", "text_table"]
