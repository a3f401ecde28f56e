"""`manifest.json` of a Novo export bundle, validated to the letter of the format-1 contract.

Every check turns into one `BundleError` that names `manifest.json` and the key in plain words, so
a user can fix or re-export the bundle without reading a pydantic dump.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from flitstack_dagster.core.errors import BundleError

MANIFEST_NAME = "manifest.json"
FORMAT = "novo-work-order-export"
FORMAT_VERSION = 1
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252")

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 instant: a string with a date, a time and an offset (or `Z`); never a number."""
    if not isinstance(value, str):  # ValueError, not TypeError: pydantic reports only ValueError in words
        raise ValueError("must be an ISO 8601 instant such as 2026-11-20T07:00:00Z")  # noqa: TRY004
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be an ISO 8601 instant such as 2026-11-20T07:00:00Z, found {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"must carry an offset or Z (an instant, not a wall time), found {value!r}")
    return parsed


def is_plain_file_name(name: str) -> bool:
    """True for `work_orders.csv`; False for anything with a folder, drive or parent reference."""
    return (
        bool(name)
        and name not in (".", "..")
        and not any(ch in name for ch in "/\\\x00:")
        and name == name.strip()
    )


class ManifestFile(BaseModel):
    """One file the manifest lists: its plain name, record count, size and SHA-256."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: StrictStr
    rows: StrictInt = Field(ge=0)
    bytes: StrictInt = Field(ge=0)
    sha256: StrictStr

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not is_plain_file_name(v):
            raise ValueError(f"must be a plain file name without folders, found {v!r}")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _SHA256.fullmatch(v):
            raise ValueError(f"must be 64 hexadecimal characters, found {_short(v)!r}")
        return v.lower()


class Manifest(BaseModel):
    """The bundle's table of contents and reading instructions (encoding, time zone, date order)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: Literal["novo-work-order-export"]
    format_version: Literal[1]
    export_id: StrictStr
    tenant: StrictStr | None = None
    exported_at: datetime
    kind: Literal["full", "delta"]
    changed_since: datetime | None
    timezone: StrictStr
    encoding: Literal["utf-8", "utf-8-sig", "cp1252"]
    date_order: Literal["MDY", "DMY"]
    files: list[ManifestFile]

    @field_validator("export_id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        if not _SAFE_ID.fullmatch(v):
            raise ValueError(f"may hold only letters, digits, '-', '_' and '.', found {_short(v)!r}")
        return v

    @field_validator("exported_at", mode="before")
    @classmethod
    def _instant(cls, v: Any) -> datetime:
        return parse_instant(v)

    @field_validator("changed_since", mode="before")
    @classmethod
    def _optional_instant(cls, v: Any) -> datetime | None:
        return None if v is None else parse_instant(v)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"must be an IANA time zone name such as America/Chicago, found {_short(v)!r}") from None
        return v

    @model_validator(mode="after")
    def _kind_and_files(self) -> Manifest:
        if self.kind == "full" and self.changed_since is not None:
            raise ValueError("changed_since must be null for a full export")
        if self.kind == "delta" and self.changed_since is None:
            raise ValueError("changed_since must be the instant a delta export starts at, found null")
        seen: set[str] = set()
        for f in self.files:
            if f.name in seen:
                raise ValueError(f"files lists {f.name} twice")
            seen.add(f.name)
        return self

    def file(self, name: str) -> ManifestFile | None:
        """The manifest entry for `name`, or None when the manifest does not list it."""
        return next((f for f in self.files if f.name == name), None)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.files]


def load_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest.json bytes; any problem is one BundleError in plain words."""
    raw = _json_object(data)
    _check_format(raw)
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        raise BundleError(_plain_errors(e)) from None


def _json_object(data: bytes) -> dict[str, Any]:
    """The manifest must be one JSON object in UTF-8 (a BOM is tolerated)."""
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BundleError(f"{MANIFEST_NAME} is not UTF-8 text; the bundle is damaged — re-export it.") from None
    except json.JSONDecodeError as e:
        raise BundleError(
            f"{MANIFEST_NAME} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
            "the bundle is damaged or still being copied — re-export or re-copy it."
        ) from None
    if not isinstance(raw, dict):
        raise BundleError(f"{MANIFEST_NAME} must hold one JSON object with the keys of format 1.")
    return raw


def _check_format(raw: dict[str, Any]) -> None:
    """Refuse other formats and versions before anything else: their other keys mean other things."""
    fmt = raw.get("format")
    if fmt != FORMAT:
        raise BundleError(
            f"{MANIFEST_NAME}: format is {fmt!r}, expected {FORMAT!r}; this is not a Novo Work Order export."
        )
    version = raw.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise BundleError(
            f"{MANIFEST_NAME}: unknown format version {_show(version)}; "
            f"this FlitStack reads format {FORMAT_VERSION}."
        )


_TYPE_WORDS = {
    "missing": "is missing",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "greater_than_equal": "must be 0 or more",
}


def _plain_errors(e: ValidationError) -> str:
    """`manifest.json: files[2].sha256 must be 64 hexadecimal characters …; kind must be …`."""
    parts = [_plain_error(err) for err in e.errors()]
    return f"{MANIFEST_NAME}: " + "; ".join(parts) + "."


def _plain_error(err: Any) -> str:
    key = _key(err["loc"])
    kind = err["type"]
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{key} must be {expected}, found {_show(err.get('input'))}"
    if kind == "value_error":
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return msg if not key else f"{key} {msg}"
    words = _TYPE_WORDS.get(kind, err["msg"].lower())
    if kind == "missing":
        return f"{key} {words}"
    return f"{key} {words}, found {_show(err.get('input'))}"


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    return "null" if value is None else _short(repr(value))


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
