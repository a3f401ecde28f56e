from __future__ import annotations

import duckdb

from flitstack_dagster.reports.summary import print_summary
from flitstack_dagster.core.settings import Paths


def test_summary_counts_records_set_aside_while_shaping(tmp_path, capsys):
    paths = Paths(tmp_path)
    con = duckdb.connect(str(paths.duckdb))
    con.execute("CREATE SCHEMA shaped")
    con.execute("CREATE TABLE shaped.set_aside (run_key VARCHAR, source_entity VARCHAR, reason_code VARCHAR)")
    con.execute("INSERT INTO shaped.set_aside VALUES ('full-1', 'pm_schedule', 'recurrence_unparsed'), "
                "('full-1', 'pm_schedule', 'recurrence_unparsed'), ('full-1', 'labor', 'orphan_reference'), "
                "('full-2', 'deal', 'org_unresolved')")
    con.close()
    print_summary(paths, "full-1")
    out = capsys.readouterr().out
    assert "Set aside while shaping" in out
    lines = [ln.split() for ln in out.splitlines()]
    assert ["pm_schedule", "recurrence_unparsed", "2"] in lines and ["labor", "orphan_reference", "1"] in lines
    assert "org_unresolved" not in out  # another run's


def test_summary_without_shaping_says_nothing_about_it(tmp_path, capsys):
    print_summary(Paths(tmp_path), "full-1")
    assert "Set aside while shaping" not in capsys.readouterr().out


def test_quarantine_and_reports_are_summed_up_in_a_few_lines(tmp_path, capsys):
    paths = Paths(tmp_path)
    con = duckdb.connect(str(paths.duckdb))
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.quarantine (_run_key VARCHAR, file VARCHAR, reason_code VARCHAR, "
                "level VARCHAR, row_number BIGINT)")
    con.execute("INSERT INTO staging.quarantine VALUES ('full-1', 'labor.csv', 'duplicate_id', 'row', 3), "
                "('full-1', 'labor.csv', 'duplicate_id', 'row', 3), ('full-1', 'notes.csv', 'duplicate_id', 'row', 9), "
                "('full-1', 'labor.csv', 'bad_date', 'value', 4), ('full-1', 'notes.csv', 'bad_date', 'value', 5), "
                "('full-1', 'notes.csv', 'unknown_value', 'value', 5), ('full-2', 'labor.csv', 'hostile', 'row', 1)")
    con.close()
    (paths.reports / "full-1").mkdir(parents=True)
    for name in ("quarantine.csv", "scope.md"):
        (paths.reports / "full-1" / name).write_text("x")
    print_summary(paths, "full-1")
    out = capsys.readouterr().out
    assert "  records set aside: duplicate_id 2\n" in out  # distinct rows, over every file
    assert "  records kept, a value repaired or blanked: bad_date 2, unknown_value 1\n" in out
    assert "hostile" not in out  # another run's
    assert f"Reports in {paths.reports / 'full-1'}/\n  quarantine.csv, scope.md\n" in out


def test_the_accounting_in_one_line_counts_every_file(tmp_path, capsys):
    paths = Paths(tmp_path)
    print_summary(paths, "full-1")
    table = [ln for ln in capsys.readouterr().out.splitlines() if ln.endswith(("yes", "NO"))]
    print_summary(paths, "full-1", per_file=False)
    out = capsys.readouterr().out
    assert "set aside  accounted" not in out and not any(ln.endswith(("yes", "NO")) for ln in out.splitlines())
    assert f"\n{len(table)} files, 0 rows: 0 staged, 0 set aside; every row accounted for " \
           "(per file: `flitstack summary full-1`)\n" in out
