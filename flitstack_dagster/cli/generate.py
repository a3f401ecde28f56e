"""`flitstack generate`: write a synthetic Novo export bundle (full, or a delta of an existing one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flitstack_dagster.novo.generator.options import DATE_ORDERS, DEFAULT_EXPORTED_AT, ENCODINGS, GenOptions


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="bundle folder to write (created)")
    parser.add_argument("--work-orders", type=int, default=2000, help="number of work orders (default 2000); "
                        "other entities scale with it")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7): same seed and options, "
                        "byte-identical bundle")
    parser.add_argument("--tenant", default="City of Springfield", help="tenant name (default City of Springfield)")
    parser.add_argument("--exported-at", default=None,
                        help=f"ISO 8601 instant of the export (default {DEFAULT_EXPORTED_AT}; "
                             "for --delta-from: the base's plus 7 days)")
    parser.add_argument("--timezone", default="America/Chicago", help="IANA zone of wall times (default America/Chicago)")
    parser.add_argument("--encoding", choices=ENCODINGS, default="utf-8", help="CSV encoding (default utf-8)")
    parser.add_argument("--date-order", choices=DATE_ORDERS, default="MDY", help="slash date order (default MDY)")
    parser.add_argument("--mess", type=_rate, default=0.0, metavar="RATE",
                        help="inject each known export problem at this rate, 0..1 (default 0)")
    parser.add_argument("--large-attachments", action="store_true",
                        help="with --mess: also write attachment bodies larger than Pipedrive accepts (at most 3)")
    parser.add_argument("--no-mess-log", action="store_true", help="do not write OUT.mess.json beside the bundle")
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip")
    parser.add_argument("--delta-from", type=Path, default=None, metavar="BUNDLE_DIR",
                        help="write a delta bundle against this full bundle folder")
    parser.add_argument("--delta-share", type=_rate, default=None, metavar="RATE",
                        help="with --delta-from: the share of work orders the delta changes or adds, 0..1 "
                             "(default 0.07); deletions scale alike")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle in --out")


def options_from(args: argparse.Namespace) -> GenOptions:
    return GenOptions(out=args.out, work_orders=args.work_orders, seed=args.seed, tenant=args.tenant,
                      exported_at=args.exported_at, timezone=args.timezone, encoding=args.encoding,
                      date_order=args.date_order, mess=args.mess, large_attachments=args.large_attachments,
                      mess_log=not args.no_mess_log, zip=args.zip, delta_from=args.delta_from, delta_share=args.delta_share, force=args.force)


def run(args: argparse.Namespace) -> int:
    from flitstack_dagster.novo.generator import generate

    s = generate(options_from(args), log=lambda line: print(line, flush=True))
    print(f"wrote {len(s.files)} files, {s.rows:,} records, {s.bytes:,} bytes "
          f"+ {s.bodies:,} attachment bodies ({s.body_bytes:,} bytes) to {s.out} in {s.seconds:.1f} s")
    if s.zip_path:
        print(f"zip: {s.zip_path} ({s.zip_path.stat().st_size:,} bytes)")
    if s.mess_count or args.mess:
        where = f" -> {s.mess_log}" if s.mess_log else " (log not written: --no-mess-log)"
        print(f"mess: {s.mess_count:,} injections{where}")
        for problem, n in s.mess_tally.items():
            print(f"  {problem:<26} {n:>8,}")
    return 0
