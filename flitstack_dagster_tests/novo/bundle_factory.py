"""Build small, exactly-described Novo export bundles in a temp folder — and damage them on purpose."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flitstack_dagster.novo.columns import BY_FILE, FILES, JSON_FILES, UDF_FILE

Row = Mapping[str, str] | Sequence[str]

BASE_MANIFEST: dict[str, Any] = {
    "format": "novo-work-order-export",
    "format_version": 1,
    "export_id": "springfield-20261120T070000Z",
    "tenant": "City of Springfield",
    "exported_at": "2026-11-20T07:00:00Z",
    "kind": "full",
    "changed_since": None,
    "timezone": "America/Chicago",
    "encoding": "utf-8",
    "date_order": "MDY",
}


def csv_bytes(header: Sequence[str], rows: Sequence[Row], encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    """RFC 4180 text of `header` + `rows` (dict rows fill missing columns with '') in `encoding`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header] if isinstance(r, Mapping) else list(r))
    return buf.getvalue().encode(encoding)


def write_bundle(
    root: Path,
    rows: Mapping[str, Sequence[Row]] | None = None,
    *,
    udfs: Sequence[tuple[str, str]] = (),  # (Entity, Column), e.g. ("Work Order", "UDF: Council District")
    encoding: str = "utf-8",
    kind: str = "full",
    manifest: Mapping[str, Any] | None = None,
    json_files: Mapping[str, Any] | None = None,
    newline: str = "\r\n",
) -> Path:
    """Write every file of format 1 (deleted.csv for deltas) plus a manifest that matches exactly."""
    root.mkdir(parents=True, exist_ok=True)
    rows = dict(rows or {})
    udf_rows = [{"Entity": e, "Label": c.removeprefix("UDF: "), "Column": c, "Data Type": "Text"} for e, c in udfs]
    rows.setdefault("user_defined_fields.csv", udf_rows)
    for nf in FILES:
        if nf.delta_only and kind != "delta":
            continue
        extra = [c for e, c in udfs if UDF_FILE.get(e) is nf]
        (root / nf.file).write_bytes(csv_bytes(nf.headers + extra, rows.get(nf.file, []), encoding, newline))
    for name in JSON_FILES:
        (root / name).write_text(json.dumps((json_files or {}).get(name, [])), encoding="utf-8")
    m = dict(BASE_MANIFEST, kind=kind, encoding=encoding)
    if kind == "delta":
        m["changed_since"] = "2026-11-01T00:00:00Z"
    m.update(manifest or {})
    write_manifest(root, m, counts={name: len(r) for name, r in rows.items()})
    return root


def file_entry(path: Path, rows: int) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(root: Path, manifest: Mapping[str, Any], counts: Mapping[str, int] | None = None) -> None:
    """manifest.json listing every CSV/JSON file in `root` with its true size and hash."""
    counts = counts or {}
    names = sorted(p.name for p in root.iterdir() if p.suffix in (".csv", ".json") and p.name != "manifest.json")
    m = dict(manifest)
    if "files" not in m:
        m["files"] = [file_entry(root / n, counts.get(n, 0)) for n in names]
    (root / "manifest.json").write_text(json.dumps(m, indent=2), encoding="utf-8")


def read_manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def edit_manifest(root: Path, **changes: Any) -> None:
    """Change top-level manifest keys (None deletes nothing: it sets JSON null)."""
    m = read_manifest(root)
    m.update(changes)
    (root / "manifest.json").write_text(json.dumps(m, indent=2), encoding="utf-8")


def edit_entry(root: Path, name: str, **changes: Any) -> None:
    """Change one file's manifest entry, e.g. rows=5 or sha256='0'*64."""
    m = read_manifest(root)
    for f in m["files"]:
        if f["name"] == name:
            f.update(changes)
    (root / "manifest.json").write_text(json.dumps(m, indent=2), encoding="utf-8")


def replace_file(root: Path, name: str, data: bytes, *, keep_manifest: bool = False) -> None:
    """Overwrite a file; by default the manifest's size and hash follow (rows stay as they were)."""
    (root / name).write_bytes(data)
    if not keep_manifest:
        entry = file_entry(root / name, 0)
        edit_entry(root, name, bytes=entry["bytes"], sha256=entry["sha256"])


def zip_bundle(root: Path, zip_path: Path, prefix: str = "") -> Path:
    """Zip the bundle folder; `prefix` ('export/') nests it in a folder like zipping the folder does."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(root).as_posix())
    return zip_path


def header_of(name: str, udf_columns: Sequence[str] = ()) -> list[str]:
    return BY_FILE[name].headers + list(udf_columns)
