"""A Novo export full of hostile text (formulas, HTML, Markdown, NUL, bidi overrides, a 70,000-character
field) migrated through Dagster into the sandbox: every CSV, Markdown and HTML file the run wrote, and
every Markdown and table metadata entry it showed in the UI, shows that text as text."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.defs.partitions import migration_runs
from flitstack_dagster.mapping import store as mapping_store
from flitstack_dagster.novo.runs import add_run
from flitstack_dagster_tests.outputs.hostile import (
    BIDI_OR_NUL,
    FORMULAS,
    LONG,
    csv_round_trips,
    csv_rows,
    html_safe,
    markdown_safe,
    poison_bundle,
    poison_deletions,
)
from flitstack_dagster_tests.kit import migrated_through_dagster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_outputs")
    bundle = root / "bundle"
    assert cli_main(["generate", "--work-orders", "8", "--seed", "7", "--mess", "0.02", "--out", str(bundle),
                     "--no-mess-log"]) == 0
    placed = poison_bundle(bundle)
    with migrated_through_dagster(bundle, root / "data") as m:
        paths, run, instance, job = m.paths, m.run_key, m.instance, m.job
        delta_bundle = root / "delta"  # its deleted.csv lists work orders under hostile IDs
        assert cli_main(["generate", "--delta-from", str(bundle), "--seed", "12", "--out", str(delta_bundle),
                         "--no-mess-log"]) == 0
        placed["deleted"] = poison_deletions(delta_bundle)
        with duck.connect(paths.duckdb) as con:
            delta = add_run(con, delta_bundle, "delta", paths.work)
        instance.add_dynamic_partitions(migration_runs.name, [delta.run_key])
        third = job.execute_in_process(partition_key=delta.run_key, instance=instance, raise_on_error=False)
        yield paths, [run, delta.run_key], placed, [m.first, m.second, third]


def test_the_runs_wrote_every_report(migrated):
    paths, run_keys, _, (_, *loads) = migrated
    for run_key, result in zip(run_keys, loads):
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        names = {p.name for p in (paths.reports / run_key).iterdir()}
        assert {"quarantine.csv", "audit_log.csv", "deletions.csv", "scope.md", "field_diff.html",
                "rebuild_reference.md"} <= names, run_key


def test_every_csv_cell_is_safe_and_keeps_the_text(migrated):
    paths, run_keys, placed, _ = migrated
    cells: list[str] = []
    for path in sorted(p for run_key in run_keys for p in (paths.reports / run_key).glob("*.csv")):
        cells += [c for row in csv_rows(path) for c in row]
    csv_round_trips(cells, placed["quarantined"])
    deletions = csv_rows(paths.reports / run_keys[1] / "deletions.csv")
    csv_round_trips([r[1] for r in deletions], [v.strip() for v in placed["deleted"]])  # as typed (IDs trimmed)
    assert any(c.startswith("'") for c in cells)  # the formulas were there, neutralised


def test_every_markdown_file_shows_source_text_as_text(migrated):
    paths, run_keys, _, _ = migrated
    docs = [*(paths.reports / run_keys[1]).glob("*.md"), *(paths.reports / run_keys[0]).glob("*.md"),
            mapping_store.proposed_path(paths).with_suffix(".md")]
    rendered = {p.name: markdown_safe(p.read_text(encoding="utf-8"), p.name) for p in docs}  # the full run's win
    assert "[x](javascript:alert(1))" in rendered["scope.md"]  # the tenant status, shown as typed
    assert "&lt;img src=x onerror=alert(5)&gt;" in rendered["rebuild_reference.md"]


def test_the_field_diff_report_shows_source_text_as_text(migrated):
    paths, run_keys, _, _ = migrated
    html_safe((paths.reports / run_keys[1] / "field_diff.html").read_text(encoding="utf-8"), "delta field_diff.html")
    text = html_safe((paths.reports / run_keys[0] / "field_diff.html").read_text(encoding="utf-8"), "field_diff.html")
    assert "<script>alert(1)</script>" in text and FORMULAS[0] in text  # escaped in the file, text on screen
    assert re.search(r"cut after 5,000 of [7-9]\d,\d{3} characters", text)  # the 70,000-character description's note
    assert LONG[:6000] not in text


def test_every_markdown_and_table_metadata_entry_in_the_ui_is_safe(migrated):
    *_, runs = migrated
    documents = cells = 0
    for result in runs:
        entries = [e.materialization.metadata for e in result.get_asset_materialization_events()]
        entries += [c.metadata for c in result.get_asset_check_evaluations()]
        for metadata in entries:
            for key, value in metadata.items():
                if isinstance(value, dg.MarkdownMetadataValue):
                    markdown_safe(value.md_str, key)
                    documents += 1
                elif isinstance(value, dg.TableMetadataValue):
                    texts = [v for r in value.records for v in r.data.values() if isinstance(v, str)]
                    assert not [t for t in texts if BIDI_OR_NUL.search(t) or "\n" in t], key
                    cells += len(texts)
    assert documents > 8 and cells > 200
