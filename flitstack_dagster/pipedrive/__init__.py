"""Pipedrive client: typed, rate-limited, retrying; the same code for the sandbox and real Pipedrive."""

from .client import PipedriveClient
from .costs import CostTable, Operation, default_cost_table
from .errors import AmbiguousWriteError, DailyBudgetSpent, NotFound, PipedriveError, RateLimited
from .ratelimit import RateLimiter, daily_budget

__all__ = [
    "AmbiguousWriteError",
    "CostTable",
    "DailyBudgetSpent",
    "NotFound",
    "Operation",
    "PipedriveClient",
    "PipedriveError",
    "RateLimited",
    "RateLimiter",
    "daily_budget",
    "default_cost_table",
]
