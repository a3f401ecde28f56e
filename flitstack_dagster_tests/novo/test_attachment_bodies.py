"""Landing records what it finds for each attachment body (raw.attachments `_body*`), never reading
outside the bundle."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.attachment_bodies import leaves_bundle
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster_tests.novo.bundle_factory import csv_bytes, header_of, replace_file, write_bundle


@pytest.mark.parametrize("rel", ["../x", "files/../../x", "files/../x", "/etc/passwd", "C:\\x", "c:x",
                                 "..\\..\\Windows\\win.ini", "\\\\server\\share\\x", "files/a\x00b"])
def test_hostile_paths(rel):
    assert leaves_bundle(rel)


@pytest.mark.parametrize("rel", ["files/WO-1/photo 1.jpg", "files/a..b/x.txt", "files/.hidden"])
def test_plain_paths(rel):
    assert not leaves_bundle(rel)


def test_landing_records_each_body_fact(tmp_path: Path):
    body = b"hello world"
    att = [
        {"Attachment ID": "F1", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": "files/A1/ok.txt"},
        {"Attachment ID": "F2", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": "files/A1/gone.txt"},
        {"Attachment ID": "F3", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": "../secret.txt"},
        {"Attachment ID": "F4", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": ""},
        {"Attachment ID": "F5", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": "files/A1/out.txt"},
        {"Attachment ID": "F6", "Parent Type": "Asset", "Parent ID": "A1", "Bundle Path": "files/A1"},
    ]
    root = write_bundle(tmp_path / "b", {"attachments.csv": att})
    (root / "files" / "A1").mkdir(parents=True)
    (root / "files" / "A1" / "ok.txt").write_bytes(body)
    (tmp_path / "secret.txt").write_bytes(body)
    os.symlink(tmp_path / "secret.txt", root / "files" / "A1" / "out.txt")
    con = duckdb.connect()
    land_bundle(con, open_bundle(root, tmp_path / "work"), "r")
    got = con.execute('SELECT "Attachment ID", _body, _body_bytes, _body_sha256 FROM raw.attachments '
                      "WHERE _run_key = 'r' ORDER BY _row_number").fetchall()
    assert got == [
        ("F1", "found", str(len(body)), hashlib.sha256(body).hexdigest()),
        ("F2", "missing", None, None),
        ("F3", "outside", None, None),
        ("F4", "no_path", None, None),
        ("F5", "outside", None, None),  # a link leading out of the bundle
        ("F6", "missing", None, None),  # a folder is not a body
    ]
    # re-landing the run replaces its facts (no doubles)
    land_bundle(con, open_bundle(root, tmp_path / "work"), "r")
    assert con.execute("SELECT count(*) FROM raw.attachments WHERE _run_key = 'r'").fetchall() == [(6,)]


def test_a_header_using_a_body_fact_name_is_refused(tmp_path: Path):
    root = write_bundle(tmp_path / "b")
    replace_file(root, "attachments.csv", csv_bytes([*header_of("attachments.csv"), "_body"], []))
    with pytest.raises(BundleError, match="reserved name '_body'"):
        open_bundle(root, tmp_path / "work")


def test_many_bodies_keep_row_order_and_links_inside_count(tmp_path: Path):
    """Over a thousand rows each fact stays on its row; a link to a folder inside the bundle still
    finds the body, a missing folder is `missing`, a backslash path finds its body."""
    from flitstack_dagster.novo import attachment_bodies

    root = tmp_path / "b"
    (root / "files" / "d").mkdir(parents=True)
    os.symlink(root / "files" / "d", root / "files" / "alias")
    rels = []
    for i in range(1124):
        (root / "files" / "d" / f"{i}.txt").write_bytes(str(i).encode())
        rels.append([f"files/d/{i}.txt", f"files/alias/{i}.txt", f"files/nowhere/{i}.txt", f"files\\d\\{i}.txt"][i % 4])

    class _Bundle:
        def __init__(self): self.root = root
        def resolve_inside(self, rel):
            from flitstack_dagster.novo.bundle import resolve_inside
            return resolve_inside(root, rel)

    facts = attachment_bodies.inspect(_Bundle(), list(enumerate(rels, start=1)))
    assert [f.row_number for f in facts] == list(range(1, len(rels) + 1))
    for i, f in enumerate(facts):
        if i % 4 == 2:
            assert (f.body, f.body_sha256) == ("missing", None)
        else:
            assert (f.body, f.body_bytes, f.body_sha256) == (
                "found", str(len(str(i))), hashlib.sha256(str(i).encode()).hexdigest())


def test_a_folder_or_a_pipe_as_body_is_missing_and_never_opened(tmp_path: Path):
    """Only regular files are read: opening a named pipe would wait for a writer forever."""
    from flitstack_dagster.novo import attachment_bodies
    from flitstack_dagster.novo.bundle import resolve_inside

    root = tmp_path / "b"
    (root / "files" / "folder").mkdir(parents=True)
    os.mkfifo(root / "files" / "pipe")
    os.symlink(root / "files" / "pipe", root / "files" / "link-to-pipe")
    (root / "files" / "ok.txt").write_bytes(b"ok")

    class _Bundle:
        def __init__(self): self.root = root
        def resolve_inside(self, rel): return resolve_inside(root, rel)

    rels = ["files/folder", "files/pipe", "files/link-to-pipe", "files/ok.txt"]
    facts = attachment_bodies.inspect(_Bundle(), list(enumerate(rels, start=1)))
    assert [f.body for f in facts] == ["missing", "missing", "missing", "found"]
    assert facts[3].body_sha256 == hashlib.sha256(b"ok").hexdigest()
