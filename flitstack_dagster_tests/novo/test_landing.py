"""Landing into raw.*: verbatim VARCHAR values, file order, encodings, run partitions, atomicity."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.cli import verify_bundle as command
from flitstack_dagster.novo import landing
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.columns import BY_FILE
from flitstack_dagster.novo.landing import LandedFile, land_bundle
from flitstack_dagster_tests.novo.bundle_factory import (
    edit_entry,
    header_of,
    replace_file,
    write_bundle,
)

WO = [
    {"WO Number": "00042", "Title": "Leaking hydrant", "Description": "line one\r\nline two, with \"quotes\"\nthree",
     "Status": "Open", "Priority": ""},
    {"WO Number": "42", "Title": "  padded  ", "Status": "New", "Priority": "N/A"},
    {"WO Number": "WO-004211", "Title": "<script>alert(1)</script>", "Status": "Closed"},
]


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def land(path: Path, con, run_key: str, work: Path) -> list[LandedFile]:
    return land_bundle(con, open_bundle(path, work), run_key)


def wo_rows(con, run_key: str | None = None):
    where = "" if run_key is None else f"WHERE _run_key = '{run_key}'"
    return con.execute(
        f'SELECT _run_key, _row_number, "WO Number", "Title", "Description", "Priority" '
        f"FROM raw.work_orders {where} ORDER BY _run_key, _row_number"
    ).fetchall()


# ------------------------------------------------------------------------------------------ layout


def test_layout_matches_the_contract(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO}, udfs=[("Work Order", "UDF: Council District")])
    landed = land(d, con, "full-1", tmp_path / "w")
    cols = [r[0] for r in con.execute("DESCRIBE raw.work_orders").fetchall()]
    assert cols == ["_run_key", "_row_number", *BY_FILE["work_orders.csv"].headers, "UDF: Council District"]
    types = {r[0]: r[1] for r in con.execute("DESCRIBE raw.work_orders").fetchall()}
    assert types["_row_number"] == "BIGINT" and types["WO Number"] == "VARCHAR"
    wo = next(lf for lf in landed if lf.file == "work_orders.csv")
    assert wo == LandedFile("work_orders.csv", "work_orders", "raw.work_orders", 3,
                            header_of("work_orders.csv", ["UDF: Council District"]), ["UDF: Council District"])
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
    assert tables == {nf.entity for nf in BY_FILE.values() if not nf.delta_only} | {
        "workflow_rules", "form_configurations", "bundles"}


def test_values_land_verbatim_in_file_order(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    land(d, con, "full-1", tmp_path / "w")
    rows = wo_rows(con)
    assert [r[1] for r in rows] == [1, 2, 3]
    assert rows[0][2] == "00042" and rows[1][2] == "42"  # leading zeros survive; two different IDs
    assert rows[0][4] == "line one\r\nline two, with \"quotes\"\nthree"  # multi-line: one record
    assert rows[1][3] == "  padded  "
    assert rows[0][5] == "" and rows[1][5] == "N/A"  # empty stays empty, null markers stay as written
    assert rows[2][3] == "<script>alert(1)</script>"


def test_header_only_files_land_zero_rows(tmp_path: Path, con):
    landed = land(write_bundle(tmp_path / "b"), con, "full-1", tmp_path / "w")
    assert {lf.file: lf.rows for lf in landed}["labor.csv"] == 0
    assert con.execute("SELECT count(*) FROM raw.labor").fetchone() == (0,)


def test_lf_line_ends(tmp_path: Path, con):
    land(write_bundle(tmp_path / "b", {"work_orders.csv": WO}, newline="\n"), con, "r", tmp_path / "w")
    assert [r[2] for r in wo_rows(con)] == ["00042", "42", "WO-004211"]


def test_mixed_line_ends_still_land(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    header = ",".join(f'"{h}"' for h in header_of("work_orders.csv")).encode()
    body = header + b"\r\n" + b"A1,t,,Open" + b"," * 16 + b"\n" + b"A2,t,,Open" + b"," * 16 + b"\r\n"
    replace_file(d, "work_orders.csv", body)
    edit_entry(d, "work_orders.csv", rows=2)
    land(d, con, "r", tmp_path / "w")
    assert [(r[1], r[2]) for r in wo_rows(con)] == [(1, "A1"), (2, "A2")]


# ------------------------------------------------------------------------------------------ encodings


def test_utf8_sig_bom_is_stripped(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"departments.csv": [{"Department ID": "007", "Department Name": "Público"}]},
                     encoding="utf-8-sig")
    assert (d / "departments.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    land(d, con, "r", tmp_path / "w")
    assert con.execute('SELECT "Department ID", "Department Name" FROM raw.departments').fetchall() == [
        ("007", "Público")]


def test_utf8_with_stray_bom_still_matches_headers(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"departments.csv": [{"Department ID": "1"}]})
    replace_file(d, "departments.csv", b"\xef\xbb\xbf" + (d / "departments.csv").read_bytes())
    land(d, con, "r", tmp_path / "w")
    assert con.execute('SELECT "Department ID" FROM raw.departments').fetchall() == [("1",)]


def test_cp1252_euro_and_curly_quotes(tmp_path: Path, con):
    title = "\u201cUrgent\u201d \u2013 \u20ac1,200 \u2018quote\u2019 caf\u00e9"
    d = write_bundle(tmp_path / "b", {"work_orders.csv": [{"WO Number": "0001", "Title": title, "Status": "Open",
                                                           "Description": "multi\r\nline \u2026"}]},
                     encoding="cp1252")
    raw = (d / "work_orders.csv").read_bytes()
    assert b"\x80" in raw and b"\x93" in raw  # really cp1252 bytes, not latin-1 or UTF-8
    land(d, con, "r", tmp_path / "w")
    assert con.execute('SELECT "WO Number", "Title", "Description" FROM raw.work_orders').fetchall() == [
        ("0001", title, "multi\r\nline \u2026")]
    assert not list((tmp_path / "w").glob("landing-*"))  # the transcoded copy is cleaned up


def test_cp1252_undefined_byte_is_refused_with_line(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO}, encoding="cp1252")
    data = (d / "work_orders.csv").read_bytes().replace(b"Pothole", b"x").replace(b"padded", b"pad\x81ed")
    replace_file(d, "work_orders.csv", data)
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    assert "work_orders.csv: byte 0x81 on line 5 is not valid cp1252 text" in str(e.value)


def test_invalid_utf8_is_refused(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    replace_file(d, "work_orders.csv", (d / "work_orders.csv").read_bytes().replace(b"padded", b"pad\xffed"))
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    assert "work_orders.csv: byte 0xFF on line 5 is not valid utf-8 text" in str(e.value)


# ------------------------------------------------------------------------------------------ damage


def test_record_count_mismatch(tmp_path: Path, con):
    labor = [{"Labor ID": f"L{i}", "WO Number": "00042"} for i in range(1204)]
    d = write_bundle(tmp_path / "b", {"labor.csv": labor})
    edit_entry(d, "labor.csv", rows=1205)
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    assert str(e.value).startswith("labor.csv: 1,204 records, manifest says 1,205")
    assert "raw" not in {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}


def test_wrong_field_count_names_record_and_line(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    text = (d / "work_orders.csv").read_bytes().replace(b"42,  padded  ,", b"42,  padded  ,extra,")
    replace_file(d, "work_orders.csv", text)
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    msg = str(e.value)
    assert "work_orders.csv: record 2 (ending on line 5) has 21 values, the header has 20" in msg
    assert "re-export" in msg and "duckdb" not in msg.lower()


@pytest.mark.parametrize("damage", ["unbalanced", "truncated"])
def test_unreadable_csv_names_file_and_line(tmp_path: Path, con, damage: str):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    data = (d / "work_orders.csv").read_bytes()
    if damage == "unbalanced":
        data = data.replace(b"Pothole", b"x").replace(b"<script>", b'"<script>')
    else:
        data = data[: data.index(b"line two")]  # cut inside the quoted multi-line description
    replace_file(d, "work_orders.csv", data)
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    msg = str(e.value)
    assert msg.startswith("work_orders.csv: cannot be read as CSV after line")
    assert "Traceback" not in msg and "Possible fixes" not in msg


def test_json_files_must_be_arrays(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b")
    replace_file(d, "workflow_rules.json", b'{"rule_id": 1}')
    with pytest.raises(BundleError, match="workflow_rules.json must hold a JSON array"):
        land(d, con, "r", tmp_path / "w")


# ------------------------------------------------------------------------------------------ JSON & bundles


def test_json_one_row_per_element_and_bundle_row(tmp_path: Path, con):
    rules = [{"rule_id": "R1", "name": "Escalate", "enabled": True}, {"rule_id": "R2", "name": "Caf\u00e9"}]
    d = write_bundle(tmp_path / "b", json_files={"workflow_rules.json": rules})
    landed = land(d, con, "full-1", tmp_path / "w")
    assert {lf.file: lf.rows for lf in landed}["workflow_rules.json"] == 2
    rows = con.execute("SELECT _run_key, _row_number, json::JSON->>'rule_id' FROM raw.workflow_rules "
                       "ORDER BY _row_number").fetchall()
    assert rows == [("full-1", 1, "R1"), ("full-1", 2, "R2")]
    assert con.execute("SELECT count(*) FROM raw.form_configurations").fetchone() == (0,)
    cols = [r[0] for r in con.execute("DESCRIBE raw.bundles").fetchall()]
    assert cols == ["_run_key", "export_id", "tenant", "kind", "exported_at", "changed_since", "timezone",
                    "date_order", "encoding", "bundle_path", "manifest_json", "landed_at"]
    row = con.execute("SELECT _run_key, export_id, kind, timezone, date_order, encoding, bundle_path, "
                      "changed_since IS NULL, manifest_json LIKE '%format_version%' FROM raw.bundles").fetchall()
    assert row == [("full-1", "springfield-20261120T070000Z", "full", "America/Chicago", "MDY", "utf-8", str(d),
                    True, True)]


def test_delta_lands_deleted_csv(tmp_path: Path, con):
    d = write_bundle(tmp_path / "b", {"deleted.csv": [{"Entity": "Work Order", "ID": "00042"}]}, kind="delta")
    land(d, con, "delta-1", tmp_path / "w")
    assert con.execute('SELECT "Entity", "ID" FROM raw.deleted').fetchall() == [("Work Order", "00042")]
    assert con.execute("SELECT changed_since IS NOT NULL FROM raw.bundles").fetchone() == (True,)


# ------------------------------------------------------------------------------------------ runs


def test_relanding_replaces_exactly_that_runs_rows(tmp_path: Path, con):
    a = write_bundle(tmp_path / "a", {"work_orders.csv": WO})
    b = write_bundle(tmp_path / "b", {"work_orders.csv": WO[:1]})
    land(a, con, "full-1", tmp_path / "w")
    land(a, con, "full-2", tmp_path / "w")
    land(b, con, "full-1", tmp_path / "w")  # re-land run 1 from a smaller bundle
    assert [r[2] for r in wo_rows(con, "full-1")] == ["00042"]
    assert [r[2] for r in wo_rows(con, "full-2")] == ["00042", "42", "WO-004211"]
    assert con.execute("SELECT _run_key, count(*) FROM raw.bundles GROUP BY 1 ORDER BY 1").fetchall() == [
        ("full-1", 1), ("full-2", 1)]
    land(b, con, "full-1", tmp_path / "w")  # idempotent
    assert len(wo_rows(con, "full-1")) == 1


def test_new_udf_column_in_a_second_run(tmp_path: Path, con):
    land(write_bundle(tmp_path / "a", {"work_orders.csv": WO[:1]}), con, "full-1", tmp_path / "w")
    d = write_bundle(tmp_path / "b", {"work_orders.csv": [dict(WO[1], **{"UDF: Council District": "3"})]},
                     udfs=[("Work Order", "UDF: Council District")])
    landed = land(d, con, "full-2", tmp_path / "w")
    assert next(lf for lf in landed if lf.file == "work_orders.csv").udf_columns == ["UDF: Council District"]
    rows = con.execute('SELECT _run_key, "UDF: Council District" FROM raw.work_orders ORDER BY 1').fetchall()
    assert rows == [("full-1", None), ("full-2", "3")]


def test_failed_landing_leaves_the_previous_state(tmp_path: Path, con):
    land(write_bundle(tmp_path / "a", {"work_orders.csv": WO}), con, "full-1", tmp_path / "w")
    before = wo_rows(con)
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO[:1]})
    edit_entry(d, "attachments.csv", rows=7)  # damage found late, after work_orders parsed fine
    with pytest.raises(BundleError, match="attachments.csv: 0 records, manifest says 7"):
        land(d, con, "full-1", tmp_path / "w")
    assert wo_rows(con) == before


def test_failure_inside_the_transaction_rolls_everything_back(tmp_path: Path, con, monkeypatch):
    land(write_bundle(tmp_path / "a", {"work_orders.csv": WO}), con, "full-1", tmp_path / "w")
    before = wo_rows(con)
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO[:1]}, udfs=[("Work Order", "UDF: New")])

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(landing, "_record_bundle", boom)
    with pytest.raises(RuntimeError):
        land(d, con, "full-1", tmp_path / "w")
    assert wo_rows(con) == before
    cols = [r[0] for r in con.execute("DESCRIBE raw.work_orders").fetchall()]
    assert "UDF: New" not in cols  # the ALTER TABLE was rolled back too
    temps = con.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_landing_%'")
    assert temps.fetchall() == []


def test_large_file_keeps_order_and_count(tmp_path: Path, con):
    rows = [{"Labor ID": f"{i:06d}", "WO Number": "1", "Notes": "a\nb" if i % 3 == 0 else ""} for i in range(1, 50_001)]
    d = write_bundle(tmp_path / "b", {"labor.csv": rows})
    land(d, con, "r", tmp_path / "w")
    bad = con.execute('SELECT count(*) FROM raw.labor WHERE _row_number::VARCHAR != ltrim("Labor ID", \'0\')')
    assert bad.fetchone() == (0,)
    assert con.execute("SELECT count(*), max(_row_number) FROM raw.labor").fetchone() == (50_000, 50_000)


def test_run_key_is_required(tmp_path: Path, con):
    with pytest.raises(ValueError):
        land(write_bundle(tmp_path / "b"), con, "", tmp_path / "w")


# ------------------------------------------------------------------------------------------ command


def test_verify_bundle_command_ok(tmp_path: Path, capsys):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    assert command.run(argparse.Namespace(path=d, work_dir=None)) == 0
    out = capsys.readouterr().out
    assert "work_orders.csv" in out and "OK" in out and "17 files match the manifest" in out
    line = next(ln for ln in out.splitlines() if "work_orders.csv" in ln)
    assert line.split()[1] == "3" and line.split()[-1] == "OK"


def test_verify_bundle_command_refuses_damage(tmp_path: Path, capsys):
    d = write_bundle(tmp_path / "b", {"work_orders.csv": WO})
    edit_entry(d, "work_orders.csv", rows=4)
    assert cli_main(["verify-bundle", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: work_orders.csv: 3 records, manifest says 4") and "Traceback" not in err


@pytest.mark.parametrize("encoding, bad", [("utf-8", b"\xff"), ("cp1252", b"\x9d")])
def test_bad_bytes_far_into_a_file_name_the_line(tmp_path: Path, con, encoding: str, bad: bytes):
    """Past the header's first read: the DuckDB (utf-8) and transcoding (cp1252) paths explain it too."""
    rows = [{"Labor ID": f"L{i}", "WO Number": "1", "Notes": "x" * 50} for i in range(1, 2001)]
    d = write_bundle(tmp_path / "b", {"labor.csv": rows}, encoding=encoding)
    data = (d / "labor.csv").read_bytes()
    at = data.index(b"L1500,")
    replace_file(d, "labor.csv", data[:at] + b"L1500" + bad + data[at + 5:])
    with pytest.raises(BundleError) as e:
        land(d, con, "r", tmp_path / "w")
    assert f"labor.csv: byte 0x{bad[0]:02X} on line 1,501 is not valid {encoding} text" in str(e.value)
