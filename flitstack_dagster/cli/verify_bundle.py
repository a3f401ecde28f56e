"""`flitstack verify-bundle PATH`: check a Novo export bundle against its manifest without migrating it.

It runs exactly the checks a migration runs (presence, size, SHA-256, headers, UDFs, record counts),
landing into a throwaway DuckDB, so "OK" here means the bundle will land.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb

from flitstack_dagster.novo.bundle import Bundle, open_bundle
from flitstack_dagster.novo.landing import LandedFile, land_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the bundle: a folder or a .zip holding manifest.json")
    parser.add_argument(
        "--work-dir", type=Path, default=None,
        help="scratch folder for unzipping and transcoding (default: a temporary folder, removed after)",
    )


def run(args: argparse.Namespace) -> int:
    """Print one line per file; a damaged bundle raises BundleError, which the CLI prints (exit 2)."""
    with tempfile.TemporaryDirectory(prefix="flitstack-verify-") as tmp:
        work_dir = Path(args.work_dir) if args.work_dir else Path(tmp)
        bundle = open_bundle(args.path, work_dir)
        con = duckdb.connect(str(Path(tmp) / "verify.duckdb"))
        try:
            landed = land_bundle(con, bundle, "verify")
        finally:
            con.close()
        print(report(bundle, landed))
    return 0


def report(bundle: Bundle, landed: list[LandedFile]) -> str:
    """A small table: file, records, bytes, OK — plus the bundle's identity and fingerprint."""
    m = bundle.manifest
    sizes = {f.name: f.bytes for f in m.files}
    width = max(len(f.file) for f in landed) if landed else 10
    lines = [
        (f"Bundle {m.export_id} ({m.kind} export of {m.tenant or 'unnamed tenant'}, {m.encoding}, "
        f"{m.date_order}, {m.timezone})"),
        f"  {'file':<{width}}  {'records':>10}  {'bytes':>14}",
    ]
    for f in landed:
        udf = f"  ({len(f.udf_columns)} user defined column(s))" if f.udf_columns else ""
        lines.append(f"  {f.file:<{width}}  {f.rows:>10,}  {sizes.get(f.file, 0):>14,}  OK{udf}")
    lines.append(f"OK: {len(landed)} files match the manifest (size, SHA-256, headers, record counts).")
    lines.append(f"Fingerprint {bundle.fingerprint}")
    return "\n".join(lines)
