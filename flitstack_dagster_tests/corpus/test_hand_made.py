"""Every hand-made damaged bundle folder in flitstack_dagster_tests/corpus is refused with a message
naming the file and the problem (the cases built at test time live in test_refused.py)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.landing import land_bundle
from flitstack_dagster_tests.novo.bundle_factory import write_bundle

CORPUS = Path(__file__).resolve().parent

CASES = {
    "bad_checksum": "work_orders.csv: SHA-256 does not match the manifest",
    "unknown_version": "unknown format version 2; this FlitStack reads format 1",
    "missing_file": "labor.csv is listed in the manifest but missing from the bundle",
    "row_count_mismatch": "work_orders.csv: 2 records, manifest says 3",
    "unbalanced_quote": "work_orders.csv: cannot be read as CSV",
    "path_in_manifest": "must be a plain file name without folders, found '../accounts.csv'",
}


def open_and_land(path: Path, work: Path) -> None:
    bundle = open_bundle(path, work)
    land_bundle(duckdb.connect(), bundle, "corpus")


def test_every_corpus_folder_has_a_case():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir() and (p / "manifest.json").exists()}
    assert folders == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_bundle_is_refused(name: str, tmp_path: Path):
    copy = shutil.copytree(CORPUS / name, tmp_path / name)
    with pytest.raises(BundleError) as e:
        open_and_land(copy, tmp_path / "work")
    assert CASES[name] in str(e.value)
    assert "Traceback" not in str(e.value)


def test_corpus_folders_are_otherwise_valid(tmp_path: Path):
    """The control: the same bundle undamaged lands, so each refusal is caused by its one defect."""
    wo = [{"WO Number": "WO-000001", "Title": "Leaking hydrant", "Status": "Open"}]
    open_and_land(write_bundle(tmp_path / "ok", {"work_orders.csv": wo}, newline="\n"), tmp_path / "work")


def test_escaping_zip_is_refused(tmp_path: Path):
    good = write_bundle(tmp_path / "b")
    zip_path = tmp_path / "escaping.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in good.iterdir():
            zf.write(p, p.name)
        zf.writestr("files/../../evil.txt", b"pwned")
    with pytest.raises(BundleError, match=r"leaves the bundle with '\.\.'"):
        open_bundle(zip_path, tmp_path / "work")
    assert not (tmp_path / "evil.txt").exists()
    assert not any((tmp_path / "work").rglob("evil.txt"))
