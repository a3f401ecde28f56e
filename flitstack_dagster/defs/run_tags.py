"""Which Pipedrive account a run writes to, as a run tag: the production run queue lets one run per
account go at a time (two migrations never share an account's token budget blindly).

Plain Python, no Dagster: the `migrate` job takes `account_run_tags()` as its tags, and
`deploy/dagster.yaml` limits `flitstack/pipedrive_account` to one run per value.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from flitstack_dagster.core.settings import raw

ACCOUNT_TAG = "flitstack/pipedrive_account"


def pipedrive_account(base_url: str) -> str:
    """The account a base URL points at: its host (and port, when not the scheme's default).

    `https://Springfield.pipedrive.com/` -> `springfield.pipedrive.com`; the local sandbox
    `http://127.0.0.1:8765` -> `127.0.0.1_8765` (Pipedrive's budget is per company, and a company is
    its domain). The token is never part of it.
    """
    raw = (base_url or "").strip()
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("PIPEDRIVE_BASE_URL has no host (expected e.g. https://yourcompany.pipedrive.com)")
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port
    return host if port in (None, default_port) else f"{host}_{port}"


def account_run_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{ACCOUNT_TAG: account}` from PIPEDRIVE_BASE_URL, or {} where it is not set (tests, `dagster dev`
    without a destination) or has no host: the code location still loads, such runs are simply not
    limited, and a bad URL fails the run's first Pipedrive step with the sentence saying what to fix."""
    url = raw("PIPEDRIVE_BASE_URL", environ)
    try:
        return {ACCOUNT_TAG: pipedrive_account(url)} if url else {}
    except ValueError:
        return {}


__all__ = ["ACCOUNT_TAG", "account_run_tags", "pipedrive_account"]
