"""Odd but readable input that lands with a documented repair (or simply intact): byte-order marks,
Windows-1252 text, huge multi-line fields. Nothing is set aside for them."""

from __future__ import annotations

import codecs
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster_tests.corpus.kit import (
    RUN,
    copy,
    edit_rows,
    generate,
    land_and_stage,
    quarantine,
    read_rows,
    resign,
)

pytestmark = pytest.mark.slow

HUGE = "".join(f"Step {i}: isolate, drain, inspect, replace the gasket, refill — line {i}.\r\n" for i in range(40_000))
TENANT_STATUSES = {"Awaiting Parts", "Pending Approval"}


@pytest.fixture(scope="module")
def utf8(base: Path, tmp_path_factory):
    """A UTF-8 bundle: a BOM at the start of work_orders.csv, a BOM pasted into two values, a ~3 MB
    multi-line description (over the csv module's 128 KiB default field limit)."""
    root = copy(base, tmp_path_factory.mktemp("repaired") / "bundle")

    def wo(rows):
        rows[0]["Description"] = HUGE
        rows[1]["Title"] = "\ufeff" + rows[1]["Title"]
    rows = edit_rows(root, "work_orders.csv", wo)
    p = root / "work_orders.csv"
    p.write_bytes(codecs.BOM_UTF8 + p.read_bytes())
    resign(root)
    con = land_and_stage(root, root.parent / "work")
    yield con, rows
    con.close()


def test_a_bom_at_the_start_of_a_utf8_file_is_dropped(utf8):
    con, rows = utf8
    cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'raw' AND table_name = 'work_orders'").fetchall()]
    assert "WO Number" in cols and not [c for c in cols if "\ufeff" in c]
    assert con.execute("SELECT count(*) FROM staging.stg_work_orders").fetchall() == [(len(rows),)]


def test_a_bom_pasted_into_a_value_is_dropped(utf8):
    con, rows = utf8
    raw = con.execute("SELECT \"Title\" FROM raw.work_orders WHERE _row_number = 2").fetchall()[0][0]
    assert raw.startswith("\ufeff")  # landed verbatim ...
    got = con.execute("SELECT title FROM staging.stg_work_orders WHERE wo_number = ?", [rows[1]["WO Number"]]).fetchall()
    assert got == [(rows[1]["Title"].removeprefix("\ufeff"),)]  # ... and repaired in staging


def test_a_huge_multi_line_field_lands_whole(utf8):
    con, rows = utf8
    got = con.execute("SELECT description FROM staging.stg_work_orders WHERE wo_number = ?", [rows[0]["WO Number"]]).fetchall()
    assert len(HUGE) > 3_000_000 and got == [(HUGE,)]
    assert [q for q in quarantine(con) if q["raw_value"] not in TENANT_STATUSES] == []


def test_utf8_sig_bundle_every_file_with_a_bom_lands(tmp_path: Path):
    root = generate(tmp_path / "sig", "--encoding", "utf-8-sig")
    assert (root / "labor.csv").read_bytes().startswith(codecs.BOM_UTF8)
    con = duckdb.connect()
    landed = land_bundle(con, open_bundle(root, tmp_path / "work"), RUN)
    assert all(not h.startswith("\ufeff") for lf in landed for h in lf.columns)
    _, labor = read_rows(root, "labor.csv")
    assert con.execute("SELECT \"Labor ID\" FROM raw.labor ORDER BY _row_number").fetchall()[0] == (labor[0]["Labor ID"],)


def test_windows_1252_text_is_decoded_and_its_misread_bom_dropped(tmp_path: Path):
    root = generate(tmp_path / "cp", "--encoding", "cp1252")
    title = "Café – 5 € “quoted” naïve"

    def wo(rows):
        rows[0]["Title"] = title
        rows[1]["Title"] = "ï»¿" + rows[1]["Title"]  # a UTF-8 BOM pasted into a Windows-1252 export
    rows = edit_rows(root, "work_orders.csv", wo)
    assert title.encode("cp1252") in (root / "work_orders.csv").read_bytes()
    con = land_and_stage(root, tmp_path / "work")
    got = dict(con.execute("SELECT wo_number, title FROM staging.stg_work_orders").fetchall())
    assert got[rows[0]["WO Number"]] == title
    assert got[rows[1]["WO Number"]] == rows[1]["Title"].removeprefix("ï»¿")
