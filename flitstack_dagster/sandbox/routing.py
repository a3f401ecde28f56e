"""The sandbox's own request plumbing, below every route module: the request context, the reply, the
router (a literal path segment beats a placeholder) and the query and cursor helpers."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable

from flitstack_dagster.sandbox.errors import bad_request
from flitstack_dagster.sandbox.values import is_int

MAX_LIMIT_V2 = 500
DEFAULT_LIMIT_V2 = 100


@dataclass
class Ctx:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any = None
    form: Any = None
    raw: bytes = b""
    now: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    raw: bytes | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Router:
    """Routes by method and path template. Where two templates match one path, the one with more literal
    segments wins, as on Pipedrive (`/api/v2/deals/search` is the search, not the deal with id "search")."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, str, Callable]] = []

    def add(self, method: str, template: str, handler: Callable, body: str = "json") -> None:
        parts = re.split(r"(\{[^}]+\})", template)
        rx = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        self.routes.append((method, re.compile("^" + rx + "/?$"), body, handler))
        self.routes.sort(key=lambda r: r[1].pattern.count("(?P<"))  # stable: fewer placeholders first

    def match(self, method: str, path: str):
        for m, rx, body, h in self.routes:
            if m == method:
                mt = rx.match(path)
                if mt:
                    return h, mt.groupdict(), body
        return None


def encode_cursor(last_key: tuple) -> str:
    """An opaque cursor naming the sort key of the last record a page held: the next page starts after
    it, so records deleted between pages shift nothing."""
    return base64.urlsafe_b64encode(json.dumps({"after": list(last_key)}).encode()).decode().rstrip("=")


def decode_cursor(c: str) -> list:
    try:
        pad = "=" * (-len(c) % 4)
        after = json.loads(base64.urlsafe_b64decode(c + pad))["after"]
        if not isinstance(after, list) or not after or not all(isinstance(x, str) or is_int(x) for x in after):
            raise ValueError
        return after
    except Exception:
        raise bad_request("Invalid cursor", "The cursor parameter is not valid.") from None


def by_id(rec: dict) -> tuple:
    return (rec["id"],)


def qint(req: "Ctx", name: str, default: int | None = None, minimum: int | None = None) -> int | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for '{name}': expected integer") from None
    if minimum is not None and v < minimum:
        raise bad_request(f"Invalid value for '{name}': must be >= {minimum}")
    return v


def qbool(req: "Ctx", name: str) -> bool | None:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true"):
        return True
    if raw.lower() in ("0", "false"):
        return False
    raise bad_request(f"Invalid value for '{name}': expected boolean")


def page_limit(ctx: Ctx, max_limit: int = MAX_LIMIT_V2) -> int:
    limit = qint(ctx, "limit", DEFAULT_LIMIT_V2, minimum=1)
    if limit > max_limit:
        raise bad_request(f"Invalid value for 'limit': must be <= {max_limit}")
    return limit


def stream_page(ctx: Ctx, select: Callable[[list | None], Iterable[dict]], key: Callable[[dict], tuple] = by_id,
                max_limit: int = MAX_LIMIT_V2) -> tuple[list[dict], str | None]:
    """One page of what `select(after)` yields (sorted by `key`, starting after the cursor's key, or at
    the start for None), read no further than the page needs, and the cursor of the next page or None."""
    limit = page_limit(ctx, max_limit)
    cursor = ctx.query.get("cursor")
    shown = list(islice(select(decode_cursor(cursor) if cursor else None), limit + 1))
    nxt = encode_cursor(key(shown[limit - 1])) if len(shown) > limit else None
    return shown[:limit], nxt


def page(ctx: Ctx, items: list[dict], key: Callable[[dict], tuple] = by_id, descending: bool = False,
         max_limit: int = MAX_LIMIT_V2) -> tuple[list[dict], str | None]:
    """One page of `items` (already sorted by `key`), and the cursor of the next page or None."""
    limit = page_limit(ctx, max_limit)
    cursor = ctx.query.get("cursor")
    if cursor:
        after = decode_cursor(cursor)
        try:
            items = [r for r in items if (list(key(r)) < after if descending else list(key(r)) > after)]
        except TypeError:  # a cursor made for another sort order
            raise bad_request("Invalid cursor", "The cursor belongs to another sort order.") from None
    shown = items[:limit]
    nxt = encode_cursor(key(shown[-1])) if len(items) > limit else None
    return shown, nxt
