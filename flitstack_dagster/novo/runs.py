"""Migration runs: one per (bundle, mode), keyed `sample-…`, `full-…`, `delta-…`.

The run registry lives in DuckDB (`meta.migration_runs`) so every stage can find the bundle a
partition reads; the Dagster dynamic partition `migration_runs` holds the same keys.
"""

from __future__ import annotations

import getpass
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from flitstack_dagster.core.duck import has_table
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.account import AccountIdentity, WrongAccount

Mode = Literal["sample", "full", "delta"]
MODES: tuple[str, ...] = ("sample", "full", "delta")
_KEY = re.compile(r"^(sample|full|delta)-[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class MigrationRun:
    run_key: str
    mode: Mode
    bundle_path: Path
    bundle_fingerprint: str
    registered_at: datetime
    registered_by: str


def run_key_for(mode: str, export_id: str) -> str:
    """`full` + `springfield-20261120T070000Z` -> `full-springfield-20261120T070000Z`."""
    if mode not in MODES:
        raise UserError(f"unknown run mode '{mode}': use one of {', '.join(MODES)}")
    return f"{mode}-{export_id}"


def mode_of(run_key: str) -> Mode:
    if not _KEY.match(run_key):
        raise UserError(f"'{run_key}' is not a migration run key (expected sample-…, full-… or delta-…)")
    return run_key.split("-", 1)[0]  # type: ignore[return-value]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        """CREATE TABLE IF NOT EXISTS meta.migration_runs (
            run_key VARCHAR PRIMARY KEY, mode VARCHAR NOT NULL, bundle_path VARCHAR NOT NULL,
            bundle_fingerprint VARCHAR NOT NULL, registered_at TIMESTAMPTZ NOT NULL, registered_by VARCHAR)"""
    )


def ensure_account_schema(con: duckdb.DuckDBPyConnection) -> None:
    """meta.run_accounts: the Pipedrive company each run writes to (a side table, so older files keep working)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        """CREATE TABLE IF NOT EXISTS meta.run_accounts (
            run_key VARCHAR PRIMARY KEY, company_id BIGINT NOT NULL, company_domain VARCHAR, company_name VARCHAR,
            user_id BIGINT, user_email VARCHAR, user_name VARCHAR, host VARCHAR, pinned_at TIMESTAMPTZ NOT NULL)"""
    )


_ACCOUNT_COLS = "company_id, company_domain, company_name, user_id, user_email, user_name, host"


def run_account(con: duckdb.DuckDBPyConnection, run_key: str) -> AccountIdentity | None:
    """The account `run_key` first wrote to, or None before its first write."""
    if not has_table(con, "meta", "run_accounts"):
        return None
    row = con.execute(f"SELECT {_ACCOUNT_COLS} FROM meta.run_accounts WHERE run_key = ?", [run_key]).fetchall()
    return AccountIdentity(*row[0]) if row else None


def pin_account(con: duckdb.DuckDBPyConnection, run_key: str, account: AccountIdentity) -> None:
    ensure_account_schema(con)
    con.execute(
        f"INSERT OR IGNORE INTO meta.run_accounts (run_key, {_ACCOUNT_COLS}, pinned_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_key, account.company_id, account.company_domain, account.company_name, account.user_id,
         account.user_email, account.user_name, account.host, datetime.now(UTC)],
    )


def check_account(con: duckdb.DuckDBPyConnection, client, run_key: str, *, pin: bool = True) -> AccountIdentity:
    """The account `client` talks to, if it is the one `run_key` writes to; call it before any write.

    Refuses with WrongAccount when the run wrote to another company, or, for a run's first write,
    when the standing runs it builds on (the id map) live in another company. A run's first check
    pins it to the account (`pin=False`: check only, for a preview). The probe itself refuses a base
    URL that is not Pipedrive's API (NotPipedriveApi) and a refused token (TokenRefused).
    """
    here = client.identity()
    pinned = run_account(con, run_key)
    if pinned is not None:
        if not pinned.same_company(here):
            raise WrongAccount(run_key, pinned, here)
        return here
    other = _standing_run_elsewhere(con, run_key, here)
    if other is not None:
        raise WrongAccount(other[0], other[1], here, builder=run_key)
    unpinned = _standing_unpinned_runs(con)
    if unpinned:
        _check_unpinned(con, unpinned, here)
    if pin:
        for key in {run_key, *unpinned}:
            pin_account(con, key, here)
    return here


class UnprovenAccount(UserError):
    """Runs loaded before runs were pinned, and the data folder's fields live in another company."""


def _standing_unpinned_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs standing in the id map that were loaded before runs recorded their account."""
    if not has_table(con, "meta", "audit_log"):
        return []
    pinned = "AND run_key NOT IN (SELECT run_key FROM meta.run_accounts)" if has_table(con, "meta", "run_accounts") else ""
    rows = con.execute(
        "SELECT DISTINCT run_key FROM meta.audit_log WHERE rolled_back_by IS NULL AND run_key NOT LIKE '%:%' "
        f"{pinned} ORDER BY run_key"
    ).fetchall()
    return [r[0] for r in rows]


def _check_unpinned(con: duckdb.DuckDBPyConnection, unpinned: list[str], here: AccountIdentity) -> None:
    """Such runs have no recorded account; the companies whose custom fields this data folder
    provisioned are the evidence of where they loaded, so a company outside them is refused."""
    if not has_table(con, "meta", "field_registry"):
        return
    accounts = sorted(r[0] for r in con.execute("SELECT DISTINCT account FROM meta.field_registry").fetchall())
    if not accounts or here.key in accounts:
        return
    raise UnprovenAccount(
        f"run {unpinned[0]} loaded before runs were pinned to their Pipedrive account, and this data folder "
        f"provisioned its fields in company {', '.join(accounts)}, but PIPEDRIVE_BASE_URL/TOKEN now point at "
        f"{here.label}; point them back at {accounts[0]}"
    )


def _standing_run_elsewhere(
    con: duckdb.DuckDBPyConnection, run_key: str, here: AccountIdentity
) -> tuple[str, AccountIdentity] | None:
    """The latest run still standing in the id map (not rolled back) that wrote to another company."""
    if not (has_table(con, "meta", "audit_log") and has_table(con, "meta", "run_accounts")):
        return None
    row = con.execute(
        f"""SELECT run_key, {_ACCOUNT_COLS} FROM meta.run_accounts a
            WHERE run_key <> ? AND company_id <> ? AND EXISTS (
              SELECT 1 FROM meta.audit_log l WHERE l.run_key = a.run_key AND l.rolled_back_by IS NULL)
            ORDER BY pinned_at DESC LIMIT 1""",
        [run_key, here.company_id],
    ).fetchall()
    return (row[0][0], AccountIdentity(*row[0][1:])) if row else None


def register_run(
    con: duckdb.DuckDBPyConnection, run_key: str, bundle_path: Path, fingerprint: str, who: str | None = None
) -> MigrationRun:
    """Record which bundle a run reads. Registering the same key with another bundle is refused."""
    ensure_schema(con)
    mode = mode_of(run_key)
    existing = get_run(con, run_key, required=False)
    if existing is not None:
        if existing.bundle_fingerprint != fingerprint:
            raise UserError(
                f"run '{run_key}' is already registered with another bundle ({existing.bundle_path}); "
                "choose another run key"
            )
        return existing
    run = MigrationRun(run_key, mode, bundle_path.resolve(), fingerprint, datetime.now(UTC), who or _whoami())
    con.execute(
        "INSERT INTO meta.migration_runs VALUES (?, ?, ?, ?, ?, ?)",
        [run.run_key, run.mode, str(run.bundle_path), run.bundle_fingerprint, run.registered_at, run.registered_by],
    )
    return run


def get_run(con: duckdb.DuckDBPyConnection, run_key: str, required: bool = True) -> MigrationRun | None:
    ensure_schema(con)
    row = con.execute(
        "SELECT run_key, mode, bundle_path, bundle_fingerprint, registered_at, registered_by "
        "FROM meta.migration_runs WHERE run_key = ?",
        [run_key],
    ).fetchall()
    row = row[0] if row else None
    if row is None:
        if required:
            raise UserError(
                f"migration run '{run_key}' is not registered: add it with "
                "`flitstack runs add --bundle DIR --mode full` or the register_migration_run job"
            )
        return None
    return MigrationRun(row[0], row[1], Path(row[2]), row[3], row[4], row[5])


def list_runs(con: duckdb.DuckDBPyConnection) -> list[MigrationRun]:
    ensure_schema(con)
    keys = [r[0] for r in con.execute("SELECT run_key FROM meta.migration_runs ORDER BY registered_at").fetchall()]
    return [get_run(con, k) for k in keys]  # type: ignore[misc]


def find_by_fingerprint(con: duckdb.DuckDBPyConnection, fingerprint: str) -> str | None:
    ensure_schema(con)
    row = con.execute(
        "SELECT run_key FROM meta.migration_runs WHERE bundle_fingerprint = ? LIMIT 1", [fingerprint]
    ).fetchall()
    return row[0][0] if row else None


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def add_run(con: duckdb.DuckDBPyConnection, bundle_path: Path, mode: str, work_dir: Path, who: str | None = None) -> MigrationRun:
    """Verify a bundle and register a run for it; the key is `<mode>-<export_id>`."""
    from flitstack_dagster.novo.bundle import open_bundle

    bundle = open_bundle(Path(bundle_path), work_dir / "_register")
    if mode == "delta" and not list_runs(con):
        raise UserError("a delta run needs an earlier full run to compare against; register a full run first")
    return register_run(con, run_key_for(mode, bundle.manifest.export_id), Path(bundle_path), bundle.fingerprint, who)


def bundle_root(run: MigrationRun, work_dir: Path) -> Path:
    """The folder holding the run's bundle files (attachment bodies): the bundle folder itself, or
    for a .zip the copy landing extracted under `work_dir/<run>` (extracted again if it is gone)."""
    from flitstack_dagster.novo.bundle import MANIFEST_NAME, open_bundle

    source = Path(run.bundle_path)
    if source.is_dir():
        return source
    run_dir = Path(work_dir) / run.run_key
    for manifest in sorted(run_dir.glob(f"bundle-*/{MANIFEST_NAME}")) + sorted(run_dir.glob(f"bundle-*/*/{MANIFEST_NAME}")):
        if hashlib.sha256(manifest.read_bytes()).hexdigest() == run.bundle_fingerprint:
            return manifest.parent
    return open_bundle(source, run_dir).root
