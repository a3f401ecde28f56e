"""`flitstack mapping approve [--by NAME] [--record-plan PLAN] [--archive-before DATE] [--proposal-hash HASH]
[--override FIELD VALUE TARGET]... [--confirm FIELD VALUE]... [--proposal PATH] [--approved PATH]`.

Approves the proposed mapping: writes (or updates, keeping your edits) the approved mapping with who
approved, when, and the hashes of the proposal and source profile it was approved against. Anything
still unmapped, and every value proposed with low confidence, is listed: the load stays blocked
until those are mapped or confirmed in the approved file.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from flitstack_dagster.core.errors import UserError


def default_paths() -> tuple[Path, Path]:
    from flitstack_dagster.mapping.store import approved_path, proposed_path
    from flitstack_dagster.core.settings import data_paths

    paths = data_paths()
    return proposed_path(paths), approved_path(paths)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mapping_command", required=True, metavar="ACTION")
    p = sub.add_parser("approve", help="approve the proposed mapping (records who and against which data)")
    p.add_argument("--by", dest="by", default=None, help="who approves (default: the OS user name)")
    p.add_argument("--proposal", type=Path, default=None, help="proposed mapping YAML (default: <data>/mapping/proposed.yaml)")
    p.add_argument("--approved", type=Path, default=None, help="approved mapping YAML (default: <data>/mapping/approved.yaml)")
    p.add_argument("--record-plan", default=None,
                   help="how work orders become records (default: the approved file's, else complete)")
    p.add_argument("--archive-before", default=None, metavar="DATE",
                   help="work orders closed before DATE (YYYY-MM-DD) go into one archive file per organization "
                   "instead of deals; 'none' archives nothing (default: the approved file's)")
    p.add_argument("--proposal-hash", default=None,
                   help="the hash of the proposal you reviewed (refused when the proposal changed since)")
    p.add_argument("--override", nargs=3, action="append", default=[], metavar=("FIELD", "VALUE", "TARGET"),
                   help="decide a value: e.g. work_orders.Priority Urgent Emergency, or work_orders.Status "
                   "'Awaiting Parts' 'On Hold' (repeatable)")
    p.add_argument("--confirm", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"),
                   help="confirm a low-confidence proposal as proposed (repeatable)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "mapping_command", None) != "approve":
        raise UserError("usage: flitstack mapping approve [--by NAME] [--record-plan PLAN] [--archive-before DATE] "
                        "[--proposal-hash HASH] "
                        "[--override FIELD VALUE TARGET] [--confirm FIELD VALUE] [--proposal PATH] [--approved PATH]")
    from flitstack_dagster.mapping.approval import Override, approve_proposed
    from flitstack_dagster.mapping.yamlio import decisions_needed

    dp, da = default_paths()
    proposal = args.proposal or dp
    approved = args.approved or da
    who = args.by
    if not who:
        try:
            who = getpass.getuser()
        except Exception:  # noqa: BLE001
            who = ""
    overrides = [Override(*o) for o in args.override] + [Override(f, v) for f, v in args.confirm]
    m = approve_proposed(proposal, approved, who, record_plan=args.record_plan,
                         archive_before=args.archive_before, overrides=overrides, proposal_hash=args.proposal_hash)
    print(f"approved {approved} by {m.approved_by} at {m.approved_at:%Y-%m-%d %H:%M:%SZ} "
          f"(proposal {m.proposal_hash[:12] if m.proposal_hash else '-'}, "
          f"profile {m.profile_hash[:12] if m.profile_hash else '-'})"
          + (f"; work orders closed before {m.archive_before} are archived" if m.archive_before else ""))
    un = m.unmapped()
    if un:
        print(f"still unmapped ({len(un)}) - the load stays blocked until you map them in {approved}:", file=sys.stderr)
        for u in un:
            print(f"  - {u}", file=sys.stderr)
    todo = decisions_needed(m)
    if todo:
        print(f"proposed with low confidence ({len(todo)}) - the load stays blocked until you decide them in "
              f"{approved}:", file=sys.stderr)
        for u in todo:
            print(f"  - {u}", file=sys.stderr)
    return 1 if un or todo else 0


__all__ = ["configure", "run"]
