"""The export drop folder: which entries are complete new bundles, and which migration run each becomes.

Plain Python (no Dagster): the export sensor calls these on every tick, so they only stat() files
until a bundle is complete and new, and verify it (sizes, SHA-256) once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.core.errors import BundleError, UserError
from flitstack_dagster.novo.bundle import Bundle, open_bundle
from flitstack_dagster.novo.manifest import MANIFEST_NAME, Manifest, load_manifest
from flitstack_dagster.novo.runs import MigrationRun, list_runs, register_run, run_key_for


def drop_entries(drop: Path) -> list[Path]:
    """Bundle candidates: folders and .zip files, not hidden ones (a copy tool's temp names start with '.')."""
    if not drop.is_dir():
        return []
    return sorted(p for p in drop.iterdir()
                  if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() == ".zip"))


def stamp_of(entry: Path) -> str:
    """Changes whenever any file of the entry is rewritten (size, mtime or ctime): a re-copy is new.

    Only stat() calls, so an unchanged bundle costs no hashing on every tick.
    """
    files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(entry.parent)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}\n".encode())
    return h.hexdigest()[:32]


@dataclass
class DropCursor:
    """What the sensor already handled, by entry name and stamp: started (done) or refused (why)."""

    done: dict[str, str]
    refused: dict[str, dict[str, str]]

    @classmethod
    def load(cls, text: str | None) -> "DropCursor":
        raw = json.loads(text) if text else {}
        return cls(dict(raw.get("done", {})), dict(raw.get("refused", {})))

    def dump(self) -> str:
        return json.dumps({"done": self.done, "refused": self.refused}, sort_keys=True)

    def keep_only(self, names: set[str]) -> None:
        """Forget entries no longer in the folder, so the cursor stays small."""
        self.done = {k: v for k, v in self.done.items() if k in names}
        self.refused = {k: v for k, v in self.refused.items() if k in names}


def read_manifest_of(path: Path) -> Manifest | None:
    """The manifest of a registered bundle (folder or .zip), without verifying the rest; None if unreadable."""
    try:
        if path.is_dir():
            return load_manifest((path / MANIFEST_NAME).read_bytes())
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n == MANIFEST_NAME or n.endswith("/" + MANIFEST_NAME)]
            return load_manifest(zf.read(min(names, key=len))) if names else None
    except (OSError, ValueError, zipfile.BadZipFile, BundleError):
        return None


def tenant_of(con: duckdb.DuckDBPyConnection, run: MigrationRun) -> str | None:
    """A registered run's tenant: from the landed bundle if it landed, else from its manifest."""
    if has_table(con, "raw", "bundles"):
        rows = con.execute("SELECT tenant FROM raw.bundles WHERE _run_key = ? LIMIT 1", [run.run_key]).fetchall()
        if rows:
            return rows[0][0]
    manifest = read_manifest_of(run.bundle_path)
    return manifest.tenant if manifest else None


def has_loaded(con: duckdb.DuckDBPyConnection, run_keys: list[str]) -> bool:
    """Whether any of these runs has a standing audit row (it loaded something not rolled back since)."""
    if not run_keys or not has_table(con, "meta", "audit_log"):
        return False
    marks = ", ".join("?" for _ in run_keys)
    return bool(con.execute(
        f"SELECT 1 FROM meta.audit_log WHERE run_key IN ({marks}) AND rolled_back_by IS NULL LIMIT 1", run_keys
    ).fetchall())


def choose_mode(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> str:
    """`delta` when the tenant's earlier full or delta run loaded something (or the export is a delta), else `full`.

    Sample runs do not count: a full run adopts what a sample created. Raises UserError for a delta
    export with no earlier run of its tenant to build on.
    """
    earlier = [r.run_key for r in list_runs(con)
               if r.mode in ("full", "delta") and tenant_of(con, r) == manifest.tenant]
    if manifest.kind == "delta":
        if not earlier:
            raise UserError(
                f"export {manifest.export_id} is a delta, but no full run of tenant "
                f"'{manifest.tenant or '(none)'}' is registered yet; drop (or `flitstack runs add`) the full "
                "export first, then copy this bundle into the drop folder again"
            )
        return "delta"
    return "delta" if has_loaded(con, earlier) else "full"


@dataclass(frozen=True)
class Verified:
    entry: Path
    stamp: str
    fingerprint: str
    manifest: Manifest


def verify_entry(entry: Path, scratch: Path) -> Verified:
    """Verify sizes and hashes of every listed file (a zip is extracted to a scratch folder, then removed)."""
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="verify-", dir=scratch))
    try:
        stamp = stamp_of(entry)
        bundle = open_bundle(entry, tmp)
        return Verified(entry, stamp, bundle.fingerprint, bundle.manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def new_entries(entries: list[Path], cursor: DropCursor) -> tuple[list[tuple[Path, str]], list[str]]:
    """The complete entries not handled in their current form, with their stamps; and a note for each
    entry still being copied or already refused as it is."""
    fresh: list[tuple[Path, str]] = []
    notes: list[str] = []
    for entry in entries:
        if not Bundle.is_complete(entry):
            notes.append(f"{entry.name}: waiting for the copy to finish (manifest or a listed file missing or short)")
            continue
        stamp = stamp_of(entry)
        if cursor.done.get(entry.name) == stamp:
            continue
        if cursor.refused.get(entry.name, {}).get("stamp") == stamp:
            notes.append(f"{entry.name}: refused — {cursor.refused[entry.name]['reason']}")
            continue
        fresh.append((entry, stamp))
    return fresh, notes


def register_dropped(con: duckdb.DuckDBPyConnection, verified: Verified, who: str) -> MigrationRun:
    """Register a verified new bundle as a `full-…` or `delta-…` run (see `choose_mode`); UserError if refused."""
    mode = choose_mode(con, verified.manifest)
    return register_run(con, run_key_for(mode, verified.manifest.export_id), verified.entry, verified.fingerprint,
                        who=who)
