"""What landing finds in `files/` for each attachments.csv row: raw.attachments' `_body*` columns.

The spec says an attachment whose body is missing, or whose size or hash does not match its row, "is
reported, not loaded", and a Bundle Path that leaves the bundle is never read. Only landing holds the
opened bundle (a zip is extracted just for it), so it records the facts here; stg_attachments.sql
decides what they mean. Nothing outside the bundle is ever opened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    return ".." in PurePosixPath(posix).parts


def inspect(bundle: Bundle, paths: Iterable[tuple[int, str | None]]) -> list[BodyFact]:
    """A fact per (record number, Bundle Path as written); bodies are hashed only inside the bundle."""
    facts: list[BodyFact] = []
    for row_number, rel in paths:
        if rel is None or not rel.strip():
            facts.append(BodyFact(row_number, NO_PATH))
            continue
        if leaves_bundle(rel):
            facts.append(BodyFact(row_number, OUTSIDE))
            continue
        p: Path | None = bundle.resolve_inside(rel)  # resolves links: a link out is outside too
        if p is None:
            facts.append(BodyFact(row_number, OUTSIDE))
        elif not p.is_file():
            facts.append(BodyFact(row_number, MISSING))
        else:
            facts.append(BodyFact(row_number, FOUND, str(p.stat().st_size), sha256_file(p)))
    return facts
