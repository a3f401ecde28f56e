"""Opening and verifying bundles: folder and zip, presence/size/hash/headers/UDFs, hostile zips and paths."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.bundle import (
    CHUNK,
    Bundle,
    ZipLimits,
    check_udfs_declared,
    count_records,
    open_bundle,
    sha256_file,
)
from flitstack_dagster.novo.columns import BY_FILE
from flitstack_dagster_tests.novo.bundle_factory import (
    csv_bytes,
    edit_manifest,
    header_of,
    read_manifest,
    replace_file,
    write_bundle,
    write_manifest,
    zip_bundle,
)

WO = [
    {"WO Number": "00042", "Title": "Leaking hydrant", "Status": "Open"},
    {"WO Number": "42", "Title": "Pothole", "Status": "New"},
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", {"work_orders.csv": WO})


def refused(path: Path, work: Path, **kw) -> str:
    with pytest.raises(BundleError) as e:
        open_bundle(path, work, **kw)
    assert "Traceback" not in str(e.value)
    return str(e.value)


# ------------------------------------------------------------------------------------------ happy paths


def test_folder_bundle_opens(folder: Path, tmp_path: Path):
    b = open_bundle(folder, tmp_path / "work")
    assert b.root == folder.resolve()
    assert b.manifest.export_id == "springfield-20261120T070000Z"
    assert b.headers["work_orders.csv"] == tuple(BY_FILE["work_orders.csv"].headers)
    assert b.path("labor.csv") == folder.resolve() / "labor.csv"
    assert [nf.file for nf, _ in b.csv_files()][:5] == [
        "departments.csv", "accounts.csv", "contacts.csv", "assets.csv", "work_orders.csv"]
    assert {nf.file: rows for nf, rows in b.csv_files()}["work_orders.csv"] == 2


@pytest.mark.parametrize("prefix", ["", "springfield-export/"])
def test_zip_bundle_opens_flat_or_nested(folder: Path, tmp_path: Path, prefix: str):
    z = zip_bundle(folder, tmp_path / "bundle.zip", prefix)
    work = tmp_path / "work"
    b = open_bundle(z, work)
    assert b.root.is_relative_to(work.resolve())
    assert (b.root / "manifest.json").is_file()
    assert b.source == z
    assert b.fingerprint == open_bundle(folder, tmp_path / "w2").fingerprint


def test_fingerprint_is_sha256_of_manifest_bytes(folder: Path, tmp_path: Path):
    b = open_bundle(folder, tmp_path / "work")
    assert b.fingerprint == sha256_file(folder / "manifest.json")
    edit_manifest(folder, export_id="springfield-2")
    assert open_bundle(folder, tmp_path / "work").fingerprint != b.fingerprint


def test_path_refuses_non_plain_names(folder: Path, tmp_path: Path):
    b = open_bundle(folder, tmp_path / "work")
    with pytest.raises(ValueError):
        b.path("../etc/passwd")


def test_delta_bundle_needs_deleted_csv(tmp_path: Path):
    d = write_bundle(tmp_path / "delta", kind="delta")
    assert open_bundle(d, tmp_path / "work").manifest.kind == "delta"
    (d / "deleted.csv").unlink()
    m = read_manifest(d)
    m["files"] = [f for f in m["files"] if f["name"] != "deleted.csv"]
    write_manifest(d, m)
    assert "does not list deleted.csv, which every delta bundle must have" in refused(d, tmp_path / "work")


# ------------------------------------------------------------------------------------------ damage


def test_missing_manifest(folder: Path, tmp_path: Path):
    (folder / "manifest.json").unlink()
    assert "manifest.json is missing" in refused(folder, tmp_path / "work")


def test_nonexistent_path(tmp_path: Path):
    assert "no such folder or .zip" in refused(tmp_path / "nope", tmp_path / "work")


def test_listed_file_missing(folder: Path, tmp_path: Path):
    (folder / "notes.csv").unlink()
    assert "notes.csv is listed in the manifest but missing from the bundle" in refused(folder, tmp_path / "w")


def test_required_file_not_listed(folder: Path, tmp_path: Path):
    m = read_manifest(folder)
    m["files"] = [f for f in m["files"] if f["name"] != "workflow_rules.json"]
    write_manifest(folder, m)
    assert "does not list workflow_rules.json" in refused(folder, tmp_path / "w")


def test_unknown_listed_file_is_refused(folder: Path, tmp_path: Path):
    (folder / "extra.csv").write_text("a\n1\n")
    m = read_manifest(folder)
    del m["files"]
    write_manifest(folder, m)
    assert "lists extra.csv, which is not a file of format 1" in refused(folder, tmp_path / "w")


def test_size_mismatch_names_file_and_both_sizes(folder: Path, tmp_path: Path):
    size = (folder / "labor.csv").stat().st_size
    with open(folder / "labor.csv", "ab") as f:
        f.write(b"\r\n")
    msg = refused(folder, tmp_path / "w")
    assert f"labor.csv: size does not match the manifest (manifest {size:,} bytes, file {size + 2:,} bytes)" in msg
    assert "re-export it" in msg


def test_hash_mismatch_names_file_and_both_hashes(folder: Path, tmp_path: Path):
    p = folder / "work_orders.csv"
    expected = sha256_file(p)
    p.write_bytes(p.read_bytes().replace(b"Pothole", b"Potholf"))
    msg = refused(folder, tmp_path / "w")
    assert msg.startswith("work_orders.csv: SHA-256 does not match the manifest")
    assert f"manifest {expected[:12]}…" in msg and f"file {sha256_file(p)[:12]}…" in msg
    assert msg.endswith("the bundle is damaged — re-export it.")


def test_several_damaged_files_are_reported_in_one_error(folder: Path, tmp_path: Path):
    (folder / "notes.csv").unlink()
    (folder / "labor.csv").write_bytes(b"x")
    msg = refused(folder, tmp_path / "w")
    assert "notes.csv" in msg and "labor.csv" in msg


def test_symlink_escaping_a_folder_bundle_is_refused(folder: Path, tmp_path: Path):
    outside = tmp_path / "outside.csv"
    os.replace(folder / "labor.csv", outside)
    (folder / "labor.csv").symlink_to(outside)
    assert "labor.csv links outside the bundle" in refused(folder, tmp_path / "w")


# ------------------------------------------------------------------------------------------ headers/UDFs


def test_missing_standard_column(folder: Path, tmp_path: Path):
    header = [h for h in header_of("labor.csv") if h != "Hours"]
    replace_file(folder, "labor.csv", csv_bytes(header, []))
    assert "labor.csv is missing the standard column(s) 'Hours'" in refused(folder, tmp_path / "w")


def test_header_case_matters(folder: Path, tmp_path: Path):
    header = ["wo number" if h == "WO Number" else h for h in header_of("work_orders.csv")]
    replace_file(folder, "work_orders.csv", csv_bytes(header, []))
    assert "work_orders.csv is missing the standard column(s) 'WO Number'" in refused(folder, tmp_path / "w")


def test_duplicate_and_reserved_headers(folder: Path, tmp_path: Path):
    header = header_of("labor.csv") + ["notes", "_run_key"]
    replace_file(folder, "labor.csv", csv_bytes(header, []))
    msg = refused(folder, tmp_path / "w")
    assert "more than once" in msg and "'Notes'" in msg
    assert "reserved name '_run_key'" in msg


def test_empty_file_has_no_header(folder: Path, tmp_path: Path):
    replace_file(folder, "labor.csv", b"")
    assert "labor.csv is empty: it has no header line" in refused(folder, tmp_path / "w")


def test_declared_udf_columns_are_accepted(tmp_path: Path):
    d = write_bundle(tmp_path / "b", udfs=[("Work Order", "UDF: Council District"), ("Asset", "UDF: Zone")])
    b = open_bundle(d, tmp_path / "w")
    assert b.headers["work_orders.csv"][-1] == "UDF: Council District"
    assert b.headers["assets.csv"][-1] == "UDF: Zone"


def test_undeclared_udf_column_is_refused(tmp_path: Path):
    d = write_bundle(tmp_path / "b", udfs=[("Work Order", "UDF: Council District")])
    replace_file(d, "user_defined_fields.csv", csv_bytes(header_of("user_defined_fields.csv"), []))
    msg = refused(d, tmp_path / "w")
    assert "work_orders.csv: column(s) 'UDF: Council District' are not declared in user_defined_fields.csv" in msg


def test_udf_declared_for_the_wrong_entity_is_refused(tmp_path: Path):
    d = write_bundle(tmp_path / "b", udfs=[("Work Order", "UDF: Zone")])
    udfs = [{"Entity": "Asset", "Label": "Zone", "Column": "UDF: Zone", "Data Type": "Text"}]
    replace_file(d, "user_defined_fields.csv", csv_bytes(header_of("user_defined_fields.csv"), udfs))
    assert "for Entity 'Work Order'" in refused(d, tmp_path / "w")


def test_check_udfs_declared_returns_problems():
    headers = {
        "work_orders.csv": header_of("work_orders.csv", ["UDF: A", "UDF: B"]),
        "labor.csv": header_of("labor.csv", ["Overtime Reason"]),
        "contacts.csv": header_of("contacts.csv"),
    }
    problems = check_udfs_declared(headers, [("Work Order", "UDF: A"), ("Contact", "UDF: B")])
    assert len(problems) == 2
    assert "work_orders.csv" in problems[0] and "'UDF: B'" in problems[0] and "'UDF: A'" not in problems[0]
    assert "labor.csv" in problems[1] and "'Overtime Reason'" in problems[1]
    assert check_udfs_declared(headers, [("Work Order", "UDF: A"), ("Work Order", "UDF: B")]) == problems[1:]


# ------------------------------------------------------------------------------------------ zips


def zip_with(tmp_path: Path, folder: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    z = tmp_path / "hostile.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in folder.iterdir():
            zf.write(p, p.name)
        for info, data in extra:
            zf.writestr(info, data)
    return z


@pytest.mark.parametrize("name", ["../evil.csv", "files/../../evil.csv", "/tmp/evil.csv", "..\\evil.csv",
                                  "C:/evil.csv"])
def test_zip_slip_is_refused_before_writing(folder: Path, tmp_path: Path, name: str):
    z = zip_with(tmp_path, folder, [(name, b"x")])
    work = tmp_path / "work"
    work.mkdir()
    msg = refused(z, work)
    assert "absolute path or leaves the bundle" in msg and "hostile.zip" in msg
    assert list(work.iterdir()) == []  # refused before extracting anything


def test_zip_symlink_is_refused(folder: Path, tmp_path: Path):
    info = zipfile.ZipInfo("files/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = zip_with(tmp_path, folder, [(info, b"/etc/passwd")])
    assert "is a symbolic link" in refused(z, tmp_path / "work")


def test_zip_bomb_ratio_is_refused(folder: Path, tmp_path: Path):
    z = zip_with(tmp_path, folder, [("files/bomb.bin", b"\0" * (20 * 1024 * 1024))])
    msg = refused(z, tmp_path / "work")
    assert "files/bomb.bin" in msg and "possible zip bomb" in msg and "expands" in msg


def test_zip_total_size_cap(folder: Path, tmp_path: Path):
    z = zip_bundle(folder, tmp_path / "b.zip")
    msg = refused(z, tmp_path / "work", limits=ZipLimits(max_total_bytes=1000))
    assert "over the 1,000-byte limit" in msg and "zip bomb" in msg


def test_zip_lying_about_its_size_is_stopped(folder: Path, tmp_path: Path):
    """A central directory that under-declares sizes cannot sneak past the cap while streaming."""
    z = zip_bundle(folder, tmp_path / "b.zip")
    from flitstack_dagster.novo import bundle as bundle_mod

    real = bundle_mod.check_zip_entries

    def shrink(zip_name, infos, limits):
        for i in infos:
            if i.filename == "work_orders.csv":
                i.file_size = 10
        return real(zip_name, infos, limits)

    bundle_mod.check_zip_entries = shrink
    try:
        msg = refused(z, tmp_path / "work")
    finally:
        bundle_mod.check_zip_entries = real
    # zipfile stops at the declared size and fails the CRC; our own byte count is the second guard
    assert "entry 'work_orders.csv'" in msg
    assert "unpacks to more than it declares" in msg or "Bad CRC-32" in msg
    assert all(p.stat().st_size <= 10 for p in (tmp_path / "work").rglob("work_orders.csv"))


def test_not_a_zip(tmp_path: Path):
    f = tmp_path / "bundle.zip"
    f.write_bytes(b"PK\x03\x04 truncated")
    assert "is not a readable .zip file" in refused(f, tmp_path / "work")


def test_damage_inside_a_zip_is_still_caught(folder: Path, tmp_path: Path):
    (folder / "labor.csv").write_bytes((folder / "labor.csv").read_bytes() + b"1,2\r\n")
    z = zip_bundle(folder, tmp_path / "b.zip")
    assert "labor.csv: size does not match" in refused(z, tmp_path / "work")


# ------------------------------------------------------------------------------------------ resolve_inside


@pytest.mark.parametrize("rel", [
    "../outside.txt", "files/../../outside.txt", "/etc/passwd", "\\\\server\\share\\x", "C:\\Windows\\x",
    "files\\..\\..\\outside.txt", "", "   ", ".", "files/..", "a\x00b",
])
def test_resolve_inside_refuses_hostile_paths(folder: Path, tmp_path: Path, rel: str):
    (tmp_path / "outside.txt").write_text("secret")
    b = open_bundle(folder, tmp_path / "work")
    assert b.resolve_inside(rel) is None


def test_resolve_inside_refuses_symlink_out_of_the_bundle(folder: Path, tmp_path: Path):
    (tmp_path / "outside.txt").write_text("secret")
    (folder / "files").mkdir()
    (folder / "files" / "photo.jpg").symlink_to(tmp_path / "outside.txt")
    b = open_bundle(folder, tmp_path / "work")
    assert b.resolve_inside("files/photo.jpg") is None


def test_resolve_inside_accepts_real_bodies(folder: Path, tmp_path: Path):
    body = folder / "files" / "WO-004211" / "photo 1.jpg"
    body.parent.mkdir(parents=True)
    body.write_bytes(b"jpeg")
    b = open_bundle(folder, tmp_path / "work")
    assert b.resolve_inside("files/WO-004211/photo 1.jpg") == body.resolve()
    assert b.resolve_inside("files\\WO-004211\\photo 1.jpg") == body.resolve()
    assert b.resolve_inside("files/missing.pdf") == (folder / "files" / "missing.pdf").resolve()


# ------------------------------------------------------------------------------------------ is_complete


def test_is_complete_folder(folder: Path):
    assert Bundle.is_complete(folder) is True


def test_is_complete_half_copied_folder(folder: Path):
    data = (folder / "work_orders.csv").read_bytes()
    (folder / "work_orders.csv").write_bytes(data[: len(data) // 2])
    assert Bundle.is_complete(folder) is False


def test_is_complete_file_not_copied_yet(folder: Path):
    (folder / "assets.csv").unlink()
    assert Bundle.is_complete(folder) is False


def test_is_complete_without_or_with_partial_manifest(folder: Path):
    text = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").write_bytes(text[:40])
    assert Bundle.is_complete(folder) is False
    (folder / "manifest.json").unlink()
    assert Bundle.is_complete(folder) is False


def test_is_complete_zip(folder: Path, tmp_path: Path):
    z = zip_bundle(folder, tmp_path / "b.zip", "export/")
    assert Bundle.is_complete(z) is True
    half = tmp_path / "half.zip"
    half.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    assert Bundle.is_complete(half) is False
    assert Bundle.is_complete(tmp_path / "missing.zip") is False


def test_is_complete_does_not_hash(folder: Path):
    """Same size, different bytes: still 'complete' (cheap); open_bundle is what catches it."""
    p = folder / "work_orders.csv"
    p.write_bytes(p.read_bytes().replace(b"Pothole", b"Potholf"))
    assert Bundle.is_complete(folder) is True


# ------------------------------------------------------------------------------------------ count_records


def test_count_records_counts_multiline_values_once(tmp_path: Path):
    p = tmp_path / "notes.csv"
    p.write_bytes(b'A,B\r\n1,"line one\r\nline two\nline three"\r\n2,x\r\n\r\n')
    assert count_records(p, "utf-8") == 2


def test_count_records_header_only_and_empty(tmp_path: Path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"A,B\n")
    assert count_records(p, "utf-8") == 0
    p.write_bytes(b"")
    assert count_records(p, "utf-8") == 0


def test_count_records_cp1252_and_bad_quotes(tmp_path: Path):
    p = tmp_path / "a.csv"
    p.write_bytes("A\n\u20ac 5\n\u201cquoted\u201d\n".encode("cp1252"))
    assert count_records(p, "cp1252") == 2
    p.write_bytes(b'A,B\n1,"open\n')
    with pytest.raises(BundleError, match="a.csv: cannot be read as CSV"):
        count_records(p, "utf-8")


def test_manifest_names_cannot_reach_outside(folder: Path, tmp_path: Path):
    m = read_manifest(folder)
    m["files"][0]["name"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(m))
    assert "plain file name" in refused(folder, tmp_path / "w")


def test_remove_extracted_deletes_only_the_zip_extraction(folder: Path, tmp_path: Path):
    from flitstack_dagster.novo.bundle import remove_extracted

    zb = open_bundle(zip_bundle(folder, tmp_path / "b.zip", "export/"), tmp_path / "work")
    assert zb.root.exists()
    remove_extracted(zb)
    assert not zb.root.exists() and list((tmp_path / "work").iterdir()) == []
    fb = open_bundle(folder, tmp_path / "work")
    remove_extracted(fb)
    assert (folder / "manifest.json").is_file()  # never the user's own folder


@pytest.mark.parametrize("n", [0, 1, 300, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_sha256_file_matches_hashlib_whatever_the_size_hint(tmp_path: Path, n: int):
    """The hint only sizes the first read: a wrong or missing one still hashes the whole file."""
    p = tmp_path / "body.bin"
    data = bytes(range(256)) * (n // 256) + bytes(n % 256)
    p.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_file(p) == want
    assert sha256_file(p, n) == want
    assert sha256_file(str(p), 0) == want  # the file grew after it was looked at
