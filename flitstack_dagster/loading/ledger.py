"""The token ledger: what each run spent in each Pipedrive account, per UTC day, and how far its
long steps have got.

Every step that sends requests records them (`metered`): the account audit, provisioning, the loads,
deletions, the read-back, repair and rollback (under `rollback:<run>`, as its audit rows are), so the
ledger's total for an account is what the product spent there.

SQLite beside the DuckDB file (`ledger.sqlite` in the data folder): DuckDB lets one process open the
file while a load writes to it, SQLite lets `flitstack status` and the console's progress read while
a step writes. Rows name the account by its company key (the domain), never by its token.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

LEDGER_FILE = "ledger.sqlite"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tokens (account TEXT NOT NULL, day TEXT NOT NULL, run_key TEXT NOT NULL,
       tokens INTEGER NOT NULL, PRIMARY KEY (account, day, run_key))""",
    """CREATE TABLE IF NOT EXISTS progress (run_key TEXT NOT NULL, step TEXT NOT NULL, done INTEGER NOT NULL,
       total INTEGER NOT NULL, tokens INTEGER NOT NULL, seconds REAL NOT NULL, updated_at REAL NOT NULL,
       PRIMARY KEY (run_key, step))""",
)


def utc_day(when: datetime | None = None) -> str:
    """Pipedrive refills the daily budget at UTC midnight, so a day of the ledger is a UTC date."""
    return (when or datetime.now(UTC)).astimezone(UTC).date().isoformat()


@dataclass(frozen=True)
class StepProgress:
    """How far one long step of a run has got: records done of total, tokens and seconds so far."""

    run_key: str
    step: str
    done: int
    total: int
    tokens: int
    seconds: float
    updated_at: float  # time.time() of the last report

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def eta_seconds(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate else None

    @property
    def finished(self) -> bool:
        return self.done >= self.total


class Ledger:
    """One data folder's ledger. Safe from several threads and processes: each call opens its own connection."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def in_folder(cls, root: Path) -> "Ledger":
        return cls(Path(root) / LEDGER_FILE)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            for ddl in _SCHEMA:
                con.execute(ddl)
            with con:
                yield con
        finally:
            con.close()

    def add_tokens(self, account: str, run_key: str, tokens: int, day: str | None = None) -> None:
        if tokens <= 0:
            return
        with self._db() as con:
            con.execute("INSERT INTO tokens VALUES (?, ?, ?, ?) ON CONFLICT (account, day, run_key) "
                        "DO UPDATE SET tokens = tokens + excluded.tokens", (account, day or utc_day(), run_key, tokens))

    def tokens(self, *, run_key: str | None = None, account: str | None = None, day: str | date | None = None) -> int:
        """Tokens spent, narrowed to a run, an account and a day when given."""
        where = {"run_key": run_key, "account": account, "day": str(day) if day else None}
        given = {k: v for k, v in where.items() if v is not None}
        sql = "SELECT COALESCE(SUM(tokens), 0) FROM tokens" + (
            " WHERE " + " AND ".join(f"{k} = ?" for k in given) if given else "")
        if not self.path.exists():
            return 0
        with self._db() as con:
            return int(con.execute(sql, list(given.values())).fetchone()[0])

    def accounts(self, run_key: str) -> list[str]:
        if not self.path.exists():
            return []
        with self._db() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT account FROM tokens WHERE run_key = ? ORDER BY 1",
                                              [run_key])]

    def save_progress(self, p: StepProgress) -> None:
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (p.run_key, p.step, p.done, p.total, p.tokens, p.seconds, p.updated_at))

    def progress(self, run_key: str, since: float = 0.0) -> list[StepProgress]:
        """The run's long steps reported at or after `since` (time.time()), oldest report first."""
        if not self.path.exists():
            return []
        with self._db() as con:
            rows = con.execute("SELECT * FROM progress WHERE run_key = ? AND updated_at >= ? ORDER BY updated_at",
                               [run_key, since]).fetchall()
        return [StepProgress(*r) for r in rows]


def account_key(client) -> str:
    """The company the client writes to (its domain); its host when the account could not be identified
    (a refused token still spends the request that found out)."""
    try:
        return client.account()
    except Exception:  # noqa: BLE001 - the step's own error is the one to report, not this
        return urlsplit(client.base_url).netloc


class SpendMeter:
    """Writes what a client spends for a run into the ledger as it goes, and the step's progress."""

    def __init__(self, ledger: Ledger, client, run_key: str, step: str):
        self.ledger, self.client, self.run_key, self.step = ledger, client, run_key, step
        self._last = client.tokens_spent
        self._lock = threading.Lock()

    def flush(self) -> None:
        """Add the tokens spent since the last flush to today's row of the client's account."""
        if self.client.tokens_spent == self._last:
            return  # nothing spent: not even the account look-up is worth a request
        account = account_key(self.client)  # before counting: finding the account may spend a request
        with self._lock:
            now = self.client.tokens_spent
            spent, self._last = now - self._last, now
        if spent > 0:
            self.ledger.add_tokens(account, self.run_key, spent)

    def report(self, done: int, total: int, tokens: int, seconds: float) -> None:
        self.flush()
        self.ledger.save_progress(StepProgress(self.run_key, self.step, done, total, tokens, seconds, time.time()))

    def wrap(self, forward: Callable | None, every: float) -> Callable:
        """A loader progress callback that reports to the ledger each time and to `forward` every `every` s."""
        last = [0.0]

        def progress(r) -> None:
            self.report(r.done, r.total, r.tokens, r.seconds)
            now = time.monotonic()
            if forward is not None and now - last[0] >= every:
                last[0] = now
                forward(r)

        return progress


@contextmanager
def metered(ledger: Ledger, client, run_key: str, step: str) -> Iterator[SpendMeter]:
    """What `client` spends inside the block goes into the ledger for the run, also when the block
    stops with an error (what was spent was spent). Enter it as soon as the client exists."""
    meter = SpendMeter(ledger, client, run_key, step)
    try:
        yield meter
    finally:
        meter.flush()


__all__ = ["LEDGER_FILE", "Ledger", "account_key", "metered", "SpendMeter", "StepProgress", "utc_day"]
