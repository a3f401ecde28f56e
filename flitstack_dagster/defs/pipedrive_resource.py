"""The Pipedrive destination as a Dagster resource: the account the PIPEDRIVE_* settings name.

A field left unset comes from its environment variable, checked by flitstack_dagster.core.settings when a
step asks for its client. `EnvVar` keeps the URL and token out of the UI; the client keeps the token
out of logs, errors and metadata. A problem with the settings or the account (bad value, refused
token, unreachable host, wrong account) fails the step with a `dg.Failure` whose description is the
sentence saying what to fix, not a stack trace.

One rate limiter per Dagster run: every step of the run (the in-process executor runs them in one
process) spends from the same daily-token count and the same 2-second window, so a step that starts
after a budget stop refuses its first request instead of spending into the reserve, and a step that
starts right after another does not ramp up as if the server's window were empty.
"""

from typing import Optional

import dagster as dg
from pydantic import PrivateAttr

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent
from flitstack_dagster.pipedrive.problems import human_message
from flitstack_dagster.pipedrive.ratelimit import RateLimiter
from flitstack_dagster.core.settings import PipedriveSettings, pipedrive_settings, raw


class PipedriveResource(dg.ConfigurableResource):
    """One Pipedrive company account (None: from PIPEDRIVE_BASE_URL, _API_TOKEN, _PLAN, _SEATS, _DAILY_RESERVE)."""

    base_url: Optional[str] = None
    api_token: Optional[str] = None
    plan: Optional[str] = None
    seats: Optional[int] = None
    daily_reserve_fraction: Optional[float] = None  # left untouched for the customer's other integrations

    _limiter: Optional[RateLimiter] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        try:
            self._limiter = self.new_limiter()
        except UserError:
            pass  # bad settings: client() fails the step that needs them, with the sentence

    def settings(self) -> PipedriveSettings:
        """This resource's account, checked; raises a SettingError naming each bad variable."""
        return pipedrive_settings(base_url=self.base_url, api_token=self.api_token, plan=self.plan,
                                  seats=self.seats, daily_reserve=self.daily_reserve_fraction)

    def new_limiter(self) -> RateLimiter:
        """The run's limiter: token budget and burst window, paced as the client's own would be."""
        s = self.settings()
        return RateLimiter(s.plan, s.seats, daily_reserve_fraction=s.daily_reserve, pace=True)

    @property
    def limiter(self) -> Optional[RateLimiter]:
        """The limiter shared by this run's clients (None outside a run: each client makes its own)."""
        return self._limiter

    def client(self) -> PipedriveClient:
        """The step's client. Use it as a context manager: an account problem ending the block
        becomes the step's Failure (see StepClient)."""
        try:
            s = self.settings()
        except UserError as e:
            raise dg.Failure(description=str(e), allow_retries=False) from None
        return StepClient(s.base_url, s.api_token, plan=s.plan, seats=s.seats,
                          daily_reserve_fraction=s.daily_reserve, limiter=self._limiter)


class StepClient(PipedriveClient):
    """A step's Pipedrive client: an account problem that ends its `with` block (refused token,
    unreachable host, a UserError such as a wrong account) becomes a `dg.Failure` with the sentence."""

    def __exit__(self, exc_type, exc, tb) -> None:
        super().__exit__(exc_type, exc, tb)
        # a budget stop stays as it is: the budget-reset sensor would take its Failure for a load's stop
        if exc is None or isinstance(exc, (dg.Failure, DailyBudgetSpent)):
            return
        sentence = human_message(exc, self.host)
        if sentence is not None:
            raise dg.Failure(description=sentence, allow_retries=False) from None


def pipedrive_from_env() -> PipedriveResource:
    """URL and token as EnvVars (never shown in the UI) when they are set; everything else, and any
    variable unset when the code location loads, is read and checked when a step needs it."""
    return PipedriveResource(**{field: dg.EnvVar(name) for field, name in
                                (("base_url", "PIPEDRIVE_BASE_URL"), ("api_token", "PIPEDRIVE_API_TOKEN"))
                                if raw(name) is not None})
