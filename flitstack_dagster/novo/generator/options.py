"""What `flitstack generate` was asked for, and the entity counts that follow from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flitstack_dagster.core.errors import UserError

DEFAULT_EXPORTED_AT = "2026-11-20T07:00:00Z"
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252")
DATE_ORDERS = ("MDY", "DMY")


@dataclass(frozen=True)
class GenOptions:
    out: Path
    work_orders: int = 2000
    seed: int = 7
    tenant: str = "City of Springfield"
    exported_at: str | None = None  # None: the default (full) or base + 7 days (delta)
    timezone: str = "America/Chicago"
    encoding: str = "utf-8"
    date_order: str = "MDY"
    mess: float = 0.0
    large_attachments: bool = False
    mess_log: bool = True
    zip: bool = False
    delta_from: Path | None = None
    delta_share: float | None = None  # with delta_from: the share of work orders changed or new (None: 7%)
    force: bool = False

    def validate(self) -> None:
        if self.work_orders < 0:
            raise UserError("--work-orders must be 0 or more")
        if not 0.0 <= self.mess <= 1.0:
            raise UserError(f"--mess must be between 0 and 1, found {self.mess}")
        if self.encoding not in ENCODINGS:
            raise UserError(f"--encoding must be one of {', '.join(ENCODINGS)}")
        if self.date_order not in DATE_ORDERS:
            raise UserError("--date-order must be MDY or DMY")
        if self.exported_at is not None:
            parse_instant(self.exported_at)

    @property
    def counts(self) -> Counts:
        return Counts.for_work_orders(self.work_orders)


@dataclass(frozen=True)
class Counts:
    work_orders: int
    assets: int
    contacts: int
    pm_schedules: int
    accounts: int
    inventory: int

    @classmethod
    def for_work_orders(cls, n: int) -> Counts:
        return cls(
            work_orders=n,
            assets=max(30, n // 20),
            contacts=max(25, n // 200),
            pm_schedules=max(10, n // 500),
            accounts=max(10, n // 100),
            inventory=max(20, n // 50),
        )


def parse_instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"not an ISO 8601 instant: {text!r} (e.g. 2026-11-20T07:00:00Z)") from None
    if value.tzinfo is None:
        raise UserError(f"an instant needs an offset or Z: {text!r}")
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_id(tenant: str, exported_at: datetime) -> str:
    """`City of Springfield` + 2026-11-20T07:00:00Z -> `springfield-20261120T070000Z`."""
    name = re.sub(r"^(city|town|village|county|borough|township)\s+of\s+", "", tenant.strip(), flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "tenant"
    return f"{slug}-{exported_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
