"""What a failure means for the person running the migration, in one or two sentences.

Shared by the CLI (printed as "error: ...") and the Dagster resource (a step's Failure description):
a refused token names the host that refused it, an unreachable host says what to check, a UserError
(bad settings, wrong account, spent budget) is already such a sentence. Anything else is None: a bug,
or a Pipedrive answer the caller reports as it is.
"""

from __future__ import annotations

import httpx

from flitstack_dagster.core.errors import UserError

from .errors import PipedriveError

# the client reports a request that never reached the server with the transport error's name first
_NEVER_CONNECTED = ("ConnectError", "ConnectTimeout")


def token_refused(host: str | None) -> str:
    return (f"{host or 'Pipedrive'} refused the API token (HTTP 401): check PIPEDRIVE_API_TOKEN (Pipedrive: "
            "Personal preferences > API) and that PIPEDRIVE_BASE_URL is the account the token belongs to")


def unreachable(host: str | None) -> str:
    return f"could not reach {host or 'Pipedrive'}: check PIPEDRIVE_BASE_URL and your network"


def no_answer(host: str | None) -> str:
    return (f"{host or 'Pipedrive'} did not answer (timeouts or dropped connections, retried): check your "
            "network, then run the same command again to resume")


def human_message(exc: BaseException, host: str | None) -> str | None:
    """The sentence for a problem a person can fix, or None for anything else."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return unreachable(host)
    if not isinstance(exc, PipedriveError):
        return None
    if exc.status == 401:
        return token_refused(host)
    if exc.status is None:
        return unreachable(host) if (exc.error_info or "").startswith(_NEVER_CONNECTED) else no_answer(host)
    return None
