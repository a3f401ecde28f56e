"""The drop folder's logic without Dagster: which entries are new complete bundles, and which run each becomes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flitstack_dagster.core.duck import connect
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.loading.store import ensure_schema as ensure_load_schema
from flitstack_dagster.novo.drop import (
    DropCursor,
    choose_mode,
    drop_entries,
    new_entries,
    read_manifest_of,
    register_dropped,
    stamp_of,
    verify_entry,
)
from flitstack_dagster.novo.generator import GenOptions, generate
from flitstack_dagster.novo.runs import list_runs


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """A full bundle (folder and .zip) and a delta of it."""
    root = tmp_path_factory.mktemp("exports")
    generate(GenOptions(out=root / "x", work_orders=20, seed=1, zip=True, mess_log=False), log=lambda _: None)
    generate(GenOptions(out=root / "d", work_orders=20, seed=1, delta_from=root / "x", mess_log=False),
             log=lambda _: None)
    return root


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "flitstack.duckdb")
    yield c
    c.close()


def test_drop_entries_are_folders_and_zips_but_not_hidden_or_other_files(tmp_path):
    for name in ("b", ".partial"):
        (tmp_path / name).mkdir()
    for name in ("a.zip", "notes.txt", ".copying.zip"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in drop_entries(tmp_path)] == ["a.zip", "b"]
    assert drop_entries(tmp_path / "missing") == []


def test_stamp_changes_when_a_file_is_rewritten_and_only_then(exports, tmp_path):
    entry = tmp_path / "x"
    shutil.copytree(exports / "x", entry)
    first = stamp_of(entry)
    assert stamp_of(entry) == first
    target = entry / "accounts.csv"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert stamp_of(entry) != first


def test_cursor_round_trips_and_forgets_entries_no_longer_in_the_folder():
    cursor = DropCursor({"a": "s1", "b": "s2"}, {"c": {"stamp": "s3", "reason": "bad"}})
    again = DropCursor.load(cursor.dump())
    assert again == cursor
    again.keep_only({"b"})
    assert again.done == {"b": "s2"} and again.refused == {}
    assert DropCursor.load(None) == DropCursor({}, {})


def test_new_entries_skip_what_was_handled_and_note_what_waits_or_was_refused(exports, tmp_path):
    for name in ("done", "refused", "fresh"):
        shutil.copytree(exports / "x", tmp_path / name)
    shutil.copytree(exports / "x", tmp_path / "copying")
    (tmp_path / "copying" / "manifest.json").unlink()
    cursor = DropCursor({"done": stamp_of(tmp_path / "done")},
                        {"refused": {"stamp": stamp_of(tmp_path / "refused"), "reason": "SHA-256 does not match"}})
    fresh, notes = new_entries(drop_entries(tmp_path), cursor)
    assert [(e.name, s) for e, s in fresh] == [("fresh", stamp_of(tmp_path / "fresh"))]
    assert any(n.startswith("copying: waiting for the copy") for n in notes)
    assert "refused: refused — SHA-256 does not match" in notes
    assert not any(n.startswith(("done", "fresh")) for n in notes)


def test_manifest_is_read_from_a_folder_or_a_zip_and_none_from_garbage(exports, tmp_path):
    assert read_manifest_of(exports / "x").export_id == read_manifest_of(exports / "x.zip").export_id
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert read_manifest_of(junk) is None


def test_a_full_export_is_a_full_run_until_its_tenant_loaded_something_then_a_delta(exports, tmp_path, con):
    full = verify_entry(exports / "x", tmp_path / "scratch")
    assert choose_mode(con, full.manifest) == "full"
    run = register_dropped(con, full, who="test")
    assert run.mode == "full" and run.run_key.startswith("full-") and run.registered_by == "test"
    assert choose_mode(con, full.manifest) == "full"  # registered, nothing loaded yet
    ensure_load_schema(con)
    con.execute("INSERT INTO meta.audit_log (run_key, entity, source_id, pipedrive_id, operation, recorded_at) "
                "VALUES (?, 'organization', 'A-1', 1, 'create', now())", [run.run_key])
    assert choose_mode(con, full.manifest) == "delta"


def test_a_delta_export_needs_an_earlier_full_run_of_its_tenant(exports, tmp_path, con):
    delta = verify_entry(exports / "d", tmp_path / "scratch")
    with pytest.raises(UserError, match="is a delta, but no full run"):
        register_dropped(con, delta, who="test")
    assert list_runs(con) == []
    register_dropped(con, verify_entry(exports / "x", tmp_path / "scratch"), who="test")
    assert register_dropped(con, delta, who="test").mode == "delta"
    assert not any((tmp_path / "scratch").iterdir())  # verification leaves no extracted copies behind
