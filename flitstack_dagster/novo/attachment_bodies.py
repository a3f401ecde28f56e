"""What landing finds in `files/` for each attachments.csv row: raw.attachments' `_body*` columns.

The spec says an attachment whose body is missing, or whose size or hash does not match its row, "is
reported, not loaded", and a Bundle Path that leaves the bundle is never read. Only landing holds the
opened bundle (a zip is extracted just for it), so it records the facts here; stg_attachments.sql
decides what they mean. Nothing outside the bundle is ever opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flitstack_dagster.novo.bundle import Bundle, sha256_file

# extra raw.attachments columns, all text like the rest of the raw layer (staging casts):
# `_body` = found | missing | outside | no_path; size in bytes and SHA-256 (hex) when found
COLUMNS = ("_body", "_body_bytes", "_body_sha256")
FOUND, MISSING, OUTSIDE, NO_PATH = "found", "missing", "outside", "no_path"


@dataclass(frozen=True)
class BodyFact:
    """One attachments.csv record's body: `found` (with size and SHA-256), `missing`, `outside`, `no_path`."""

    row_number: int
    body: str
    body_bytes: str | None = None
    body_sha256: str | None = None


def leaves_bundle(rel: str) -> bool:
    """Absolute, drive-letter, UNC or any `..` step: a hostile path, even one that would come back in."""
    posix = rel.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or "\x00" in posix:
        return True
    return ".." in posix and ".." in PurePosixPath(posix).parts


# stat, open and read release the GIL: a few threads overlap the file system's waits (at 100k work
# orders, 10.7k bodies: 2.4 s one by one through pathlib, 0.2 s now)
THREADS = 4
BATCH = 1024  # rows per task (a task per row costs more than its file system calls)
SMALL = 256 * 1024


def inspect(bundle: Bundle, paths: Iterable[tuple[int, str | None]]) -> list[BodyFact]:
    """A fact per (record number, Bundle Path as written); bodies are hashed only inside the bundle."""
    where = _Resolver(bundle)
    rows = list(paths)
    batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    if len(batches) < 2:
        return [_fact(where, n, rel) for n, rel in rows]
    with ThreadPoolExecutor(THREADS) as pool:
        done = pool.map(lambda batch: [_fact(where, n, rel) for n, rel in batch], batches)
        return [fact for batch in done for fact in batch]


def _fact(where: _Resolver, row_number: int, rel: str | None) -> BodyFact:
    """inspect() for one row (runs in a worker thread)."""
    if rel is None or not rel.strip():
        return BodyFact(row_number, NO_PATH)
    if leaves_bundle(rel):
        return BodyFact(row_number, OUTSIDE)
    p = where(rel)  # resolves links: a link out is outside too
    if p is None:
        return BodyFact(row_number, OUTSIDE)
    try:
        st = os.stat(p)
    except (OSError, ValueError):
        return BodyFact(row_number, MISSING)
    if not stat.S_ISREG(st.st_mode):
        return BodyFact(row_number, MISSING)
    return BodyFact(row_number, FOUND, str(st.st_size), _sha256(p, st.st_size))


def _sha256(p: str | Path, size: int) -> str:
    """A small body is read in one go (sha256_file's 1 MiB read buffer costs more than the hash)."""
    if size > SMALL:
        return sha256_file(p)
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class _Resolver:
    """`bundle.resolve_inside`, with each folder looked at once: when every step of the path is a plain
    folder or file (no link), the resolved path is the bundle root joined with the steps. Anything
    else (a link, a missing step, an odd name) goes through `bundle.resolve_inside` itself.
    (Plain strings, not pathlib: pathlib's parsing cost more than the file system calls.)"""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle
        self._root = str(bundle.root.resolve())
        self._plain_dirs: set[str] = set()

    def __call__(self, rel: str) -> str | Path | None:
        # the steps PurePosixPath would give (no leading `/` here: leaves_bundle refused those)
        parts = [x for x in rel.replace("\\", "/").split("/") if x not in ("", ".")]
        if not parts or ".." in parts or "\x00" in rel:
            return self._bundle.resolve_inside(rel)
        here = self._root
        last = len(parts) - 1
        for i, part in enumerate(parts):
            here = f"{here}/{part}"
            if i < last and here in self._plain_dirs:
                continue
            try:
                mode = os.lstat(here).st_mode
            except (OSError, ValueError):
                return self._bundle.resolve_inside(rel)
            if stat.S_ISLNK(mode) or (i < last and not stat.S_ISDIR(mode)):
                return self._bundle.resolve_inside(rel)
            if i < last:
                self._plain_dirs.add(here)
        return here
