"""Which Pipedrive account a client talks to, from `GET /v1/users/me`, and whether the base URL is
Pipedrive's API root at all.

`identify(client)` is the probe every writing step (and `flitstack doctor`) starts with: a base URL
that answers with HTML, a redirect, a route 404 or JSON without Pipedrive's envelope is refused as
NotPipedriveApi before anything is sent that could change data; a 401 is TokenRefused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.settings import url_host

from .errors import NotPipedriveApi, PipedriveError, TokenRefused, is_envelope

if TYPE_CHECKING:
    from .client import PipedriveClient

__all__ = ["AccountIdentity", "NotPipedriveApi", "TokenRefused", "WrongAccount", "identify", "safe_url"]

PROBE = "/users/me"


@dataclass(frozen=True)
class AccountIdentity:
    """One Pipedrive company as seen through one API user."""

    company_id: int
    company_domain: str
    company_name: str | None = None
    user_id: int | None = None
    user_email: str | None = None
    user_name: str | None = None
    host: str = ""  # the base URL host it was seen through

    @property
    def key(self) -> str:
        """The company's stable name (its domain): the key of the per-account registries."""
        return self.company_domain or str(self.company_id)

    @property
    def label(self) -> str:
        """How a person recognises the account: `acme-prod (id 123)`."""
        return f"{self.key} (id {self.company_id})"

    def same_company(self, other: AccountIdentity) -> bool:
        return self.company_id == other.company_id


class WrongAccount(UserError):
    """PIPEDRIVE_BASE_URL/TOKEN point at another company than the one a run wrote to."""

    def __init__(self, run_key: str, expected: AccountIdentity, actual: AccountIdentity,
                 builder: str | None = None) -> None:
        self.run_key, self.expected, self.actual = run_key, expected, actual
        if builder is None:
            text = (f"run {run_key} loaded into Pipedrive company {expected.label} but PIPEDRIVE_BASE_URL/TOKEN now "
                    f"point at {actual.label}; point them back at {expected.key}, or register a new run")
        else:  # a new run would build on records that live in the other company
            text = (f"run {run_key} loaded into Pipedrive company {expected.label} and {builder} builds on its "
                    f"records, but PIPEDRIVE_BASE_URL/TOKEN now point at {actual.label}; point them back at "
                    f"{expected.key}, or roll back {run_key} first")
        super().__init__(text)


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment (a token pasted into it is never echoed)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, url_host(url), parts.path, "", ""))


def identify(client: PipedriveClient) -> AccountIdentity:
    """The company and API user behind the client's base URL and token (one `GET /v1/users/me`, 2 tokens).

    Raises NotPipedriveApi when the answer is not Pipedrive's, TokenRefused on a 401, PipedriveError
    when Pipedrive itself answers with another error or cannot be reached.
    """
    path = client.path("v1", PROBE)
    url = safe_url(client.base_url)
    resp = client.request("GET", path, answer=True)
    status = resp.status_code
    if 300 <= status < 400:
        target = safe_url(urljoin(str(resp.url), resp.headers.get("location", "")))
        raise NotPipedriveApi(url, f"{path} redirects (HTTP {status}) to {target}")
    try:
        body = resp.json()
    except ValueError:
        kind = resp.headers.get("content-type", "").split(";")[0].strip() or "no content type"
        raise NotPipedriveApi(url, f"{path} answers HTTP {status} with {kind}, not Pipedrive's JSON") from None
    if not is_envelope(body):
        raise NotPipedriveApi(
            url, f"{path} answers HTTP {status} with JSON that is not Pipedrive's success/data envelope")
    if status == 401:
        raise TokenRefused(client.host, f"GET {path}")
    if status == 404:
        raise NotPipedriveApi(url, f"{path} does not exist there (HTTP 404)")
    if status >= 400 or not body["success"]:
        raise PipedriveError(status, str(body.get("error") or "error"), _text(body.get("error_info")), f"GET {path}")
    return _identity(url, client.host, path, body.get("data"))


def _identity(url: str, host: str, path: str, data: Any) -> AccountIdentity:
    if not isinstance(data, dict) or not isinstance(data.get("company_id"), int):
        raise NotPipedriveApi(url, f"{path} names no company (no company_id in its data)")
    user_id = data.get("id")
    return AccountIdentity(
        company_id=int(data["company_id"]), company_domain=str(data.get("company_domain") or ""),
        company_name=_text(data.get("company_name")), user_id=user_id if isinstance(user_id, int) else None,
        user_email=_text(data.get("email")), user_name=_text(data.get("name")), host=host,
    )


def _text(v: Any) -> str | None:
    return None if v is None else str(v)
