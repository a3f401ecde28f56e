"""Each output writer fed the hostile corpus directly: CSV cells a spreadsheet will not run (and that
still carry the text), Markdown and HTML that show the text instead of rendering it."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flitstack_dagster.defs.metadata import CELL_LIMIT, md_document, md_problems, table
from flitstack_dagster.loading.deletions import DeletionResult, write_report
from flitstack_dagster.loading.store import LoadStore
from flitstack_dagster.reports.quarantine import write_quarantine_report
from flitstack_dagster.core.safe_text import (
    FORMULA_START,
    cap_document,
    csv_cell,
    csv_cell_sql,
    html_text,
    md_json_block,
    md_text,
    plain_line,
    visible_text,
)
from flitstack_dagster.verification.audit_export import export_audit_log
from flitstack_dagster.verification.rebuild import Pattern, RebuildItem, RebuildReference, render_markdown
from flitstack_dagster.verification.report_html import render
from flitstack_dagster.verification.verify import VerificationResult
from flitstack_dagster_tests.outputs.hostile import (
    BIDI_OR_NUL,
    CORPUS,
    FORMULAS,
    LONG,
    csv_round_trips,
    csv_rows,
    html_safe,
    markdown_safe,
)

ALL = [*CORPUS, LONG]


def _text_of(html: str) -> str:
    return unescape(html)


# -- the rules themselves ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ALL)
def test_csv_cell_in_python_and_in_duckdb_agree_and_never_start_a_formula(value):
    cell = csv_cell(value)
    [(sql_cell,)] = duckdb.connect().execute(f"SELECT {csv_cell_sql('$v')}", {"v": value}).fetchall()
    assert cell == sql_cell
    assert not cell.startswith(tuple(FORMULA_START)) and not BIDI_OR_NUL.search(cell)
    assert cell.removeprefix("'") == visible_text(value) if value.startswith(tuple(FORMULA_START)) else cell == visible_text(value)


def test_numbers_and_empty_cells_pass_through():
    assert [csv_cell(v) for v in (-3, 2.5, None)] == [-3, 2.5, None]
    assert duckdb.connect().execute(f"SELECT {csv_cell_sql('NULL')}").fetchall() == [(None,)]


@pytest.mark.parametrize("value", ALL)
def test_md_text_renders_as_the_text_itself(value):
    doc = f"| c |\n|---|\n| {md_text(value)} |\n\n- {md_text(value)}\n\n### {md_text(value)}\n"
    html = markdown_safe(doc, "doc")
    shown = plain_line(value, 200)
    assert _text_of(html).count(shown.strip()) == 3, (shown, html)  # in the cell, the list item and the heading


@pytest.mark.parametrize("value", ALL)
def test_json_blocks_cannot_be_closed_from_inside(value):
    data = {"name": value, "steps": [value + "\n```\n# after"]}
    block = md_json_block(data)
    assert json.loads(block[1]) == data  # the same JSON, only written with escapes
    html = markdown_safe("\n".join(block) + "\ntail\n", "doc")
    assert "<h1>" not in html
    assert html.rstrip().endswith("<p>tail</p>")


def test_a_long_markdown_document_is_cut_at_a_line_with_its_code_block_closed():
    text = "# Doc\n\n```json\n" + "\n".join(f'"line {i}"' for i in range(5000)) + "\n```\n\nend\n"
    cut = cap_document(text, 1000, "data/reports/r/x.md")
    assert len(cut) < 1200 and cut.split("\n")[-3] == "```"
    assert "the whole document is data/reports/r/x.md" in _text_of(markdown_safe(cut, "cut"))
    assert cap_document("short", 1000, "x") == "short"


@pytest.mark.parametrize("value", ALL)
def test_html_text_is_escaped_and_long_text_cut(value):
    page = html_text(value)
    assert "<" not in page and '"' not in page and "'" not in page and not BIDI_OR_NUL.search(page)
    assert unescape(page).startswith(visible_text(value)[:5000])
    assert ("cut after 5,000 of 70,000 characters" in page) == (value is LONG)


# -- the CSV writers ---------------------------------------------------------------------------------


def test_quarantine_csv_is_safe_and_keeps_every_value(tmp_path: Path):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute('CREATE TABLE staging.quarantine (_run_key VARCHAR, file VARCHAR, row_number BIGINT, "column" VARCHAR, '
                "raw_value VARCHAR, reason_code VARCHAR, message VARCHAR, level VARCHAR)")
    for i, v in enumerate(ALL):
        con.execute("INSERT INTO staging.quarantine VALUES ('r', 'work_orders.csv', ?, 'Title', ?, 'bad_number', ?, 'value')",
                    [i + 1, v, f"value {v} is not a number"])
    rows = csv_rows(write_quarantine_report(con, "r", tmp_path))
    assert rows[0] == ["file", "row_number", "column", "raw_value", "reason_code", "message", "level"]
    assert [int(r[1]) for r in rows[1:]] == list(range(1, len(ALL) + 1))  # in order, one row each
    csv_round_trips([r[3] for r in rows[1:]], ALL)


def test_audit_log_csv_is_safe_and_its_parquet_keeps_the_raw_values(tmp_path: Path):
    con = duckdb.connect()
    store = LoadStore(con)
    for i, v in enumerate(FORMULAS):
        store.record("full-a", "deal", v, "create", 100 + i, content_hash="h", payload={"title": v})
    out = export_audit_log(con, "full-a", tmp_path)
    rows = csv_rows(out.csv)
    csv_round_trips([r[2] for r in rows[1:]], FORMULAS)
    raw = [r[0] for r in duckdb.connect().execute(f"SELECT source_id FROM '{out.parquet}' ORDER BY seq").fetchall()]
    assert raw == FORMULAS


def test_deletions_csv_is_safe_and_keeps_every_value(tmp_path: Path):
    result = DeletionResult(
        rows=[{"novo_entity": "Work Order", "novo_id": v, "deleted_at": "2026-11-20", "entity": "deal",
               "source_id": f"work_order:{v}", "pipedrive_id": 7, "action": "flagged"} for v in CORPUS],
        not_migrated=[{"entity": v, "id": v, "reason": "entity is not migrated"} for v in ALL])
    rows = csv_rows(write_report(result, tmp_path / "deletions.csv"))
    assert rows[0][:2] == ["novo_entity", "novo_id"] and len(rows) == 1 + len(CORPUS) + len(ALL)
    csv_round_trips([r[1] for r in rows[1:]], [*CORPUS, *ALL])


# -- the Markdown and HTML writers ---------------------------------------------------------------------


def test_dagster_metadata_shows_source_text_as_text():
    typed = table([{"title": v, "n": i} for i, v in enumerate(ALL)], limit=100)
    cells = [r.data["title"] for r in typed.records]
    assert len(cells) == len(ALL) and "[x](javascript:alert(1))" in cells  # a table cell is never markup
    assert not any(BIDI_OR_NUL.search(c) or "\n" in c for c in cells)
    assert len(cells[-1]) < CELL_LIMIT + 60 and "cut after 300 of 70,000 characters" in cells[-1]
    markdown_safe(md_problems([f"status '{v}' is not mapped" for v in ALL]).md_str, "md_problems")
    doc = md_document("# Scope\n\n" + "\n".join(f"- {md_text(v)}" for v in ALL) * 200, "data/reports/r/scope.md").md_str
    assert len(doc) < 61_000 and "the whole document is" in markdown_safe(doc, "md_document")


def test_rebuild_reference_markdown_shows_source_text_as_text():
    items = [RebuildItem("workflow_rule", v, v, v, True, {"name": v, "procedure": LONG},
                         Pattern("Zapier / Make", v, [v], [v], [v]),
                         {"trigger": v, "frequency": v, "interval": 1, "rrule": v, "source_text": v, "problem": v})
             for v in CORPUS]
    text = render_markdown(RebuildReference("full-r", items, {"parts": 0, "rebuild_in": "-"}))
    html = markdown_safe(text, "rebuild_reference.md")
    assert html.count("<h3>") == len(CORPUS)  # one heading per item, none made by a name
    assert "cut after 1,000 of 70,000 characters" in html and LONG not in text


def test_field_diff_report_shows_source_text_as_text():
    diff = pl.DataFrame({"entity": "deal", "source_id": [f"work_order:{i}" for i in range(len(ALL))], "pipedrive_id": 1,
                         "field": ALL, "expected": ALL, "actual": list(reversed(ALL)), "outcome": "mismatch",
                         "accepted": None, "note": ALL}, schema_overrides={"accepted": pl.String})
    dups = pl.DataFrame({"entity": ["deal"], "source_value": [CORPUS[0]], "pipedrive_ids": [CORPUS[1]], "in_run": [True]})
    result = VerificationResult(run_key="full-r", field_diff=diff, records=pl.DataFrame({"status": ["found"]}), duplicates=dups,
                                stopped=CORPUS[5])
    text = html_safe(render(result), "field_diff.html")
    for v in CORPUS:
        assert visible_text(v).strip() in text, v
    assert "cut after 5,000 of 70,000 characters" in text


def test_terminal_lines_cannot_drive_the_terminal():
    """What `flitstack demo` prints from the data (tenant statuses, check messages): no escape sequences."""
    hostile = "\x1b]8;;http://x\x07click\x1b]8;;\x07 \x1b[2J\x1b[31mred\u202e\nsecond line\x00"
    line = plain_line(hostile)
    assert "\x1b" not in line and "\x07" not in line and "\n" not in line and not BIDI_OR_NUL.search(line)
    assert "click" in line and "second line" in line
