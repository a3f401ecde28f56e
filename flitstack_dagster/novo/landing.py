"""Land a verified bundle into DuckDB's raw layer exactly as docs/contracts.md describes it.

Every CSV value lands verbatim as VARCHAR (IDs keep leading zeros, empty stays empty), each row
tagged with its run and record number, all in one transaction so a failure leaves the previous state.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo import attachment_bodies
from flitstack_dagster.novo.bundle import (
    CHUNK,
    DAMAGED,
    Bundle,
    iter_records,
    udf_columns,
    undecodable_message,
)
from flitstack_dagster.novo.columns import BY_FILE, JSON_FILES, NovoFile

SCHEMA = "raw"
BUNDLES_TABLE = "bundles"
# Never appears in real data: DuckDB would otherwise turn empty fields into NULL; raw keeps '' as ''.
NO_NULL = "\x01\x02flitstack-no-null\x03"
MAX_LINE_SIZE = 64 * 1024 * 1024  # one record may hold a very long description
READ_TABLE = "_landing_csv"  # the temp table one CSV is read into before it is numbered
FIX = "fix or re-export the file, then run again."


@dataclass(frozen=True)
class LandedFile:
    """What one file became in the raw layer."""

    file: str
    entity: str
    table: str
    rows: int
    columns: list[str]
    udf_columns: list[str]


def land_bundle(con: duckdb.DuckDBPyConnection, bundle: Bundle, run_key: str) -> list[LandedFile]:
    """Replace run `run_key`'s rows in raw.* with this bundle's records, atomically.

    One transaction swaps the run's rows: each CSV is read as text into a temp table, numbered in file
    order into its raw table (no parsed copy) and its count is checked before COMMIT; any problem rolls
    everything back.
    """
    if not isinstance(run_key, str) or not run_key:
        raise ValueError("run_key must be a non-empty string")
    scratch = Path(tempfile.mkdtemp(prefix="landing-", dir=_scratch_parent(bundle)))
    restore = _keep_file_order(con)
    try:
        csvs = [CsvSource(nf, list(bundle.headers[nf.file]), expected, bundle.path(nf.file), bundle.manifest.encoding)
                for nf, expected in bundle.csv_files()]
        for c in csvs:
            if c.encoding == "cp1252":
                c.source = transcode_to_utf8(c.path, c.encoding, scratch)
        documents = {name: read_json_array(bundle.path(name)) for name in JSON_FILES if bundle.manifest.file(name)}
        with ThreadPoolExecutor(1) as pool:
            while True:
                # the bodies are looked at while the CSVs land (DuckDB works without the GIL)
                bodies = pool.submit(_inspect_bodies, con, bundle, csvs)
                try:
                    return _write_run(con, bundle, run_key, csvs, documents, bodies.result)
                except _Unreadable as e:  # rolled back; explain it, or read a normalized copy next time
                    wait([bodies])  # it may read the same file: let it finish before the source changes
                    _fix_source(e.csv, e.error, scratch)
    finally:
        restore()
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class CsvSource:
    """One CSV of the bundle and the file DuckDB reads for it (UTF-8: transcoded or normalized copy)."""

    nf: NovoFile
    header: list[str]
    expected: int  # records the manifest promises
    path: Path  # the file in the bundle
    encoding: str
    source: Path | None = None  # what DuckDB reads; None = path itself
    first_error: duckdb.Error | None = None  # set once DuckDB refused the file as written

    def __post_init__(self) -> None:
        self.source = self.source or self.path


class _Unreadable(Exception):
    """DuckDB's reader refused a CSV inside the transaction (which is then rolled back)."""

    def __init__(self, csv: CsvSource, error: duckdb.Error) -> None:
        super().__init__(str(error))
        self.csv, self.error = csv, error


def _write_run(
    con: duckdb.DuckDBPyConnection, bundle: Bundle, run_key: str, csvs: list[CsvSource], documents: dict,
    bodies: Callable[[], list[attachment_bodies.BodyFact]] = list,
) -> list[LandedFile]:
    """The one transaction: delete the run's rows, add new columns, insert; all or nothing."""
    con.begin()
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        _delete_run(con, run_key)
        landed = [_insert_csv(con, c, run_key) for c in csvs]
        landed += [_land_json(con, name, items, run_key) for name, items in documents.items()]
        _land_bodies(con, bodies(), run_key)
        _record_bundle(con, bundle, run_key)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return landed


def _scratch_parent(bundle: Bundle) -> Path:
    bundle.work_dir.mkdir(parents=True, exist_ok=True)
    return bundle.work_dir


def _keep_file_order(con: duckdb.DuckDBPyConnection):
    """`_row_number` is `row_number() OVER ()` in the file's order (as read into READ_TABLE), so
    insertion order must be kept."""
    (before,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0]
    con.execute("SET preserve_insertion_order = true")
    return lambda: con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")


def q(name: str) -> str:
    """A DuckDB identifier, quoted so any header (spaces, colons, quotes) survives verbatim."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def raw_table(entity: str) -> str:
    return f"{SCHEMA}.{q(entity)}"


# --------------------------------------------------------------------------------------------- tables


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]
    ).fetchall()
    return {r[0] for r in rows}


def _delete_run(con: duckdb.DuckDBPyConnection, run_key: str) -> None:
    """Re-landing replaces exactly this run's partition, in every table this module writes."""
    ours = set(BY_FILE_ENTITIES) | {_json_entity(n) for n in JSON_FILES} | {BUNDLES_TABLE}
    for table in sorted(_existing_tables(con) & ours):
        con.execute(f"DELETE FROM {raw_table(table)} WHERE _run_key = ?", [run_key])


BY_FILE_ENTITIES = tuple(nf.entity for nf in BY_FILE.values())


def _ensure_columns(con: duckdb.DuckDBPyConnection, entity: str, header: list[str]) -> None:
    """Create raw.<entity> or add the header's new (UDF) columns; older runs read NULL there.

    raw.attachments also carries landing's body facts (`_body`, ...: novo/attachment_bodies.py)."""
    if entity == "attachments":
        header = [*header, *attachment_bodies.COLUMNS]
    if entity not in _existing_tables(con):
        cols = ", ".join(f"{q(h)} VARCHAR" for h in header)
        con.execute(f"CREATE TABLE {raw_table(entity)} (_run_key VARCHAR, _row_number BIGINT, {cols})")
        return
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, entity],
    ).fetchall()
    have = {r[0].lower() for r in rows}
    for h in header:
        if h.lower() not in have:
            con.execute(f"ALTER TABLE {raw_table(entity)} ADD COLUMN {q(h)} VARCHAR")


# --------------------------------------------------------------------------------------------- CSV


def _insert_csv(con: duckdb.DuckDBPyConnection, c: CsvSource, run_key: str) -> LandedFile:
    """Append the file's records under this run's key, `_row_number` = 1-based record number (file
    order: insertion order is kept), then check the count against the manifest."""
    _ensure_columns(con, c.nf.entity, c.header)
    try:
        # read into memory first: numbering rows straight off the reader would parse the file on one core
        con.execute(f"CREATE OR REPLACE TEMP TABLE {READ_TABLE} AS SELECT * FROM {_read_csv(c.source, c.header)}")
    except duckdb.Error as e:
        raise _Unreadable(c, e) from None
    ((count,),) = con.execute(
        f"INSERT INTO {raw_table(c.nf.entity)} BY NAME "
        f"SELECT ?::VARCHAR AS _run_key, row_number() OVER () AS _row_number, * FROM {READ_TABLE}",
        [run_key],
    ).fetchall()
    con.execute(f"DROP TABLE {READ_TABLE}")
    if count != c.expected:
        raise BundleError(
            f"{c.nf.file}: {count:,} records, manifest says {c.expected:,}; "
            f"the file was changed or cut short after the export — {DAMAGED}"
        )
    nf = c.nf
    return LandedFile(nf.file, nf.entity, f"{SCHEMA}.{nf.entity}", count, c.header, udf_columns(nf.file, c.header))


def _fix_source(c: CsvSource, error: duckdb.Error, scratch: Path) -> None:
    """After DuckDB refused `c`: raise a BundleError naming the bad record, or (valid CSV DuckDB's
    reader dislikes, e.g. mixed CRLF/LF line ends) read a uniformly rewritten copy next time."""
    if c.first_error is not None:
        raise BundleError(f"{c.path.name}: cannot be read as CSV ({_first_line(c.first_error)}); {FIX}") from None
    c.first_error = error
    explain_csv_problem(c.path, c.encoding, len(c.header))  # raises with file, line and what to do
    c.source = normalize_csv(c.path, c.encoding, scratch)


def _read_csv(source: Path, header: list[str]) -> str:
    """DuckDB's reader over one bundle CSV: every value text, '' kept as '', strict quoting."""
    columns = "{" + ", ".join(f"{lit(h)}: 'VARCHAR'" for h in header) + "}"
    return (
        f"read_csv({lit(str(source))}, "
        f"header = true, auto_detect = false, columns = {columns}, all_varchar = true, "
        f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, ignore_errors = false, "
        f"null_padding = false, nullstr = [{lit(NO_NULL)}], allow_quoted_nulls = false, "
        f"encoding = 'utf-8', max_line_size = {MAX_LINE_SIZE})"
    )


def explain_csv_problem(path: Path, encoding: str, width: int) -> None:
    """Find the first bad record with Python's csv module and raise a BundleError that names it."""
    records = iter_records(path, encoding)  # itself raises on bad quoting or bad bytes
    next(records, None)
    for number, (line, row) in enumerate(records, start=1):
        if len(row) != width:
            raise BundleError(
                f"{path.name}: record {number:,} (ending on line {line:,}) has {len(row)} values, "
                f"the header has {width}; a value with a comma may be missing its quotes — {FIX}"
            )


def normalize_csv(path: Path, encoding: str, scratch: Path) -> Path:
    """Rewrite a valid CSV as UTF-8 with uniform LF line ends and every value quoted."""
    out_path = scratch / f"{path.stem}.normalized.csv"
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for _, row in iter_records(path, encoding):
            writer.writerow(row)
    return out_path


def transcode_to_utf8(path: Path, encoding: str, scratch: Path) -> Path:
    """Stream a cp1252 file to UTF-8 (cp1252 is not latin-1: € and curly quotes live in 0x80–0x9F)."""
    out_path = scratch / f"{path.stem}.utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(path, "rb") as src, open(out_path, "w", encoding="utf-8", newline="") as out:
        try:
            while chunk := src.read(CHUNK):
                out.write(decoder.decode(chunk))
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            raise BundleError(undecodable_message(path, encoding)) from None
    return out_path


def _first_line(e: Exception) -> str:
    """DuckDB's messages run to dozens of lines of reader settings; the first says what happened."""
    text = re.sub(r"^[A-Za-z ]*Error:\s*", "", str(e).strip())
    return text.splitlines()[0] if text else type(e).__name__


# --------------------------------------------------------------------------------------------- JSON


def _json_entity(name: str) -> str:
    return name.removesuffix(".json")


def _land_json(con: duckdb.DuckDBPyConnection, name: str, items: list, run_key: str) -> LandedFile:
    """One raw row per array element, re-serialized compactly (the configuration does not migrate)."""
    entity = _json_entity(name)
    if entity not in _existing_tables(con):
        con.execute(f"CREATE TABLE {raw_table(entity)} (_run_key VARCHAR, _row_number BIGINT, json VARCHAR)")
    rows = [(run_key, i, json.dumps(item, ensure_ascii=False)) for i, item in enumerate(items, start=1)]
    if rows:
        con.executemany(f"INSERT INTO {raw_table(entity)} (_run_key, _row_number, json) VALUES (?, ?, ?)", rows)
    return LandedFile(name, entity, f"{SCHEMA}.{entity}", len(rows), ["json"], [])


def read_json_array(path: Path) -> list:
    """The file's JSON array; anything else is a BundleError naming the file."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BundleError(f"{path.name} is not UTF-8 text; {DAMAGED}") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{path.name} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); {DAMAGED}") from None
    if not isinstance(data, list):
        raise BundleError(f"{path.name} must hold a JSON array, found a {type(data).__name__}; {DAMAGED}")
    return data


# --------------------------------------------------------------------------------------------- bodies


def _inspect_bodies(con: duckdb.DuckDBPyConnection, bundle: Bundle, csvs: list[CsvSource]) -> list[attachment_bodies.BodyFact]:
    """Look at every attachment body (runs in a worker thread on its own cursor, outside the
    transaction). If DuckDB cannot read attachments.csv, neither can the landing: that error wins."""
    att = next((c for c in csvs if c.nf.entity == "attachments"), None)
    if att is None or "Bundle Path" not in att.header:
        return []
    cur = con.cursor()  # preserve_insertion_order is global: numbered in file order like the insert
    try:
        paths = cur.execute(
            f'SELECT row_number() OVER (), "Bundle Path" FROM {_read_csv(att.source, att.header)}').fetchall()
    finally:
        cur.close()
    return attachment_bodies.inspect(bundle, paths)


def _land_bodies(con: duckdb.DuckDBPyConnection, facts: list[attachment_bodies.BodyFact], run_key: str) -> None:
    """Fill raw.attachments' `_body*` columns for this run (see novo/attachment_bodies.py)."""
    if not facts:
        return
    frame = pl.DataFrame(
        {"n": [f.row_number for f in facts], "body": [f.body for f in facts],
         "bytes": [f.body_bytes for f in facts], "sha": [f.body_sha256 for f in facts]},
        schema={"n": pl.Int64, "body": pl.String, "bytes": pl.String, "sha": pl.String},
    )
    con.register("_landing_bodies", frame)
    try:
        con.execute(
            f"UPDATE {raw_table('attachments')} AS a SET _body = b.body, _body_bytes = b.bytes, _body_sha256 = b.sha "
            "FROM _landing_bodies AS b WHERE a._run_key = ? AND a._row_number = b.n", [run_key])
    finally:
        con.unregister("_landing_bodies")


# --------------------------------------------------------------------------------------------- bundles


def _record_bundle(con: duckdb.DuckDBPyConnection, bundle: Bundle, run_key: str) -> None:
    """One raw.bundles row per run: where the data came from and how to read its dates."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {raw_table(BUNDLES_TABLE)} (_run_key VARCHAR, export_id VARCHAR, "
        "tenant VARCHAR, kind VARCHAR, exported_at TIMESTAMPTZ, changed_since TIMESTAMPTZ, timezone VARCHAR, "
        "date_order VARCHAR, encoding VARCHAR, bundle_path VARCHAR, manifest_json VARCHAR, landed_at TIMESTAMPTZ)"
    )
    m = bundle.manifest
    con.execute(
        f"INSERT INTO {raw_table(BUNDLES_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_key, m.export_id, m.tenant, m.kind, m.exported_at, m.changed_since, m.timezone,
            m.date_order, m.encoding, str(bundle.source), bundle.manifest_bytes.decode("utf-8-sig"),
            datetime.now(UTC),
        ],
    )
