"""The Pipedrive client: one code path for the local sandbox and real Pipedrive.

- URLs are built as the official specs define them, relative to the company host
  (`https://{company}.pipedrive.com` or the sandbox's `http://127.0.0.1:port`): API v1 operations
  under `/v1` (v1 spec server `https://api.pipedrive.com/v1`), API v2 under `/api/v2` (v2 spec server
  `https://api.pipedrive.com/api/v2`).
- The API token goes only in the `x-api-token` header. It is kept as a pydantic SecretStr and
  scrubbed from every error message; `repr(client)` shows the base URL only.
- Every request takes a burst slot and its token cost from the RateLimiter first (see ratelimit.py),
  so the client stays under the plan's limits instead of waiting on 429s.
- Safe operations (GET, PATCH/PUT with the same body, DELETE) are retried with exponential backoff
  and jitter on 429, 5xx, timeouts and dropped connections. Creates (POST) are never retried blindly
  after an ambiguous failure (5xx, timeout, dropped connection): they raise AmbiguousWriteError, and
  `create_idempotent` looks the record up with the caller's `find_existing()` before trying again.
  A 429 on a create is not ambiguous (nothing was written): the client waits and retries it.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Self, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.settings import url_host

from . import models as m
from .costs import CostTable, Operation, default_cost_table
from .errors import (
    AmbiguousWriteError,
    NotFound,
    PipedriveError,
    RateLimited,
    TokenRefused,
    is_entity_not_found,
)
from .limits import MAX_FILE_BYTES, file_limit_text
from .ratelimit import InFlightGate, RateLimiter, normalize_plan

log = logging.getLogger("flitstack_dagster.pipedrive")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

V1_PREFIX = "/v1"
V2_PREFIX = "/api/v2"
V2_PAGE_LIMIT = 500  # the specs' maximum `limit` for cursor pagination
V1_PAGE_LIMIT = 500
IDS_PER_REQUEST = 100  # v2 `ids` takes up to 100 ids

RETRY_STATUSES = {500, 502, 503, 504}
SAFE_METHODS = {"GET", "HEAD", "PATCH", "PUT", "DELETE"}

# entity -> (api, collection path, read model) for the generic create/get/update/delete helpers
ENTITIES: dict[str, tuple[str, str, type[m.PDModel]]] = {
    "organization": ("v2", "/organizations", m.Organization),
    "person": ("v2", "/persons", m.Person),
    "deal": ("v2", "/deals", m.Deal),
    "activity": ("v2", "/activities", m.Activity),
    "pipeline": ("v2", "/pipelines", m.Pipeline),
    "stage": ("v2", "/stages", m.Stage),
    "note": ("v1", "/notes", m.Note),
    "activity_type": ("v1", "/activityTypes", m.ActivityType),
    "organization_relationship": ("v1", "/organizationRelationships", m.OrganizationRelationship),
}
_ENTITY_ALIASES = {
    "organizations": "organization", "org": "organization", "persons": "person", "people": "person",
    "deals": "deal", "activities": "activity", "pipelines": "pipeline", "stages": "stage",
    "notes": "note", "activityTypes": "activity_type", "activity_types": "activity_type",
    "organizationRelationships": "organization_relationship",
    "organization_relationships": "organization_relationship",
}
# payload models: a plain dict given for a create/update is validated through these first
CREATE_MODELS: dict[str, type[m.PDModel]] = {
    "organization": m.OrganizationCreate, "person": m.PersonCreate, "deal": m.DealCreate,
    "activity": m.ActivityCreate, "pipeline": m.PipelineCreate, "stage": m.StageCreate, "note": m.NoteCreate,
    "activity_type": m.ActivityTypeCreate, "organization_relationship": m.OrganizationRelationshipCreate,
}
UPDATE_MODELS: dict[str, type[m.PDModel]] = {
    "organization": m.OrganizationUpdate, "person": m.PersonUpdate, "deal": m.DealUpdate,
    "activity": m.ActivityUpdate, "note": m.NoteUpdate,
}
FIELD_ENTITIES = {"deal": "dealFields", "person": "personFields", "organization": "organizationFields",
                  "activity": "activityFields"}


def _entity(name: str) -> str:
    key = _ENTITY_ALIASES.get(name, name)
    if key not in ENTITIES:
        raise ValueError(f"unknown Pipedrive entity {name!r}; expected one of {', '.join(ENTITIES)}")
    return key


def _payload(obj: BaseModel | Mapping[str, Any] | None) -> Any:
    if obj is None:
        return None
    if isinstance(obj, m.PDModel):
        return obj.payload()
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_unset=True)
    return dict(obj)


def _rfc3339(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, datetime):
            v = _rfc3339(v)
        elif isinstance(v, (list, tuple, set)):
            v = ",".join(str(x) for x in v)
        out[k] = v
    return out


@dataclass
class _Tries:
    """What one request has been through so far, for its retry decisions."""

    safe: bool  # repeating it cannot duplicate a write
    attempt: int = 0  # failures (5xx, transport) so far
    limited: int = 0  # 429 / 403-block answers so far
    ambiguous_before: bool = False  # an earlier attempt may have reached Pipedrive unanswered


def _never_sent(failure: httpx.TransportError) -> bool:
    return isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default certificate checks, built once: loading the CA bundle costs ~50 ms a client."""
    return httpx.create_ssl_context()


class PipedriveClient:
    """Typed, rate-limited, retrying client for the Pipedrive operations the migration uses."""

    def __init__(
        self,
        base_url: str,
        api_token: str | SecretStr,
        plan: str = "growth",
        seats: int | None = None,
        max_concurrency: int | None = None,
        timeout: float | httpx.Timeout = 30,
        daily_reserve_fraction: float = 0.0,
        *,
        max_retries: int = 5,
        max_rate_limit_retries: int = 10,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_block_wait: float = 120.0,
        limiter: RateLimiter | None = None,
        cost_table: CostTable | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "flitstack-dagster/0.1",
        v1_prefix: str = V1_PREFIX,
    ) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("Pipedrive base_url must look like https://{company}.pipedrive.com")
        # accept a base URL given with an API prefix; paths are built from the specs below
        for suffix in ("/api/v1", "/api/v2", "/v1", "/api"):
            if base_url.endswith(suffix):
                base_url = base_url[: -len(suffix)]
                break
        self.base_url = base_url
        self._identity: Any = None  # AccountIdentity, probed once (account.identify)
        self._local = threading.local()  # tokens charged to the calling thread (per-record cost)
        if v1_prefix not in ("/v1", "/api/v1"):
            raise ValueError("v1_prefix must be '/v1' (the v1 spec's server path) or '/api/v1'")
        self.v1_prefix = v1_prefix
        self._token = api_token if isinstance(api_token, SecretStr) else SecretStr(str(api_token or ""))
        if not self._token.get_secret_value():
            raise ValueError("Pipedrive API token is empty")
        self.plan = normalize_plan(plan)
        self.seats = seats
        self.max_retries = max_retries
        self.max_rate_limit_retries = max_rate_limit_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_block_wait = max_block_wait
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.costs = cost_table or default_cost_table()
        # a limiter passed in is shared (one per Dagster run: the same token count and burst window)
        self.limiter = limiter or RateLimiter(
            self.plan, seats, daily_reserve_fraction=daily_reserve_fraction, clock=clock, sleep=sleep,
            wall_clock=wall_clock, pace=True,
        )
        # requests in flight: `max_concurrency` if given, else sized by Little's law from the measured
        # latency (ratelimit.InFlightGate); max_concurrency is the most the gate can allow
        self._gate = InFlightGate(self.limiter.general.limit, fixed=max_concurrency)
        self.max_concurrency = self._gate.max_capacity
        self._usage: dict[str, dict[str, int]] = {}
        self._usage_lock = threading.Lock()
        self.rate_limited_responses = 0  # 429s (and 403 blocks) received: should stay 0
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self.max_concurrency,
                                max_keepalive_connections=self.max_concurrency),
            headers={"user-agent": user_agent, "accept": "application/json"},
            follow_redirects=False,  # a redirect must never carry the token to another host
            transport=transport,
            verify=_tls(),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> PipedriveClient:
        """The account the PIPEDRIVE_* settings name (checked by flitstack_dagster.core.settings, which
        raises a SettingError naming any bad variable); keyword arguments win over the settings."""
        from flitstack_dagster.core.settings import pipedrive_settings

        s = pipedrive_settings(env)
        kwargs.setdefault("plan", s.plan)
        kwargs.setdefault("seats", s.seats)
        kwargs.setdefault("daily_reserve_fraction", s.daily_reserve)
        return cls(s.base_url, s.api_token, **kwargs)

    # -- plumbing ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"PipedriveClient(base_url={self.base_url!r})"

    __str__ = __repr__

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def usage(self) -> dict[str, dict[str, int]]:
        """Requests sent and tokens spent, per operation ("POST /api/v2/organizations")."""
        with self._usage_lock:
            return {k: dict(v) for k, v in self._usage.items()}

    @property
    def tokens_spent(self) -> int:
        with self._usage_lock:
            return sum(v["tokens"] for v in self._usage.values())

    def _count(self, op: Operation, charged: bool = True) -> None:
        with self._usage_lock:
            u = self._usage.setdefault(op.key, {"requests": 0, "tokens": 0})
            u["requests"] += 1
            if charged:
                u["tokens"] += op.cost
        if charged:
            self._local.tokens = self.thread_tokens() + op.cost

    def thread_tokens(self) -> int:
        """Tokens charged so far to requests sent from the calling thread."""
        return getattr(self._local, "tokens", 0)

    def _scrub(self, text: Any) -> str:
        s = str(text)
        secret = self._token.get_secret_value()
        if secret and secret in s:
            s = s.replace(secret, "***")
        return s

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        h = {"x-api-token": self._token.get_secret_value()}
        if extra:
            h.update(extra)
        return h

    def path(self, api: str, path: str) -> str:
        """Full request path: v1 spec server `.../v1`, v2 spec server `.../api/v2`."""
        return (self.v1_prefix if api == "v1" else V2_PREFIX) + path

    def _trace(self, event: str, info: Any) -> None:
        """httpcore trace: the request's headers are being written (after any connect), so its burst
        slot counts from now. (A transport without tracing leaves the stamp at the slot's grant.)"""
        if event.endswith("send_request_headers.started"):
            ticket = getattr(self._local, "ticket", None)
            if ticket is not None:
                self._local.ticket = None
                self.limiter.mark_sent(ticket)

    @property
    def in_flight_capacity(self) -> int:
        """Requests allowed in flight right now (Little's law from the measured latency)."""
        return self._gate.capacity

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # "equal jitter"

    def _error_from(self, resp: httpx.Response, op: Operation, cls: type[PipedriveError] | None = None,
                    **kw: Any) -> PipedriveError:
        error, info = None, None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error") or body.get("message")
            info = body.get("error_info")
            if body.get("code") and not info:
                info = str(body["code"])
        if not error:
            error = resp.reason_phrase or "error"
            if not isinstance(body, dict) and resp.content:
                info = resp.text[:300]
        error = self._scrub(error) if error is not None else None
        info = self._scrub(info) if info is not None else None
        if cls is None and resp.status_code == 401 and isinstance(body, dict) and body.get("success") is False:
            return TokenRefused(self.host, op.key)
        if cls is None:
            # only Pipedrive's record-not-found answer is NotFound: a 404 from a wrong URL is not "gone"
            cls = NotFound if resp.status_code == 404 and is_entity_not_found(body) else PipedriveError
        return cls(resp.status_code, error, info, op.key, **kw)

    @staticmethod
    def _record_gone(resp: httpx.Response) -> bool:
        try:
            return is_entity_not_found(resp.json())
        except ValueError:
            return False

    @property
    def host(self) -> str:
        """The host requests go to (`acme.pipedrive.com`, `127.0.0.1:8123`): never any credentials."""
        return url_host(self.base_url)

    @staticmethod
    def _body_text(resp: httpx.Response) -> str:
        try:
            return resp.text.lower()
        except (UnicodeDecodeError, LookupError):  # pragma: no cover - undecodable body
            return ""

    def _is_daily_budget_429(self, resp: httpx.Response) -> bool:
        """A 429 for the daily token budget (not the 2-s burst window), by documented headers only."""
        return resp.status_code == 429 and self.limiter.budget_refusal(resp.headers)

    def _is_rate_block_403(self, resp: httpx.Response) -> bool:
        text = self._body_text(resp)
        if "feature_capping" in text or "permission" in text:
            return False
        return any(w in text for w in ("rate limit", "rate-limit", "ratelimit", "too many", "blocked", "block"))

    @staticmethod
    def _retry_after(resp: httpx.Response) -> float | None:
        for name in ("retry-after", "x-ratelimit-reset"):
            v = resp.headers.get(name)
            if v is None:
                continue
            try:
                return max(0.0, float(v))
            except ValueError:
                continue
        return None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        raw: bool = False,
        answer: bool = False,
    ) -> Any:
        """Send one operation (`path` is the full path, e.g. /api/v2/deals) with limits and retries.

        Returns the decoded JSON body (or the httpx.Response when raw=True; with answer=True the
        response whatever its status, once limits and retries are done with it). Raises PipedriveError
        (NotFound for Pipedrive's record-not-found 404, TokenRefused for its 401), RateLimited,
        AmbiguousWriteError (POST only) or DailyBudgetSpent.
        """
        method = method.upper()
        op = self.costs.operation(method, path)
        send = {"params": _clean_params(params) or None, "json": json, "data": data, "files": files}
        tries = _Tries(safe=method in SAFE_METHODS)
        while True:
            resp, failure, started = self._send(op, method, path, send)
            if failure is not None:
                self._retry_after_no_answer(op, failure, tries)
                continue
            status = resp.status_code
            log.debug("Pipedrive %s -> %d (%d tokens, %.0f ms)", op.key, status, op.cost,
                      (time.monotonic() - started) * 1000)
            if status < 300 or ((raw or answer) and status < 400):
                return resp if raw or answer else self._decoded(resp, op)
            self._count_rate_limited(resp)
            if status == 429:
                self._wait_out_429(resp, op, tries)
            elif status == 403 and self._is_rate_block_403(resp):
                self._wait_out_block(resp, op, tries)
            elif status in RETRY_STATUSES:
                self._retry_server_error(resp, op, tries)
            elif answer:
                return resp
            elif self._deleted_by_earlier_attempt(method, resp, tries):
                log.info("Pipedrive %s -> %d after an unanswered attempt: already deleted", op.key, status)
                return {"success": True, "data": None}
            else:
                raise self._error_from(resp, op)

    def _send(self, op: Operation, method: str, path: str, send: dict[str, Any],
              ) -> tuple[httpx.Response | None, httpx.TransportError | None, float]:
        """One attempt inside the in-flight gate and the limiter: (answer or None, failure or None, start)."""
        with self._gate:
            ticket = self.limiter.acquire(op.cost, search=op.is_search, operation=op.key)
            started = time.monotonic()
            self._local.ticket = ticket
            try:
                resp = self._http.request(method, path, **send, headers=self._headers(),
                                          extensions={"trace": self._trace})
            except httpx.TransportError as exc:
                self._local.ticket = None
                self._settle_no_answer(ticket, op, exc)
                return None, exc, started
            self._local.ticket = None
            self._gate.observe(time.monotonic() - started)
            self._settle_answer(ticket, op, resp)
            return resp, None, started

    def _settle_no_answer(self, ticket: Any, op: Operation, failure: httpx.TransportError) -> None:
        """A request that never left costs nothing; one that may have reached Pipedrive counts."""
        if _never_sent(failure):
            self.limiter.refund(ticket)
        else:
            self.limiter.release(ticket)
            self._count(op)

    def _settle_answer(self, ticket: Any, op: Operation, resp: httpx.Response) -> None:
        """Tell the limiter what the answer says, and count the operation (refusals cost no tokens)."""
        if self._is_daily_budget_429(resp):
            # no burst information in a daily-budget refusal; nothing charged
            self.limiter.release(ticket)
            self.limiter.refund_tokens(ticket)
            self._count(op, charged=False)
            return
        self.limiter.release(ticket, resp.headers, answered=resp.status_code < 400)
        if self.limiter.general.limit != self._gate.limit:  # the server's x-ratelimit-limit
            self._gate.set_limit(self.limiter.general.limit)
        if resp.status_code == 429:
            self.limiter.refund_tokens(ticket)  # refused requests cost nothing
            # the model freed a slot too early: widen the margin, pause the pool briefly
            self.limiter.burst_refused(search=op.is_search)
        self._count(op, charged=resp.status_code != 429)

    def _retry_after_no_answer(self, op: Operation, failure: httpx.TransportError, tries: _Tries) -> None:
        """Sleep before the next attempt, or raise when a write may have happened or retries are spent."""
        never_sent = _never_sent(failure)
        reason = f"{type(failure).__name__}: {self._scrub(failure) or 'connection problem'}"
        if not tries.safe and not never_sent:
            raise AmbiguousWriteError(
                None, "no answer (timeout or dropped connection); the write may have happened",
                reason, op.key) from None
        if tries.attempt >= self.max_retries:
            raise PipedriveError(None, f"no answer after {tries.attempt + 1} attempts", reason, op.key) from None
        delay = self._backoff(tries.attempt)
        tries.attempt += 1
        tries.ambiguous_before = tries.ambiguous_before or not never_sent
        log.warning("Pipedrive %s: %s; retry %d/%d in %.1f s", op.key, reason, tries.attempt,
                    self.max_retries, delay)
        self._sleep(delay)

    def _decoded(self, resp: httpx.Response, op: Operation) -> Any:
        if not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise PipedriveError(resp.status_code, "answer is not JSON", self._scrub(resp.text[:200]),
                                 op.key) from None

    def _count_rate_limited(self, resp: httpx.Response) -> None:
        if resp.status_code == 429 or (resp.status_code == 403 and self._is_rate_block_403(resp)):
            with self._usage_lock:
                self.rate_limited_responses += 1

    def _wait_out_429(self, resp: httpx.Response, op: Operation, tries: _Tries) -> None:
        """Wait out a burst 429 as the server says; a spent budget or a long wait is raised instead."""
        if self._is_daily_budget_429(resp):
            raise self.limiter.server_budget_spent(op.key)
        wait = self._retry_after(resp)
        # a wait longer than a block is no burst: say so instead of sleeping inside a request
        if tries.limited >= self.max_rate_limit_retries or (wait is not None and wait > self.max_block_wait):
            raise self._error_from(resp, op, RateLimited, retry_after=wait)
        wait = (wait if wait is not None else self._backoff(tries.limited)) + self._rng.uniform(0, 0.1)
        tries.limited += 1
        log.warning("Pipedrive %s -> 429 (burst limit); waiting %.2f s (retry %d/%d)", op.key, wait,
                    tries.limited, self.max_rate_limit_retries)
        # the refused request waits what the server says; the other requests go on as the
        # corrected window allows (burst_refused above paused them for one margin)
        self._sleep(wait)

    def _wait_out_block(self, resp: httpx.Response, op: Operation, tries: _Tries) -> None:
        """Wait out a 403 block after repeated 429s when it is short; otherwise raise RateLimited."""
        wait = self._retry_after(resp)
        if wait is None or wait > self.max_block_wait or tries.limited >= self.max_rate_limit_retries:
            raise self._error_from(resp, op, RateLimited, retry_after=wait)
        tries.limited += 1
        log.warning("Pipedrive %s -> 403 (blocked after rate limiting); waiting %.1f s", op.key, wait)
        self.limiter.block_for(wait)
        self._sleep(wait)

    def _retry_server_error(self, resp: httpx.Response, op: Operation, tries: _Tries) -> None:
        """Back off and retry a 5xx of a safe operation; a write's 5xx is ambiguous and raised."""
        if not tries.safe:
            raise self._error_from(resp, op, AmbiguousWriteError)
        if tries.attempt >= self.max_retries:
            raise self._error_from(resp, op)
        delay = self._backoff(tries.attempt)
        tries.attempt += 1
        tries.ambiguous_before = True
        log.warning("Pipedrive %s -> %d; retry %d/%d in %.1f s", op.key, resp.status_code, tries.attempt,
                    self.max_retries, delay)
        self._sleep(delay)

    def _deleted_by_earlier_attempt(self, method: str, resp: httpx.Response, tries: _Tries) -> bool:
        """A DELETE that finds the record gone after an attempt whose answer was lost: that one did it."""
        return (method == "DELETE" and resp.status_code in (404, 410) and tries.ambiguous_before
                and self._record_gone(resp))

    def _data(self, method: str, api: str, path: str, **kw: Any) -> Any:
        body = self.request(method, self.path(api, path), **kw)
        return body.get("data") if isinstance(body, dict) else body

    def _iter_v2(self, path: str, params: Mapping[str, Any] | None = None,
                 page_limit: int = V2_PAGE_LIMIT) -> Iterator[dict[str, Any]]:
        """Cursor pagination (`limit`, `cursor`, `additional_data.next_cursor`)."""
        q = dict(params or {})
        q.setdefault("limit", page_limit)
        cursor = None
        while True:
            if cursor:
                q["cursor"] = cursor
            body = self.request("GET", self.path("v2", path), params=q)
            yield from body.get("data") or []
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return

    def _iter_v1(self, path: str, params: Mapping[str, Any] | None = None,
                 page_limit: int = V1_PAGE_LIMIT) -> Iterator[dict[str, Any]]:
        """Offset pagination (`start`, `limit`, `additional_data.pagination`)."""
        q = dict(params or {})
        q.setdefault("limit", page_limit)
        start = int(q.pop("start", 0))
        while True:
            q["start"] = start
            body = self.request("GET", self.path("v1", path), params=q)
            items = body.get("data") or []
            yield from items
            pag = (body.get("additional_data") or {}).get("pagination") or {}
            if not pag.get("more_items_in_collection") or not items:
                return
            start = int(pag.get("next_start") or (start + len(items)))

    # -- concurrency -------------------------------------------------------------------------------

    def map_concurrent(self, fn: Callable[[T], Any], items: Iterable[T], *,
                       max_workers: int | None = None, return_exceptions: bool = False) -> list[Any]:
        """fn(item) for every item on a thread pool (up to max_concurrency in flight); results in order.

        The shared RateLimiter keeps the pool under the burst limit. On the first exception (e.g.
        DailyBudgetSpent) the items not started yet are cancelled and the exception is raised, unless
        return_exceptions=True, in which case exceptions are returned in place of results.
        """
        items = list(items)
        workers = max(1, min(max_workers or self.max_concurrency, len(items) or 1))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipedrive")
        try:
            futures = [pool.submit(fn, it) for it in items]
            results: list[Any] = []
            for f in futures:
                try:
                    results.append(f.result())
                except Exception as exc:
                    if not return_exceptions:
                        for other in futures:
                            other.cancel()
                        raise
                    results.append(exc)
            return results
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- generic entity operations -----------------------------------------------------------------

    @staticmethod
    def _validated(models: Mapping[str, type[m.PDModel]], key: str, payload: Any) -> Any:
        model = models.get(key)
        if model is not None and isinstance(payload, Mapping):
            payload = model.model_validate(dict(payload))
        return _payload(payload)

    def _create(self, entity: str, payload: Any) -> Any:
        key = _entity(entity)
        api, path, model = ENTITIES[key]
        data = self._data("POST", api, path, json=self._validated(CREATE_MODELS, key, payload))
        return model.model_validate(data)

    def _get(self, entity: str, id: int, params: Mapping[str, Any] | None = None) -> Any:
        api, path, model = ENTITIES[_entity(entity)]
        return model.model_validate(self._data("GET", api, f"{path}/{int(id)}", params=params))

    def _update(self, entity: str, id: int, payload: Any) -> Any:
        key = _entity(entity)
        api, path, model = ENTITIES[key]
        method = "PATCH" if api == "v2" else "PUT"
        body = self._validated(UPDATE_MODELS, key, payload)
        return model.model_validate(self._data(method, api, f"{path}/{int(id)}", json=body))

    def _delete(self, entity: str, id: int) -> None:
        api, path, _ = ENTITIES[_entity(entity)]
        self._data("DELETE", api, f"{path}/{int(id)}")

    def _list_v2(self, entity: str, *, ids: Iterable[int] | None = None,
                 updated_since: datetime | str | None = None, **filters: Any) -> Iterator[Any]:
        _api, path, model = ENTITIES[_entity(entity)]
        params = dict(filters)
        if updated_since is not None:
            params["updated_since"] = _rfc3339(updated_since)
        if ids is not None:
            id_list = [int(i) for i in ids]
            for chunk in _chunks(id_list, IDS_PER_REQUEST):
                for item in self._iter_v2(path, {**params, "ids": chunk}):
                    yield model.model_validate(item)
            return
        for item in self._iter_v2(path, params):
            yield model.model_validate(item)

    def create(self, entity: str, payload: Any) -> Any:
        """POST one record. Raises AmbiguousWriteError on a 5xx/timeout/dropped connection."""
        return self._create(entity, payload)

    def create_idempotent(
        self,
        entity: str,
        payload: Any,
        find_existing: Callable[[], int | None],
        *,
        max_attempts: int = 5,
        check_first: bool = False,
    ) -> tuple[int, bool]:
        """Create a record without ever duplicating it -> (id, created).

        After an ambiguous failure (5xx, timeout, dropped connection: the write may have been
        committed) `find_existing()` is asked for the record's id (for the migration: an
        itemSearch/field lookup on the `Novo Source ID` custom field) before trying again. `created` is
        True when this call's POST answered with the new record, False when the record was found by
        `find_existing` (either before the first attempt with check_first=True, or after a create
        whose answer was lost). 429s are retried inside `request` (nothing was written).
        """
        key = _entity(entity)
        if check_first:
            found = find_existing()
            if found is not None:
                return int(found), False
        last: AmbiguousWriteError | None = None
        for attempt in range(max_attempts):
            try:
                rec = self._create(key, payload)
                return int(rec.id), True
            except AmbiguousWriteError as exc:
                last = exc
                log.warning("%s; looking the %s up before retrying (attempt %d/%d)", exc, key, attempt + 1,
                            max_attempts)
                found = find_existing()
                if found is not None:
                    log.info("the %s was written despite the error: id %s", key, found)
                    return int(found), False
                self._sleep(self._backoff(attempt))
        assert last is not None
        raise last

    # -- organizations (v2) ------------------------------------------------------------------------

    def create_organization(self, org: m.OrganizationCreate | Mapping[str, Any]) -> m.Organization:
        return self._create("organization", org)

    def get_organization(self, id: int) -> m.Organization:
        return self._get("organization", id)

    def list_organizations(self, *, ids: Iterable[int] | None = None,
                           updated_since: datetime | str | None = None, **filters: Any) -> Iterator[m.Organization]:
        return self._list_v2("organization", ids=ids, updated_since=updated_since, **filters)

    def update_organization(self, id: int, changes: m.OrganizationUpdate | Mapping[str, Any]) -> m.Organization:
        return self._update("organization", id, changes)

    def delete_organization(self, id: int) -> None:
        self._delete("organization", id)

    # -- persons (v2) ------------------------------------------------------------------------------

    def create_person(self, person: m.PersonCreate | Mapping[str, Any]) -> m.Person:
        return self._create("person", person)

    def get_person(self, id: int) -> m.Person:
        return self._get("person", id)

    def list_persons(self, *, ids: Iterable[int] | None = None, updated_since: datetime | str | None = None,
                     **filters: Any) -> Iterator[m.Person]:
        return self._list_v2("person", ids=ids, updated_since=updated_since, **filters)

    def update_person(self, id: int, changes: m.PersonUpdate | Mapping[str, Any]) -> m.Person:
        return self._update("person", id, changes)

    def delete_person(self, id: int) -> None:
        self._delete("person", id)

    # -- deals (v2) --------------------------------------------------------------------------------

    def create_deal(self, deal: m.DealCreate | Mapping[str, Any]) -> m.Deal:
        return self._create("deal", deal)

    def get_deal(self, id: int) -> m.Deal:
        return self._get("deal", id)

    def list_deals(self, *, ids: Iterable[int] | None = None, updated_since: datetime | str | None = None,
                   **filters: Any) -> Iterator[m.Deal]:
        return self._list_v2("deal", ids=ids, updated_since=updated_since, **filters)

    def update_deal(self, id: int, changes: m.DealUpdate | Mapping[str, Any]) -> m.Deal:
        return self._update("deal", id, changes)

    def delete_deal(self, id: int) -> None:
        self._delete("deal", id)

    # -- activities (v2) ---------------------------------------------------------------------------

    def create_activity(self, activity: m.ActivityCreate | Mapping[str, Any]) -> m.Activity:
        return self._create("activity", activity)

    def get_activity(self, id: int) -> m.Activity:
        return self._get("activity", id)

    def list_activities(self, *, ids: Iterable[int] | None = None,
                        updated_since: datetime | str | None = None, **filters: Any) -> Iterator[m.Activity]:
        return self._list_v2("activity", ids=ids, updated_since=updated_since, **filters)

    def update_activity(self, id: int, changes: m.ActivityUpdate | Mapping[str, Any]) -> m.Activity:
        return self._update("activity", id, changes)

    def delete_activity(self, id: int) -> None:
        self._delete("activity", id)

    # -- pipelines & stages (v2) -------------------------------------------------------------------

    def list_pipelines(self) -> list[m.Pipeline]:
        return [m.Pipeline.model_validate(d) for d in self._iter_v2("/pipelines")]

    def create_pipeline(self, pipeline: m.PipelineCreate | Mapping[str, Any]) -> m.Pipeline:
        return self._create("pipeline", pipeline)

    def list_stages(self, pipeline_id: int | None = None) -> list[m.Stage]:
        return [m.Stage.model_validate(d) for d in self._iter_v2("/stages", {"pipeline_id": pipeline_id})]

    def create_stage(self, stage: m.StageCreate | Mapping[str, Any]) -> m.Stage:
        return self._create("stage", stage)

    # -- fields (v2) -------------------------------------------------------------------------------

    @staticmethod
    def _fields_path(entity: str) -> str:
        key = _ENTITY_ALIASES.get(entity, entity)
        if key not in FIELD_ENTITIES:
            raise ValueError(f"no field API for {entity!r}; expected one of {', '.join(FIELD_ENTITIES)}")
        return "/" + FIELD_ENTITIES[key]

    def list_fields(self, entity: str, include_fields: Iterable[str] = ()) -> list[m.FieldDef]:
        """dealFields / personFields / organizationFields / activityFields (all pages); `include_fields`
        adds the metadata namespaces asked for (ui_visibility, important_fields, required_fields)."""
        params = {"include_fields": ",".join(include_fields) or None}
        return [m.FieldDef.model_validate(d) for d in self._iter_v2(self._fields_path(entity), params)]

    def create_field(self, entity: str, field: m.FieldCreate | Mapping[str, Any]) -> m.FieldDef:
        """Create a deal, person or organization custom field (activity fields cannot be created)."""
        if _ENTITY_ALIASES.get(entity, entity) == "activity":
            raise ValueError("Pipedrive has no API to create activity custom fields")
        if isinstance(field, Mapping):
            field = m.FieldCreate.model_validate(dict(field))
        data = self._data("POST", "v2", self._fields_path(entity), json=_payload(field))
        return m.FieldDef.model_validate(data)

    def add_field_options(self, entity: str, field_code: str, labels: Iterable[str]) -> list[m.FieldOption]:
        """Add options to an enum/set field (atomic); returns only the new options."""
        if _ENTITY_ALIASES.get(entity, entity) == "activity":
            raise ValueError("Pipedrive has no API to change activity custom fields")
        body = [{"label": lbl} for lbl in labels]
        if not body:
            return []
        path = f"{self._fields_path(entity)}/{quote(field_code, safe='')}/options"
        data = self._data("POST", "v2", path, json=body)
        return [m.FieldOption.model_validate(o) for o in data or []]

    def list_deal_fields(self) -> list[m.FieldDef]:
        return self.list_fields("deal")

    def list_person_fields(self) -> list[m.FieldDef]:
        return self.list_fields("person")

    def list_organization_fields(self) -> list[m.FieldDef]:
        return self.list_fields("organization")

    def list_activity_fields(self) -> list[m.FieldDef]:
        return self.list_fields("activity")

    # -- search (v2) -------------------------------------------------------------------------------

    def item_search_field(self, term: str, entity_type: str, field: str, *, match: str = "exact",
                          limit: int | None = None) -> list[m.ItemSearchFieldResult]:
        """GET /api/v2/itemSearch/field: items whose `field` matches `term` (all pages)."""
        params = {"term": term, "entity_type": entity_type, "field": field, "match": match}
        page = limit or V2_PAGE_LIMIT
        return [m.ItemSearchFieldResult.model_validate(d) for d in self._iter_v2("/itemSearch/field", params, page)]

    def find_id_by_field(self, entity_type: str, field: str, value: str) -> int | None:
        """The id of the one item whose `field` equals `value` (exact match), or None.

        With several matches (duplicates made outside this client) the lowest id wins, logged.
        """
        hits = sorted({h.id for h in self.item_search_field(str(value), entity_type, field, match="exact")
                       if h.id is not None})
        if len(hits) > 1:
            log.warning("%d %ss share %s=%r (ids %s); using %d", len(hits), entity_type, field, value, hits,
                        hits[0])
        return hits[0] if hits else None

    def finder(self, entity_type: str, field: str, value: str) -> Callable[[], int | None]:
        """A find_existing() for create_idempotent: look the record up by a custom field value."""
        return lambda: self.find_id_by_field(entity_type, field, value)

    # -- notes (v1) --------------------------------------------------------------------------------

    def create_note(self, note: m.NoteCreate | Mapping[str, Any]) -> m.Note:
        """POST /v1/notes; `add_time` ("YYYY-MM-DD HH:MM:SS", UTC) sets the original time (admin token)."""
        return self._create("note", note)

    def get_note(self, id: int) -> m.Note:
        return self._get("note", id)

    def list_notes(self, *, updated_since: datetime | str | None = None, **filters: Any) -> Iterator[m.Note]:
        """GET /v1/notes, filters e.g. deal_id=, org_id=, person_id=."""
        params = dict(filters)
        if updated_since is not None:
            params["updated_since"] = _rfc3339(updated_since)
        for item in self._iter_v1("/notes", params):
            yield m.Note.model_validate(item)

    def update_note(self, id: int, changes: m.NoteUpdate | Mapping[str, Any]) -> m.Note:
        return self._update("note", id, changes)

    def delete_note(self, id: int) -> None:
        self._delete("note", id)

    # -- files (v1) --------------------------------------------------------------------------------

    def upload_file(
        self,
        file: bytes | str | Path | BinaryIO,
        *,
        file_name: str | None = None,
        content_type: str = "application/octet-stream",
        deal_id: int | None = None,
        org_id: int | None = None,
        person_id: int | None = None,
        activity_id: int | None = None,
        find_existing: Callable[[], int | None] | None = None,
    ) -> tuple[m.File | None, int, bool]:
        """POST /v1/files (multipart) -> (file or None if found, id, created).

        Files over Pipedrive's limit (limits.MAX_FILE_BYTES) are refused before sending. After an ambiguous failure the upload is only
        retried when `find_existing` is given and finds nothing; without it, AmbiguousWriteError.
        """
        if isinstance(file, (str, Path)):
            path = Path(file)
            content = path.read_bytes()
            file_name = file_name or path.name
        elif isinstance(file, (bytes, bytearray)):
            content = bytes(file)
        else:
            content = file.read()
            file_name = file_name or Path(getattr(file, "name", "") or "file").name
        if not file_name:
            raise ValueError("file_name is required when uploading bytes")
        if len(content) > MAX_FILE_BYTES:
            raise UserError(
                f"{file_name} is {len(content) / 1048576:.1f} MB; attachments over {file_limit_text()} are not "
                "uploaded (flag it for manual handling)."
            )
        form = {k: str(v) for k, v in (("deal_id", deal_id), ("org_id", org_id), ("person_id", person_id),
                                      ("activity_id", activity_id)) if v is not None}

        def once() -> m.File:
            body = self.request("POST", self.path("v1", "/files"), data=form,
                                files={"file": (file_name, content, content_type)})
            return m.File.model_validate(body.get("data"))

        if find_existing is None:
            rec = once()
            return rec, rec.id, True
        for attempt in range(5):
            try:
                rec = once()
                return rec, rec.id, True
            except AmbiguousWriteError as exc:
                log.warning("%s; looking the file up before retrying", exc)
                found = find_existing()
                if found is not None:
                    return None, int(found), False
                if attempt == 4:
                    raise
                self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")

    def list_files(self, **params: Any) -> Iterator[m.File]:
        for item in self._iter_v1("/files", params):
            yield m.File.model_validate(item)

    def get_file(self, id: int) -> m.File:
        return m.File.model_validate(self._data("GET", "v1", f"/files/{int(id)}"))

    def delete_file(self, id: int) -> None:
        self._data("DELETE", "v1", f"/files/{int(id)}")

    def download_file(self, id: int) -> bytes:
        """GET /v1/files/{id}/download. A redirect to another host is followed without the token."""
        resp = self.request("GET", self.path("v1", f"/files/{int(id)}/download"), raw=True)
        hops = 0
        while resp.is_redirect and hops < 5:
            hops += 1
            target = urljoin(str(resp.url), resp.headers.get("location", ""))
            same_origin = urlsplit(target)[:2] == urlsplit(self.base_url)[:2]
            headers = self._headers() if same_origin else {}
            resp = self._http.get(target, headers=headers)
        if resp.status_code >= 300:
            raise PipedriveError(resp.status_code, resp.reason_phrase, None, "GET /v1/files/{id}/download")
        return resp.content

    # -- activity types (v1) -----------------------------------------------------------------------

    def list_activity_types(self) -> list[m.ActivityType]:
        return [m.ActivityType.model_validate(d) for d in self._data("GET", "v1", "/activityTypes") or []]

    def create_activity_type(self, activity_type: m.ActivityTypeCreate | Mapping[str, Any]) -> m.ActivityType:
        return self._create("activity_type", activity_type)

    # -- organization relationships (v1) -----------------------------------------------------------

    def create_organization_relationship(
        self, rel: m.OrganizationRelationshipCreate | Mapping[str, Any]
    ) -> m.OrganizationRelationship:
        """type "parent": rel_owner_org_id is the parent, rel_linked_org_id the child."""
        return self._create("organization_relationship", rel)

    def list_organization_relationships(self, org_id: int) -> list[m.OrganizationRelationship]:
        data = self._data("GET", "v1", "/organizationRelationships", params={"org_id": int(org_id)})
        return [m.OrganizationRelationship.model_validate(d) for d in data or []]

    def update_organization_relationship(self, id: int, changes: Mapping[str, Any]) -> m.OrganizationRelationship:
        """PUT /v1/organizationRelationships/{id}: e.g. a new parent (`rel_owner_org_id`)."""
        data = self._data("PUT", "v1", f"/organizationRelationships/{int(id)}", json=dict(changes))
        return m.OrganizationRelationship.model_validate(data)

    def delete_organization_relationship(self, id: int) -> None:
        self._delete("organization_relationship", id)

    # -- users (v1) --------------------------------------------------------------------------------

    def list_users(self) -> list[m.User]:
        return [m.User.model_validate(d) for d in self._data("GET", "v1", "/users") or []]

    def me(self) -> m.User:
        return m.User.model_validate(self._data("GET", "v1", "/users/me"))

    def identity(self) -> Any:
        """The account this client talks to (an account.AccountIdentity), probed once per client."""
        if self._identity is None:
            from .account import identify

            self._identity = identify(self)
        return self._identity

    def account(self) -> str:
        """The company this token writes to (its domain): the key of the per-account field registry,
        stable across base-URL spellings and sandbox restarts."""
        return self.identity().key
