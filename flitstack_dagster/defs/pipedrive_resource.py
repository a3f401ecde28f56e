"""The Pipedrive destination as a Dagster resource: base URL and token from the environment.

`EnvVar` keeps the token out of the UI; the client keeps it out of logs, errors and metadata.
One rate limiter per Dagster run: every step of the run (the in-process executor runs them in one
process) spends from the same daily-token count and the same 2-second window, so a step that starts
after a budget stop refuses its first request instead of spending into the reserve, and a step that
starts right after another does not ramp up as if the server's window were empty.
"""

import os
from typing import Optional

import dagster as dg
from pydantic import PrivateAttr

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.ratelimit import RateLimiter


class PipedriveResource(dg.ConfigurableResource):
    """One Pipedrive company account (the local sandbox by default)."""

    base_url: str
    api_token: str
    plan: str = "growth"
    seats: int = 5
    daily_reserve_fraction: float = 0.2  # left untouched for the customer's other integrations

    _limiter: Optional[RateLimiter] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._limiter = self.new_limiter()

    def new_limiter(self) -> RateLimiter:
        """The run's limiter: token budget and burst window, paced as the client's own would be."""
        return RateLimiter(self.plan, self.seats, daily_reserve_fraction=self.daily_reserve_fraction, pace=True)

    @property
    def limiter(self) -> Optional[RateLimiter]:
        """The limiter shared by this run's clients (None outside a run: each client makes its own)."""
        return self._limiter

    def client(self) -> PipedriveClient:
        return PipedriveClient(
            self.base_url, self.api_token, plan=self.plan, seats=self.seats,
            daily_reserve_fraction=self.daily_reserve_fraction, limiter=self._limiter,
        )


def pipedrive_from_env() -> PipedriveResource:
    """URL and token stay EnvVars (never shown in the UI); plan and seats size the rate limiter."""
    return PipedriveResource(
        base_url=dg.EnvVar("PIPEDRIVE_BASE_URL"),
        api_token=dg.EnvVar("PIPEDRIVE_API_TOKEN"),
        plan=os.environ.get("PIPEDRIVE_PLAN", "growth"),
        seats=int(os.environ.get("PIPEDRIVE_SEATS", "5")),
    )
