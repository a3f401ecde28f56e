"""The source marker: how an activity, note or file in Pipedrive says which Novo record it came from.

Organizations, persons and deals carry their source id in the `Novo Source ID` custom field;
activities, notes and files have no custom fields, so each carries a short marker instead — at the
end of the activity's note, at the end of the note's content, in the file's name. It is derived
from the entity and the source id only (a hash: safe in a file name, the same on every run), so the
id map can always be rebuilt from what the account holds (`loading.repair`) and a lost answer is
found again (`loading.loader` finders).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flitstack_dagster.entities import ENTITIES

MARKED = ENTITIES.with_identity("marker")
# where each marked entity carries it (the request/answer field)
MARKER_FIELD = {e.name: e.marker_field for e in ENTITIES if e.identity == "marker"}
_PATTERN = re.compile(r"\[novo:([0-9a-f]{16})\]")
_PARAGRAPH = re.compile(r"<p>\[novo:[0-9a-f]{16}\]</p>$")


def marker(entity: str, source_id: str) -> str:
    """`[novo:<16 hex>]`: 64 bits of the entity and source id, so a million records never collide."""
    digest = hashlib.sha256(f"{entity}\x1f{source_id}".encode()).hexdigest()[:16]
    return f"[novo:{digest}]"


def with_marker(entity: str, source_id: str, text: str | None) -> str:
    """Text (an activity note, a note's content) with the record's marker as its last paragraph."""
    mark = marker(entity, source_id)
    text = text or ""
    if mark in text:
        return text
    return f"{text}<p>{mark}</p>" if text else f"<p>{mark}</p>"


def without_marker(text: str | None) -> str:
    """Text as it was before `with_marker` (what a record loaded before markers existed holds)."""
    return _PARAGRAPH.sub("", text or "")


def marked_file_name(entity: str, source_id: str, file_name: str) -> str:
    """`report.pdf` -> `report [novo:…].pdf`: the extension stays last so the file still opens."""
    mark = marker(entity, source_id)
    if mark in file_name:
        return file_name
    stem, dot, ext = file_name.rpartition(".")
    if not dot or not stem:
        return f"{file_name} {mark}"
    return f"{stem} {mark}.{ext}"


def markers_in(text: Any) -> list[str]:
    """Every marker a field's text carries (normally one), as `[novo:…]`."""
    if not isinstance(text, str):
        return []
    return [f"[novo:{h}]" for h in _PATTERN.findall(text)]


def marker_of(entity: str, record: dict[str, Any]) -> str | None:
    """The marker a record read from Pipedrive carries, if any."""
    found = markers_in(record.get(MARKER_FIELD[entity]))
    return found[-1] if found else None
