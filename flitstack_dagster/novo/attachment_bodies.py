"""What landing finds in `files/` for each attachments.csv row: raw.attachments' `_body*` columns.

The spec says an attachment whose body is missing, or whose size or hash does not match its row, "is
reported, not loaded", and a Bundle Path that leaves the bundle is never read. Only landing holds the
opened bundle (a zip is extracted just for it), so it records the facts here; stg_attachments.sql
decides what they mean. Nothing outside the bundle is ever opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flitstack_dagster.novo.bundle import DRIVE, Bundle, sha256_file

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
    if posix.startswith("/") or DRIVE.match(posix) or "\x00" in posix:
        return True
    return ".." in posix and ".." in PurePosixPath(posix).parts


def inspect(bundle: Bundle, paths: Iterable[tuple[int, str | None]]) -> list[BodyFact]:
    """A fact per (record number, Bundle Path as written); bodies are hashed only inside the bundle.
    One thread, already beside DuckDB's landing of the CSVs: worker threads fight over the GIL on
    these short calls (5 CPU-s for 108k bodies in one thread, 14–22 in two to four)."""
    where = _Resolver(bundle)
    return [_fact(where, n, rel) for n, rel in paths]


def _fact(where: _Resolver, row_number: int, rel: str | None) -> BodyFact:
    if rel is None or not rel.strip():
        return BodyFact(row_number, NO_PATH)
    if leaves_bundle(rel):
        return BodyFact(row_number, OUTSIDE)
    found = where(rel)  # resolves links: a link out is outside too
    if found is None:
        return BodyFact(row_number, OUTSIDE)
    p, st = found
    try:
        st = st or os.stat(p)
    except (OSError, ValueError):
        return BodyFact(row_number, MISSING)
    if not stat.S_ISREG(st.st_mode):
        return BodyFact(row_number, MISSING)
    return BodyFact(row_number, FOUND, str(st.st_size), sha256_file(p, st.st_size))


class _Resolver:
    """`bundle.resolve_inside`, with each folder looked at once: when every step of the path is a plain
    folder or file (no link), the resolved path is the bundle root joined with the steps. Anything
    else (a link, a missing step, an odd name) goes through `bundle.resolve_inside` itself.
    (Plain strings, not pathlib: pathlib's parsing cost more than the file system calls.)"""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle
        self._root = str(bundle.root.resolve())
        self._plain_dirs: set[str] = set()

    def __call__(self, rel: str) -> tuple[str | Path, os.stat_result | None] | None:
        """(path, its stat when already known) inside the bundle, or None when it leaves the bundle."""
        # the steps PurePosixPath would give (no leading `/` here: leaves_bundle refused those)
        parts = [x for x in rel.replace("\\", "/").split("/") if x not in ("", ".")]
        if not parts or ".." in parts or "\x00" in rel:
            return self._resolved(rel)
        here = self._root
        last = len(parts) - 1
        for i, part in enumerate(parts):
            here = f"{here}/{part}"
            if i < last and here in self._plain_dirs:
                continue
            try:
                st = os.lstat(here)
            except (OSError, ValueError):
                return self._resolved(rel)
            if stat.S_ISLNK(st.st_mode) or (i < last and not stat.S_ISDIR(st.st_mode)):
                return self._resolved(rel)
            if i < last:
                self._plain_dirs.add(here)
        return here, st  # the last step is no link: its lstat is its stat

    def _resolved(self, rel: str) -> tuple[Path, None] | None:
        p = self._bundle.resolve_inside(rel)
        return None if p is None else (p, None)
