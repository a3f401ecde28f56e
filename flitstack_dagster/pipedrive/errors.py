"""Errors raised by the Pipedrive client. None of them ever carries the API token."""

from __future__ import annotations

from datetime import UTC, datetime

from flitstack_dagster.core.errors import UserError


class PipedriveError(Exception):
    """Pipedrive answered with an error (or could not be reached) for one operation.

    `status` is the HTTP status (None when no answer came back), `error` / `error_info` the
    `error` and `error_info` of Pipedrive's error body, `operation` e.g. "POST /api/v2/deals".
    """

    def __init__(
        self,
        status: int | None,
        error: str | None = None,
        error_info: str | None = None,
        operation: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.error_info = error_info
        self.operation = operation
        self.message = message or self._compose()
        super().__init__(self.message)

    def _compose(self) -> str:
        what = f"Pipedrive {self.operation}" if self.operation else "Pipedrive request"
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        text = f"{what} failed ({status})"
        if self.error:
            text += f": {self.error}"
        if self.error_info and self.error_info != self.error:
            text += f" ({self.error_info})"
        return text

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, operation={self.operation!r}, error={self.error!r})"


class NotFound(PipedriveError):
    """404: the record does not exist (or was deleted)."""


class RateLimited(PipedriveError):
    """The burst limit (429) or the 403 block that follows it persisted through every retry."""

    def __init__(self, *args, retry_after: float | None = None, **kwargs) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class AmbiguousWriteError(PipedriveError):
    """A write got a 5xx, timed out, or lost its connection: it may or may not have been committed.

    Never retried blindly; `PipedriveClient.create_idempotent` looks the record up before retrying.
    """


class DailyBudgetSpent(UserError):
    """The company's daily token budget (minus the reserve kept for other integrations) is spent."""

    def __init__(
        self,
        *,
        spent: int,
        budget: int | None,
        reserve: int,
        resets_at: datetime | None,
        now: datetime | None = None,
        source: str = "client",
        operation: str | None = None,
        company_tokens_left: int | None = None,
    ) -> None:
        self.spent = spent
        self.budget = budget
        self.reserve = reserve
        self.resets_at = resets_at
        self.source = source
        self.operation = operation
        self.company_tokens_left = company_tokens_left
        super().__init__(self._compose(now))

    def _compose(self, now: datetime | None) -> str:
        if self.source == "server":
            head = (
                "Pipedrive refused the request: the company's daily API token budget is spent "
                "(HTTP 429; the budget is shared by every integration on this Pipedrive company)."
            )
        elif self.reserve > 0:
            head = "Stopped before spending into the reserved part of Pipedrive's daily API token budget."
        else:
            head = "Stopped: Pipedrive's daily API token budget is spent (the next request would go over it)."
        detail = f" This client spent {self.spent:,} tokens today"
        if self.budget is not None:
            detail += f" of a daily budget of {self.budget:,}"
        detail += f"; reserve kept for other integrations: {self.reserve:,} tokens"
        if self.company_tokens_left is not None:
            detail += f"; tokens left for the whole company: {self.company_tokens_left:,}"
        detail += "."
        when = ""
        if self.resets_at is not None:
            when = f" The budget resets at {self.resets_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if now is not None:
                secs = max(0, int((self.resets_at - now).total_seconds()))
                when += f" (in {secs // 3600} h {secs % 3600 // 60} min)"
            when += "."
        advice = " Run the load again after the reset; it resumes where it stopped."
        return head + detail + when + advice


class TokenRefused(PipedriveError, UserError):
    """401 from Pipedrive: the token is wrong, revoked or for no company. Names the host, never the token."""

    def __init__(self, host: str, operation: str | None = None) -> None:
        self.host = host
        super().__init__(
            401, "unauthorized access", None, operation,
            message=f"Pipedrive at {host} refused the API token: fix PIPEDRIVE_API_TOKEN and run the same command again.",
        )


class NotPipedriveApi(UserError):
    """The base URL answers, but not as Pipedrive's API root (HTML, a route 404, a redirect, no envelope)."""

    def __init__(self, url: str, why: str) -> None:
        self.url = url
        super().__init__(
            f"{url} is not a Pipedrive API: {why}; set PIPEDRIVE_BASE_URL to https://<company>.pipedrive.com"
        )


def is_envelope(body: object) -> bool:
    """Pipedrive's answer shape: a JSON object with a boolean `success`."""
    return isinstance(body, dict) and isinstance(body.get("success"), bool)


def is_entity_not_found(body: object) -> bool:
    """Pipedrive's 404 for a record that is not there, as opposed to its answer for an unknown route."""
    if not is_envelope(body) or body.get("success") is not False:  # type: ignore[union-attr]
        return False
    error = str(body.get("error") or "").strip().lower()  # type: ignore[union-attr]
    return bool(error) and not error.startswith("unknown method")
