"""Open a Novo export bundle (folder or .zip) and verify it against its manifest before anything lands.

A damaged, hostile or half-copied bundle is refused with one `BundleError` that names the file and
the mismatch, so nothing partial ever reaches DuckDB. Plain typed Python: no Dagster here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.columns import BY_FILE, JSON_FILES, UDF_FILE, NovoFile
from flitstack_dagster.novo.manifest import MANIFEST_NAME, Manifest, ManifestFile, is_plain_file_name, load_manifest

CHUNK = 1024 * 1024  # hashing and copying stream in 1 MiB chunks: files may be gigabytes
DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows drive letter: an absolute path from another machine
# the raw layer's own columns (raw.attachments also has landing's `_body*` facts)
RESERVED_COLUMNS = ("_run_key", "_row_number", "_body", "_body_bytes", "_body_sha256")
UDF_DECLARATIONS = "user_defined_fields.csv"
DAMAGED = "the bundle is damaged — re-export it."


@dataclass(frozen=True)
class ZipLimits:
    """Zip-bomb guard: a real export is big but never absurdly compressed or unbounded."""

    max_total_bytes: int = 32 * 1024**3  # all entries, uncompressed
    max_ratio: float = 200.0  # uncompressed / compressed, for entries above `ratio_floor`
    ratio_floor: int = 1024 * 1024  # tiny entries may compress absurdly well and harm no one
    max_entries: int = 1_000_000


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: every listed file present, sized, hashed and with the headers format 1 wants."""

    root: Path
    manifest: Manifest
    manifest_bytes: bytes = field(repr=False)
    source: Path  # what the user pointed at: the folder or the .zip
    work_dir: Path  # scratch space (extracted zip, transcoded CSVs)
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # CSV name -> header as written

    @property
    def fingerprint(self) -> str:
        """SHA-256 of manifest.json's bytes: the same bundle is never started twice."""
        return hashlib.sha256(self.manifest_bytes).hexdigest()

    def path(self, name: str) -> Path:
        """Path of a file of the bundle by its plain manifest name (never a path that could escape)."""
        if not is_plain_file_name(name):
            raise ValueError(f"not a plain bundle file name: {name!r}")
        return self.root / name

    def csv_files(self) -> list[tuple[NovoFile, int]]:
        """The listed CSV files in registry order, each with the record count the manifest promises."""
        return [(nf, self.manifest.file(nf.file).rows) for nf in _registry_order(self.manifest)]

    def resolve_inside(self, rel: str) -> Path | None:
        """Where a `Bundle Path` from attachments.csv points, or None if it is hostile or leaves the bundle."""
        return resolve_inside(self.root, rel)

    @staticmethod
    def is_complete(path: Path) -> bool:
        """Cheap check for a sensor: manifest present and every listed file there at its full size."""
        path = Path(path)
        try:
            if path.is_dir():
                return _folder_complete(path)
            if path.is_file() and zipfile.is_zipfile(path):
                return _zip_complete(path)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError):
            return False
        return False


# --------------------------------------------------------------------------------------------- open


def open_bundle(path: Path, work_dir: Path, *, limits: ZipLimits = ZipLimits()) -> Bundle:
    """Open a bundle folder or .zip (extracted safely into `work_dir`) and verify it completely."""
    source = Path(path)
    work_dir = Path(work_dir)
    if source.is_dir():
        root = source.resolve()
    elif source.is_file():
        work_dir.mkdir(parents=True, exist_ok=True)
        root = _bundle_root(extract_zip(source, work_dir, limits))
    else:
        raise BundleError(f"{source}: no such folder or .zip file; point at an export bundle.")
    manifest_bytes = _read_manifest(root)
    manifest = load_manifest(manifest_bytes)
    headers = verify(root, manifest)
    return Bundle(root, manifest, manifest_bytes, source, work_dir, headers)


def _read_manifest(root: Path) -> bytes:
    p = root / MANIFEST_NAME
    if not p.is_file():
        raise BundleError(
            f"{MANIFEST_NAME} is missing from {root}; this is not a complete Novo export bundle — re-export it."
        )
    return p.read_bytes()


def _bundle_root(extracted: Path) -> Path:
    """A zip may hold the bundle's files at its top or inside one folder (a zip *of the folder*)."""
    if (extracted / MANIFEST_NAME).is_file():
        return extracted
    children = [c for c in extracted.iterdir() if not c.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / MANIFEST_NAME).is_file():
        return children[0]
    return extracted


# --------------------------------------------------------------------------------------------- zip


def extract_zip(zip_path: Path, work_dir: Path, limits: ZipLimits = ZipLimits()) -> Path:
    """Extract into a fresh folder under `work_dir`, refusing escaping names, links and zip bombs."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BundleError(
            f"{zip_path.name} is not a readable .zip file ({e}); it is damaged or still being copied — "
            "re-copy or re-export it."
        ) from None
    with zf:
        infos = zf.infolist()
        check_zip_entries(zip_path.name, infos, limits)
        dest = Path(tempfile.mkdtemp(prefix="bundle-", dir=work_dir))
        written = 0
        for info in infos:
            written += _extract_entry(zip_path.name, zf, info, dest, limits.max_total_bytes - written)
    return dest


def check_zip_entries(zip_name: str, infos: Sequence[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse the whole zip before writing a byte if any entry is hostile or the sizes are absurd."""
    if len(infos) > limits.max_entries:
        raise BundleError(f"{zip_name} holds {len(infos):,} entries (limit {limits.max_entries:,}); refused.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        parts = zip_entry_parts(info.filename)
        if parts is None:
            raise BundleError(
                f"{zip_name}: entry {info.filename!r} has an absolute path or leaves the bundle with '..'; "
                "refused — a real export never does this."
            )
        if _is_symlink(info):
            raise BundleError(f"{zip_name}: entry {info.filename!r} is a symbolic link; refused.")
        if info.flag_bits & 0x1:
            raise BundleError(f"{zip_name}: entry {info.filename!r} is encrypted; export without a password.")
        key = "/".join(parts)
        if key in seen and not info.is_dir():
            raise BundleError(f"{zip_name}: entry {info.filename!r} appears twice; {DAMAGED}")
        seen.add(key)
        _check_ratio(zip_name, info, limits)
        total += info.file_size
    if total > limits.max_total_bytes:
        raise BundleError(
            f"{zip_name} would unpack to {total:,} bytes, over the {limits.max_total_bytes:,}-byte limit; "
            "refused as a possible zip bomb."
        )


def _check_ratio(zip_name: str, info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    if info.file_size < limits.ratio_floor:
        return
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        raise BundleError(
            f"{zip_name}: entry {info.filename!r} expands {ratio:,.0f} times "
            f"(limit {limits.max_ratio:,.0f}); refused as a possible zip bomb."
        )


def zip_entry_parts(name: str) -> list[str] | None:
    """The entry's path parts, or None for an absolute path, a drive, NUL or a `..` component."""
    posix = name.replace("\\", "/")
    if not posix or "\x00" in posix or posix.startswith("/") or DRIVE.match(posix):
        return None
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _extract_entry(zip_name: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int) -> int:
    """Stream one entry to disk, counting real bytes: a lying header cannot exceed the budget."""
    parts = zip_entry_parts(info.filename) or []
    target = dest.joinpath(*parts) if parts else dest
    if not target.resolve().is_relative_to(dest.resolve()):
        raise BundleError(f"{zip_name}: entry {info.filename!r} leaves the bundle; refused.")
    if info.is_dir() or not parts:
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with zf.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size or written > budget:
                    raise BundleError(
                        f"{zip_name}: entry {info.filename!r} unpacks to more than it declares or than "
                        "the size limit allows; refused as a possible zip bomb."
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise BundleError(f"{zip_name}: entry {info.filename!r} cannot be unpacked ({e}); {DAMAGED}") from None
    return written


# --------------------------------------------------------------------------------------------- verify


def verify(root: Path, manifest: Manifest) -> dict[str, tuple[str, ...]]:
    """All checks in order; returns each CSV's header. Raises one BundleError listing every problem."""
    _raise_if(listing_problems(manifest))
    _raise_if(integrity_problems(root, manifest))
    headers: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for nf in _registry_order(manifest):
        try:
            headers[nf.file] = tuple(read_header(root / nf.file, manifest.encoding))
        except BundleError as e:
            problems.append(str(e))
            continue
        problems += header_problems(nf, headers[nf.file])
    _raise_if(problems)
    declared = read_udf_declarations(root / UDF_DECLARATIONS, manifest.encoding)
    _raise_if(check_udfs_declared(headers, declared))
    return headers


def _raise_if(problems: list[str]) -> None:
    if len(problems) == 1:
        raise BundleError(problems[0])
    if problems:
        raise BundleError("The bundle is refused:\n" + "\n".join(f"  - {p}" for p in problems))


def required_files(manifest: Manifest) -> list[str]:
    """Every non-delta-only CSV and both JSON files; a delta also needs deleted.csv."""
    names = [nf.file for nf in BY_FILE.values() if not nf.delta_only] + list(JSON_FILES)
    if manifest.kind == "delta":
        names += [nf.file for nf in BY_FILE.values() if nf.delta_only]
    return names


def listing_problems(manifest: Manifest) -> list[str]:
    """The manifest must list every required file and only files that format 1 defines."""
    problems = [
        f"{MANIFEST_NAME} does not list {name}, which every {manifest.kind} bundle must have; {DAMAGED}"
        for name in required_files(manifest)
        if manifest.file(name) is None
    ]
    known = set(BY_FILE) | set(JSON_FILES)
    problems += [
        f"{MANIFEST_NAME} lists {f.name}, which is not a file of format 1; refused so no data is silently "
        "ignored — check the export's format."
        for f in manifest.files
        if f.name not in known
    ]
    return problems


def integrity_problems(root: Path, manifest: Manifest) -> list[str]:
    """Presence, size and SHA-256 of every listed file (hashing only files whose size already matches)."""
    problems: dict[str, str] = {}
    to_hash: list[ManifestFile] = []
    real_root = root.resolve()
    for entry in manifest.files:
        p = root / entry.name
        if not p.is_file():
            problems[entry.name] = f"{entry.name} is listed in the manifest but missing from the bundle; {DAMAGED}"
        elif not p.resolve().is_relative_to(real_root):
            problems[entry.name] = f"{entry.name} links outside the bundle; refused."
        elif (size := p.stat().st_size) != entry.bytes:
            problems[entry.name] = (f"{entry.name}: size does not match the manifest "
                                    f"(manifest {entry.bytes:,} bytes, file {size:,} bytes); {DAMAGED}")
        else:
            to_hash.append(entry)
    # two at a time, biggest first: hashing releases the GIL, and the biggest files decide the wait
    by_size = sorted(to_hash, key=lambda e: e.bytes, reverse=True)
    with ThreadPoolExecutor(2) as pool:
        digests = pool.map(lambda e: sha256_file(root / e.name, e.bytes), by_size)
        for entry, digest in zip(by_size, digests, strict=True):
            if digest != entry.sha256:
                problems[entry.name] = (f"{entry.name}: SHA-256 does not match the manifest "
                                        f"(manifest {entry.sha256[:12]}…, file {digest[:12]}…); {DAMAGED}")
    return [problems[entry.name] for entry in manifest.files if entry.name in problems]


def sha256_file(path: str | Path, size: int | None = None) -> str:
    """Streaming SHA-256 in 1 MiB chunks, so a multi-gigabyte file never sits in memory. Read through a
    plain file descriptor (a buffered file object costs more than a small file's hash); with the size
    known, a small file is one read and the empty read at its end."""
    h = hashlib.sha256()
    want = CHUNK if size is None else min(size + 1, CHUNK)
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, want):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- CSV


def text_encoding(encoding: str) -> str:
    """Python codec for the manifest's encoding; UTF-8 always tolerates (and drops) a stray BOM."""
    return "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding


def _allow_long_fields() -> None:
    """Descriptions may be tens of KB or more; the csv module's 128 KiB default is too small."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def iter_records(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line the record ends on, fields) for every record after the header; blank lines skipped.

    Raises BundleError naming the file and line on bad quoting or bytes not in `encoding`.
    """
    _allow_long_fields()
    line = 0
    try:
        with open(path, encoding=text_encoding(encoding), newline="") as f:
            reader = csv.reader(f, strict=True)
            for row in reader:
                line = reader.line_num
                if row:
                    yield line, row
    except csv.Error as e:
        raise BundleError(
            f"{path.name}: cannot be read as CSV after line {line:,} ({e}); "
            f"a quote is not closed or the file is cut short — {DAMAGED}"
        ) from None
    except UnicodeDecodeError:
        raise BundleError(undecodable_message(path, encoding)) from None


def find_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """(line, byte value) of the first bytes not valid in `encoding`; neither codec spans a newline."""
    codec = text_encoding(encoding)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode(codec if number == 1 else encoding.replace("-sig", ""))
            except UnicodeDecodeError as e:
                return number, raw[e.start]
    return None


def undecodable_message(path: Path, encoding: str) -> str:
    """'labor.csv: byte 0x81 on line 12 is not valid cp1252 text; …' — what the user can act on."""
    found = find_undecodable(path, encoding)
    where = f"byte 0x{found[1]:02X} on line {found[0]:,}" if found else "some bytes"
    return (
        f"{path.name}: {where} is not valid {encoding} text; the manifest's encoding may be wrong "
        "or the file is damaged — check it or re-export the bundle."
    )


def count_records(path: Path, encoding: str) -> int:
    """Records in a CSV file, header excluded; a quoted value with line breaks is one record."""
    records = iter_records(Path(path), encoding)
    if next(records, None) is None:  # the header, or nothing at all
        return 0
    return sum(1 for _ in records)


def read_header(path: Path, encoding: str) -> list[str]:
    """The first record of a CSV file, exactly as written."""
    first = next(iter_records(path, encoding), None)
    if first is None:
        raise BundleError(f"{path.name} is empty: it has no header line; {DAMAGED}")
    return first[1]


def header_problems(nf: NovoFile, header: Sequence[str]) -> list[str]:
    """Blank, duplicate or reserved names, and missing standard columns (case and spaces matter)."""
    problems: list[str] = []
    if any(not h.strip() for h in header):
        problems.append(f"{nf.file}: the header has a column without a name; {DAMAGED}")
    lowered = [h.lower() for h in header]  # DuckDB names are case-insensitive
    dupes = sorted({h for h in header if lowered.count(h.lower()) > 1})
    if dupes:
        problems.append(f"{nf.file}: the header names {_quoted(dupes)} more than once (case ignored); {DAMAGED}")
    reserved = [h for h in header if h.lower() in RESERVED_COLUMNS]
    if reserved:
        problems.append(f"{nf.file}: the header uses the reserved name {_quoted(reserved)}; refused.")
    missing = [c for c in nf.headers if c not in header]
    if missing:
        problems.append(
            f"{nf.file} is missing the standard column(s) {_quoted(missing)} "
            f"(headers must be exactly as Novo writes them, case and spaces included); {DAMAGED}"
        )
    return problems


def read_udf_declarations(path: Path, encoding: str) -> list[tuple[str, str]]:
    """(Entity, Column) of every user defined field the tenant declared."""
    records = iter_records(path, encoding)
    first = next(records, None)
    if first is None:
        return []
    header = first[1]
    try:
        e_at, c_at = header.index("Entity"), header.index("Column")
    except ValueError:
        return []  # header_problems already refused a file without them
    return [(row[e_at], row[c_at]) for _, row in records if len(row) > max(e_at, c_at)]


def check_udfs_declared(
    headers: Mapping[str, Sequence[str]], declared: Iterable[tuple[str, str]]
) -> list[str]:
    """Problems for extra columns that are not UDFs declared in user_defined_fields.csv for their entity."""
    by_entity: dict[str, set[str]] = {}
    for entity, column in declared:
        by_entity.setdefault(entity, set()).add(column)
    problems: list[str] = []
    for name, header in headers.items():
        nf = BY_FILE.get(name)
        if nf is None:
            continue
        extras = [h for h in header if h not in nf.headers]
        if not extras:
            continue
        if nf.udf_entity is None:
            problems.append(
                f"{name} has column(s) {_quoted(extras)} that format 1 does not define, and only "
                f"{_entities()} files may carry user defined fields; {DAMAGED}"
            )
            continue
        undeclared = [h for h in extras if h not in by_entity.get(nf.udf_entity, set())]
        if undeclared:
            problems.append(
                f"{name}: column(s) {_quoted(undeclared)} are not declared in {UDF_DECLARATIONS} for "
                f"Entity '{nf.udf_entity}'; {DAMAGED}"
            )
    return problems


def udf_columns(name: str, header: Sequence[str]) -> list[str]:
    """The extra (user defined) columns of a CSV header, in file order."""
    nf = BY_FILE[name]
    return [h for h in header if h not in nf.headers]


def _entities() -> str:
    return ", ".join(f"'{e}'" for e in UDF_FILE)


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f"'{i}'" for i in items)


def _registry_order(manifest: Manifest) -> list[NovoFile]:
    return [nf for nf in BY_FILE.values() if manifest.file(nf.file) is not None]


# --------------------------------------------------------------------------------------------- paths


def resolve_inside(root: Path, rel: str) -> Path | None:
    """`root/rel` fully resolved (links too), or None if absolute, escaping or not a path at all."""
    if not isinstance(rel, str) or not rel.strip() or "\x00" in rel:
        return None
    posix = rel.replace("\\", "/")
    if posix.startswith("/") or DRIVE.match(posix) or PurePosixPath(posix).is_absolute():
        return None
    real_root = Path(root).resolve()
    try:
        candidate = (real_root / posix).resolve()
    except (OSError, RuntimeError):  # a link loop
        return None
    if candidate == real_root or not candidate.is_relative_to(real_root):
        return None
    return candidate


# --------------------------------------------------------------------------------------------- complete


def _listed_sizes(manifest_bytes: bytes) -> list[tuple[str, int]] | None:
    """(name, bytes) per listed file; None while the manifest is not yet whole JSON (still copying)."""
    try:
        raw = json.loads(manifest_bytes.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, list):
        return []  # whole but not format 1: let open_bundle explain
    return [
        (f["name"], f["bytes"])
        for f in files
        if isinstance(f, dict) and isinstance(f.get("name"), str) and is_plain_file_name(f["name"])
        and type(f.get("bytes")) is int
    ]


def _folder_complete(root: Path) -> bool:
    m = root / MANIFEST_NAME
    if not m.is_file():
        return False
    listed = _listed_sizes(m.read_bytes())
    if listed is None:
        return False
    return all((root / n).is_file() and (root / n).stat().st_size == size for n, size in listed)


def _zip_complete(zip_path: Path) -> bool:
    with zipfile.ZipFile(zip_path) as zf:
        sizes = {i.filename.replace("\\", "/"): i.file_size for i in zf.infolist() if not i.is_dir()}
        manifests = [n for n in sizes if n == MANIFEST_NAME or (n.endswith("/" + MANIFEST_NAME) and n.count("/") == 1)]
        if len(manifests) != 1:
            return False
        prefix = manifests[0][: -len(MANIFEST_NAME)]
        listed = _listed_sizes(zf.read(manifests[0]))
    if listed is None:
        return False
    return all(sizes.get(prefix + n) == size for n, size in listed)


def remove_extracted(bundle: Bundle) -> None:
    """Delete a zip's extraction folder once it is landed (never the user's own bundle folder)."""
    if bundle.source.is_file() and bundle.root.resolve().is_relative_to(bundle.work_dir.resolve()):
        extracted = bundle.root
        while extracted.parent.resolve() != bundle.work_dir.resolve():
            extracted = extracted.parent
        shutil.rmtree(extracted, ignore_errors=True)
