"""Build bad-input cases at test time from one tiny generated bundle, then open, land and stage them.

`base` is `flitstack generate --work-orders 20` (made once per session); a case copies it, changes
one thing, and — when the case is about content rather than integrity — re-signs the manifest
(sizes, SHA-256, row counts), so the only thing wrong is the thing under test.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.bundle import count_records, open_bundle, text_encoding
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster.staging.quarantine import accounting
from flitstack_dagster.staging.runner import run_all
from flitstack_dagster_tests import kit

RUN = "full-corpus"


def generate(out: Path, *extra: str) -> Path:
    """A tiny, clean, spec-conformant bundle (20 work orders)."""
    assert main(["generate", "--out", str(out), "--work-orders", "20", "--seed", "11", "--no-mess-log", *extra]) == 0
    return out


def copy(base: Path, dest: Path) -> Path:
    return Path(shutil.copytree(base, dest))


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(root: Path, data: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def read_rows(root: Path, name: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV of the bundle, decoded with the manifest's encoding."""
    enc = text_encoding(manifest(root)["encoding"])
    with open(root / name, encoding=enc, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, [dict(zip(header, row)) for row in r]


def write_rows(root: Path, name: str, header: list[str], rows: list[dict[str, str]]) -> None:
    """Rewrite a CSV (CRLF, minimal quoting) in the manifest's encoding; re-sign() afterwards."""
    enc = manifest(root)["encoding"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([row.get(h, "") for h in header])
    (root / name).write_bytes(buf.getvalue().encode(enc))


def edit_rows(root: Path, name: str, change) -> list[dict[str, str]]:
    """`change(rows)` edits the rows in place (or returns new ones); the file is rewritten and re-signed."""
    header, rows = read_rows(root, name)
    rows = change(rows) or rows
    write_rows(root, name, header, rows)
    resign(root)
    return rows


def resign(root: Path, *, counts: bool = True) -> None:
    """Make every manifest entry match its file again: bytes, SHA-256 and (unless counts=False) rows."""
    data = manifest(root)
    rows = {e["name"]: count_records(root / e["name"], data["encoding"]) for e in data["files"]
            if counts and e["name"].endswith(".csv") and (root / e["name"]).is_file()}
    kit.resign(root, rows)


def refusal(path: Path, work: Path) -> str:
    """The BundleError text of opening + landing `path`; asserts nothing landed and no traceback."""
    con = duckdb.connect()
    with pytest.raises(BundleError) as e:
        land_bundle(con, open_bundle(path, work), RUN)
    tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()
    assert tables[0][0] == 0 or con.execute("SELECT count(*) FROM raw.bundles").fetchall()[0][0] == 0
    text = str(e.value)
    assert "Traceback" not in text and "File \"" not in text
    return text


def land_and_stage(root: Path, work: Path) -> duckdb.DuckDBPyConnection:
    """Open, land and stage; every file's rows must be accounted for (staged + set aside)."""
    con = duckdb.connect()
    land_bundle(con, open_bundle(root, work), RUN)
    run_all(con, RUN)
    bad = [a for a in accounting(con, RUN) if not a.ok]
    assert bad == []
    return con


def quarantine(con: duckdb.DuckDBPyConnection, **where) -> list[dict]:
    cond = "".join(f' AND "{k}" = ?' for k in where)
    cur = con.execute(f"SELECT * FROM staging.quarantine WHERE _run_key = ?{cond} ORDER BY file, row_number",
                      [RUN, *where.values()])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def staged(con: duckdb.DuckDBPyConnection, entity: str, id_column: str) -> set[str]:
    return {r for (r,) in con.execute(f'SELECT "{id_column}" FROM staging."stg_{entity}" WHERE _run_key = ?',
                                      [RUN]).fetchall()}


def row_number_of(root: Path, name: str, column: str, value: str) -> int:
    """1-based record number of the first row whose `column` is `value`."""
    _, rows = read_rows(root, name)
    return next(i for i, r in enumerate(rows, start=1) if r[column] == value)
