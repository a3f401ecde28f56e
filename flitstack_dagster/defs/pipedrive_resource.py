"""The Pipedrive destination as a Dagster resource: base URL and token from the environment.

`EnvVar` keeps the token out of the UI; the client keeps it out of logs, errors and metadata.
"""

import os

import dagster as dg

from flitstack_dagster.pipedrive.client import PipedriveClient


class PipedriveResource(dg.ConfigurableResource):
    """One Pipedrive company account (the local sandbox by default)."""

    base_url: str
    api_token: str
    plan: str = "growth"
    seats: int = 5
    daily_reserve_fraction: float = 0.2  # left untouched for the customer's other integrations

    def client(self) -> PipedriveClient:
        return PipedriveClient(
            self.base_url, self.api_token, plan=self.plan, seats=self.seats,
            daily_reserve_fraction=self.daily_reserve_fraction,
        )


def pipedrive_from_env() -> PipedriveResource:
    """URL and token stay EnvVars (never shown in the UI); plan and seats size the rate limiter."""
    return PipedriveResource(
        base_url=dg.EnvVar("PIPEDRIVE_BASE_URL"),
        api_token=dg.EnvVar("PIPEDRIVE_API_TOKEN"),
        plan=os.environ.get("PIPEDRIVE_PLAN", "growth"),
        seats=int(os.environ.get("PIPEDRIVE_SEATS", "5")),
    )
