"""The migration calendar: how many days of Pipedrive's daily token budget a bundle needs.

For each record plan (how the bundle's records are shaped, hence its tokens) × each Pipedrive plan, at
the account's seats and with the reserve kept for the company's other integrations:

    usable a day = daily budget − reserve,  daily budget = 30,000 × plan multiplier × seats
    days         = ceil(tokens / usable a day)   (Pipedrive refills the budget once a day)

and what adding seats for the migration window would save. Pure arithmetic: the token estimates come
from the scope (mapping/scope.py), the plans from core/plans.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flitstack_dagster.core.plans import PLAN_TABLE, PipedrivePlan, find_plan

SEAT_STEPS = (5, 10)  # extra seats a company might add for the migration window
ON_PLAN = "← this account"


def usable_daily(plan: PipedrivePlan, seats: int, reserve: float) -> int:
    """Tokens a day the migration may spend: the budget less the reserve, rounded as the rate limiter does."""
    budget = plan.daily_budget(seats)
    return budget - round(budget * reserve)


def days_exact(tokens: int, plan: PipedrivePlan, seats: int, reserve: float) -> float:
    return tokens / usable_daily(plan, seats, reserve)


def days_needed(tokens: int, plan: PipedrivePlan, seats: int, reserve: float) -> int:
    """Whole days: a started day is a day, since the budget refills only at the next reset."""
    return -(-tokens // usable_daily(plan, seats, reserve))


@dataclass(frozen=True)
class CalendarRow:
    record_plan: str
    plan: PipedrivePlan
    seats: int
    reserve: float
    tokens: int
    on_plan: bool  # the plan the account is on

    @property
    def daily_budget(self) -> int:
        return self.plan.daily_budget(self.seats)

    @property
    def usable_daily(self) -> int:
        return usable_daily(self.plan, self.seats, self.reserve)

    @property
    def days(self) -> int:
        return days_needed(self.tokens, self.plan, self.seats, self.reserve)

    @property
    def days_exact(self) -> float:
        return days_exact(self.tokens, self.plan, self.seats, self.reserve)

    def days_with(self, extra_seats: int) -> int:
        return days_needed(self.tokens, self.plan, self.seats + extra_seats, self.reserve)


@dataclass(frozen=True)
class Calendar:
    rows: list[CalendarRow]
    plan: str | None  # the account's plan (current name), None when unknown
    seats: int
    reserve: float
    seat_steps: tuple[int, ...] = field(default=SEAT_STEPS)

    def row(self, record_plan: str, plan: str) -> CalendarRow:
        return next(r for r in self.rows if r.record_plan == record_plan and r.plan.name == plan)


def migration_calendar(tokens: dict[str, int], seats: int, reserve: float, plan: str | None = None,
                       seat_steps: tuple[int, ...] = SEAT_STEPS) -> Calendar:
    """Every record plan (`tokens`: its estimate for the bundle) × every Pipedrive plan at `seats`."""
    on = find_plan(plan)
    rows = [CalendarRow(rp, p, seats, reserve, n, on is not None and p.name == on.name)
            for rp, n in tokens.items() for p in PLAN_TABLE]
    return Calendar(rows, on.name if on else None, seats, reserve, seat_steps)


def calendar_table(cal: Calendar) -> tuple[list[str], list[list[object]]]:
    """(headers, rows) of the calendar, the same for the scope document and the terminal."""
    headers = ["record plan", "Pipedrive plan", "daily budget", f"usable a day ({cal.reserve:.0%} reserve)",
               "tokens", "days", "days (exact)", *(f"+{n} seats" for n in cal.seat_steps), "account"]
    rows = [[r.record_plan, r.plan.label, f"{r.daily_budget:,}", f"{r.usable_daily:,}", f"{r.tokens:,}",
             r.days, f"{r.days_exact:.2f}", *(_with_seats(r, n) for n in cal.seat_steps),
             ON_PLAN if r.on_plan else ""]
            for r in cal.rows]
    return headers, rows


def _with_seats(row: CalendarRow, extra: int) -> str:
    days = row.days_with(extra)
    saved = row.days - days
    return f"{days} (saves {saved} day{'s' if saved != 1 else ''})" if saved else f"{days} (saves none)"


def calendar_summary(cal: Calendar) -> str:
    """One line: whose seats and plan the table is for."""
    on = f"on {find_plan(cal.plan).label}" if cal.plan else "plan unknown"
    return (f"{cal.seats} seat{'s' if cal.seats != 1 else ''}, {on}; a {cal.reserve:.0%} reserve of each "
            f"day's budget is left for the company's other integrations")


__all__ = ["Calendar", "CalendarRow", "SEAT_STEPS", "calendar_summary", "calendar_table", "days_exact",
           "days_needed", "migration_calendar", "usable_daily"]
