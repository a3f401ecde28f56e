"""Bad input refused before anything lands: one message naming the file (and line/record/column where
there is one) and what to do — never a traceback. Cases are built at test time from a generated bundle."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from flitstack_dagster_tests.corpus.kit import (
    manifest,
    read_rows,
    refusal,
    resign,
    write_manifest,
    write_rows,
)


def test_damaged_manifest_not_json(bundle: Path, tmp_path: Path):
    m = bundle / "manifest.json"
    m.write_bytes(m.read_bytes()[:-40])  # cut short while copying
    msg = refusal(bundle, tmp_path / "work")
    assert "manifest.json" in msg and "re-export" in msg


def test_damaged_manifest_bad_value(bundle: Path, tmp_path: Path):
    data = manifest(bundle)
    data["timezone"] = "Mars/Olympus"
    data["date_order"] = "YMD"
    write_manifest(bundle, data)
    msg = refusal(bundle, tmp_path / "work")
    assert "manifest.json" in msg and "timezone" in msg and "date_order" in msg


def test_unknown_format_version(bundle: Path, tmp_path: Path):
    data = manifest(bundle)
    data["format_version"] = 3
    write_manifest(bundle, data)
    assert "unknown format version 3; this FlitStack reads format 1" in refusal(bundle, tmp_path / "work")


def test_checksum_mismatch(bundle: Path, tmp_path: Path):
    p = bundle / "labor.csv"
    body = bytearray(p.read_bytes())
    body[-3] = ord("7") if body[-3] != ord("7") else ord("8")  # same size, other bytes
    p.write_bytes(bytes(body))
    msg = refusal(bundle, tmp_path / "work")
    assert "labor.csv: SHA-256 does not match the manifest" in msg and "re-export" in msg


def test_every_damaged_file_is_named_in_manifest_order(bundle: Path, tmp_path: Path):
    """Files are hashed side by side, biggest first; the refusal still lists them as the manifest does."""
    for name in ("work_orders.csv", "labor.csv"):
        p = bundle / name
        body = bytearray(p.read_bytes())
        body[-3] = ord("7") if body[-3] != ord("7") else ord("8")
        p.write_bytes(bytes(body))
    (bundle / "notes.csv").write_bytes((bundle / "notes.csv").read_bytes() + b"\r\n")
    msg = refusal(bundle, tmp_path / "work")
    order = [f["name"] for f in manifest(bundle)["files"]]
    named = [n for n in ("work_orders.csv", "labor.csv", "notes.csv") if n in msg]
    assert named == ["work_orders.csv", "labor.csv", "notes.csv"]
    assert sorted(named, key=order.index) == sorted(named, key=msg.index)


def test_size_mismatch(bundle: Path, tmp_path: Path):
    p = bundle / "notes.csv"
    p.write_bytes(p.read_bytes() + b"\r\n")
    msg = refusal(bundle, tmp_path / "work")
    assert "notes.csv: size does not match the manifest" in msg


def test_row_count_mismatch(bundle: Path, tmp_path: Path):
    data = manifest(bundle)
    entry = next(f for f in data["files"] if f["name"] == "work_orders.csv")
    entry["rows"] += 1
    write_manifest(bundle, data)
    msg = refusal(bundle, tmp_path / "work")
    assert f"work_orders.csv: {entry['rows'] - 1} records, manifest says {entry['rows']}" in msg


def test_missing_file(bundle: Path, tmp_path: Path):
    (bundle / "parts_used.csv").unlink()
    msg = refusal(bundle, tmp_path / "work")
    assert "parts_used.csv is listed in the manifest but missing from the bundle" in msg


def test_wrong_header_renamed_standard_column(bundle: Path, tmp_path: Path):
    text = (bundle / "work_orders.csv").read_bytes().replace(b"WO Number,", b"WO #,", 1)
    (bundle / "work_orders.csv").write_bytes(text)
    resign(bundle)
    msg = refusal(bundle, tmp_path / "work")
    assert "work_orders.csv is missing the standard column(s) 'WO Number'" in msg and "case and spaces" in msg


def test_wrong_header_undeclared_extra_column(bundle: Path, tmp_path: Path):
    header, rows = read_rows(bundle, "assets.csv")
    write_rows(bundle, "assets.csv", [*header, "Colour"], [{**r, "Colour": "red"} for r in rows])
    resign(bundle)
    msg = refusal(bundle, tmp_path / "work")
    assert "assets.csv: column(s) 'Colour' are not declared in user_defined_fields.csv" in msg


def test_truncated_csv(bundle: Path, tmp_path: Path):
    """Cut mid-record, with the manifest re-signed for the cut file (as a bad copy tool would): the
    short last record is named."""
    p = bundle / "status_log.csv"
    body = p.read_bytes()
    p.write_bytes(body[: len(body) * 2 // 3].rsplit(b",", 1)[0])
    resign(bundle, counts=False)
    msg = refusal(bundle, tmp_path / "work")
    assert msg.startswith("status_log.csv")
    assert ("record" in msg and "the header has" in msg) or "records, manifest says" in msg
    assert "re-export" in msg or "fix" in msg


def test_unbalanced_quote(bundle: Path, tmp_path: Path):
    p = bundle / "notes.csv"
    lines = p.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",", b',"', 1)  # opens a quote on line 3 that never closes
    assert b',"' in lines[2]
    p.write_bytes(b"\n".join(lines))
    resign(bundle, counts=False)
    msg = refusal(bundle, tmp_path / "work")
    assert "notes.csv: cannot be read as CSV after line" in msg and "quote is not closed" in msg


def test_mixed_encodings_cp1252_bytes_in_a_utf8_bundle(bundle: Path, tmp_path: Path):
    p = bundle / "contacts.csv"
    lines = p.read_bytes().split(b"\n")
    at = [i for i, line in enumerate(lines) if line.startswith(b"C0")][2]  # a record's first line
    lines[at] = lines[at].replace(b",", b",Caf\xe9 ", 1)  # Windows-1252 'é' in a UTF-8 file
    p.write_bytes(b"\n".join(lines))
    resign(bundle, counts=False)
    msg = refusal(bundle, tmp_path / "work")
    assert f"contacts.csv: byte 0xE9 on line {at + 1} is not valid utf-8 text" in msg and "re-export" in msg


def _zip(bundle: Path, zip_path: Path, extra: dict[str, bytes], **kw) -> Path:
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(bundle.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(bundle).as_posix())
        for name, data in extra.items():
            zf.writestr(name, data, **kw)
    return zip_path


def test_zip_entry_with_an_absolute_path(bundle: Path, tmp_path: Path):
    z = _zip(bundle, tmp_path / "abs.zip", {"/tmp/evil.txt": b"pwned"})
    msg = refusal(z, tmp_path / "work")
    assert "abs.zip: entry '/tmp/evil.txt' has an absolute path or leaves the bundle" in msg


def test_zip_entry_escaping_with_dotdot(bundle: Path, tmp_path: Path):
    z = _zip(bundle, tmp_path / "esc.zip", {"files/../../escaped.txt": b"pwned"})
    msg = refusal(z, tmp_path / "work")
    assert "leaves the bundle with '..'" in msg
    assert not list(tmp_path.rglob("escaped.txt"))


def test_zip_bomb(bundle: Path, tmp_path: Path):
    """8 MiB of zeros deflate to ~8 KB (ratio ~1000, limit 200): refused before a byte is written."""
    z = _zip(bundle, tmp_path / "bomb.zip", {"files/00008/scan.pdf": bytes(8 * 1024 * 1024)})
    assert z.stat().st_size < 200_000
    msg = refusal(z, tmp_path / "work")
    assert "bomb.zip: entry 'files/00008/scan.pdf' expands" in msg and "possible zip bomb" in msg
    assert not list((tmp_path / "work").rglob("scan.pdf"))


def test_manifest_listing_an_unknown_file(bundle: Path, tmp_path: Path):
    (bundle / "invoices.csv").write_text("Invoice ID\r\n1\r\n", encoding="utf-8")
    data = manifest(bundle)
    data["files"].append({"name": "invoices.csv", "rows": 1, "bytes": 0, "sha256": "0" * 64})
    write_manifest(bundle, data)
    resign(bundle)
    msg = refusal(bundle, tmp_path / "work")
    assert "manifest.json lists invoices.csv, which is not a file of format 1" in msg


def test_json_file_that_is_not_json(bundle: Path, tmp_path: Path):
    (bundle / "workflow_rules.json").write_text(json.dumps({"rules": []})[:-1], encoding="utf-8")
    resign(bundle)
    msg = refusal(bundle, tmp_path / "work")
    assert "workflow_rules.json is not valid JSON (line 1" in msg
