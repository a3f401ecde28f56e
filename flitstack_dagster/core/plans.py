"""Pipedrive's subscription plans: one declaration the settings, the rate limiter and the scope read.

Daily token budget = 30,000 × the plan's multiplier × seats, shared by every integration of the company.
Burst limit = requests per rolling 2 s per API token. Pipedrive renamed its plans: accounts still on an
older plan keep its name, so PIPEDRIVE_PLAN takes the older names too. An older plan whose budget and
burst limit equal a current plan's is an alias of it; Professional matches none (90,000 tokens × seats
and 80 requests / 2 s), so it is a plan of its own rather than counted as Premium's larger budget.
"""

from __future__ import annotations

from dataclasses import dataclass

DAILY_BASE_TOKENS = 30_000


@dataclass(frozen=True)
class PipedrivePlan:
    name: str  # as PIPEDRIVE_PLAN takes it
    multiplier: int  # of the daily token budget per seat
    burst: int  # requests per 2 s per API token
    field_cap: int  # custom fields per company
    older_names: tuple[str, ...] = ()  # names of the same limits on Pipedrive's older plans
    current: bool = True  # still sold (False: only accounts that kept it)

    @property
    def label(self) -> str:
        """The name people recognise, with its older name: `premium (power)`."""
        if not self.current:
            return f"{self.name} (older plan)"
        return f"{self.name} ({', '.join(self.older_names)})" if self.older_names else self.name

    def daily_budget(self, seats: int) -> int:
        return DAILY_BASE_TOKENS * self.multiplier * max(1, int(seats))


# Ordered by budget. Field caps of the older Power/Enterprise plans are larger (500 / unlimited): the
# current plan's smaller cap is the one provisioning can rely on.
PLAN_TABLE: tuple[PipedrivePlan, ...] = (
    PipedrivePlan("lite", 1, 20, 30, ("essential",)),
    PipedrivePlan("growth", 2, 40, 100, ("advanced",)),
    PipedrivePlan("professional", 3, 80, 300, current=False),
    PipedrivePlan("premium", 5, 100, 300, ("power",)),
    PipedrivePlan("ultimate", 7, 120, 500, ("enterprise",)),
)

PLANS: tuple[str, ...] = tuple(p.name for p in PLAN_TABLE)
_BY_NAME: dict[str, PipedrivePlan] = {n: p for p in PLAN_TABLE for n in (p.name, *p.older_names)}
PLAN_NAMES: tuple[str, ...] = tuple(_BY_NAME)  # every name PIPEDRIVE_PLAN accepts


def find_plan(name: str | None) -> PipedrivePlan | None:
    """The plan a name (current or older, any case, spaces around) stands for; None when unknown."""
    return _BY_NAME.get((name or "").strip().lower())


def plan_in(text: str | None) -> PipedrivePlan | None:
    """The plan named inside a longer label (`Growth (monthly)`, `ultimate_yearly`); None when none is."""
    t = (text or "").strip().lower()
    return next((p for n, p in _BY_NAME.items() if n in t), None)


def plans_form() -> str:
    """What PIPEDRIVE_PLAN must be, for messages."""
    older = [n for p in PLAN_TABLE for n in p.older_names] + [p.name for p in PLAN_TABLE if not p.current]
    current = [p.name for p in PLAN_TABLE if p.current]
    return f"one of {', '.join(current)} (or an older plan's name: {', '.join(older)})"
