"""Request bodies the sandbox refuses the way Pipedrive does: not JSON, NaN or Infinity, integers no
64-bit column holds, nesting past a sane depth, or more bytes than any real request needs. Each is a
400 with Pipedrive's error shape, raised before anything is stored."""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl
from typing import Any

from flitstack_dagster.sandbox.errors import ApiError, bad_request

MAX_JSON_BYTES = 4 * 1024 * 1024  # far above any record the migration sends; Pipedrive caps bodies too
MAX_DEPTH = 32
MAX_FILE_BYTES = 25 * 1024 * 1024  # Pipedrive's upload limit for one file
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def file_too_large() -> ApiError:
    mb = MAX_FILE_BYTES // (1024 * 1024)
    return ApiError(413, f"File size exceeds the limit of {mb} MB", f"Files larger than {mb} MB cannot be uploaded.",
                    code="file_too_large")


class _Refused(ValueError):
    """A value JSON can spell but Pipedrive cannot store."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number Pipedrive accepts")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise _Refused(f"{text} is outside the range of a number")
    return v


def _int64(text: str) -> int:
    v = int(text)
    if not INT_MIN <= v <= INT_MAX:
        raise _Refused(f"{text} is outside the range of an integer")
    return v


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when arrays/objects nest more than `limit` levels (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def parse_json(raw: bytes) -> Any:
    """The JSON body as Python values, or a 400 saying what Pipedrive would refuse."""
    if len(raw) > MAX_JSON_BYTES:
        raise too_large()
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_int64)
    except _Refused as e:
        raise bad_request("Invalid number in request body", f"{e}.") from None
    except RecursionError:
        raise nested_too_deep() from None
    except ValueError:  # also UnicodeDecodeError and ints too long to convert
        raise bad_request("Invalid JSON in request body") from None
    if too_deep(value):
        raise nested_too_deep()
    return value


def too_large():
    return bad_request("Request body too large",
                       f"A request body may hold at most {MAX_JSON_BYTES // (1024 * 1024)} MB of JSON.")


def nested_too_deep():
    return bad_request("Request body nested too deeply",
                       f"Objects and arrays may nest at most {MAX_DEPTH} levels.")


async def read_capped(request: Any) -> bytes:
    """The raw body, refused as soon as it (or its announced length) passes the cap."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_JSON_BYTES:
        raise too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(raw: bytes) -> dict[str, str]:
    """An x-www-form-urlencoded body (the last value of a repeated key wins, as in Starlette's form)."""
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("Invalid form body", "Send UTF-8 application/x-www-form-urlencoded.") from None
