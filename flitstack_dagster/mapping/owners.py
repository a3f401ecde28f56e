"""Owner resolution: which Pipedrive user owns each Novo contact's records.

Technicians and requesters are matched to Pipedrive users by email (trimmed, case-insensitive;
inactive users never match). Everyone else gets the configured fallback owner (by email), or the
account's admin user when none is configured. The result is one row per contact, with the owner,
whether it matched or fell back, and why — the scope document prints the unmatched ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.audit import PdUser, _user


class OwnerRow(BaseModel):
    contact_id: str
    name: str = ""
    email: str | None = None
    role: str | None = None
    owner_user_id: int
    owner_email: str | None = None
    owner_name: str = ""
    match: str  # "email" | "fallback"
    reason: str


class OwnerResolution(BaseModel):
    fallback_user_id: int
    fallback_email: str | None = None
    rows: list[OwnerRow] = Field(default_factory=list)

    def owner_of(self, contact_id: str) -> int:
        for r in self.rows:
            if r.contact_id == contact_id:
                return r.owner_user_id
        return self.fallback_user_id

    def by_contact(self) -> dict[str, int]:
        """Contacts resolved by email -> their user. Fallback-owned contacts are left out on purpose, so
        shaping gives them the fallback owner *and* warns `fallback_owner` for their records."""
        return {r.contact_id: r.owner_user_id for r in self.rows if r.match == "email"}

    def matched(self) -> list[OwnerRow]:
        return [r for r in self.rows if r.match == "email"]

    def unmatched(self) -> list[OwnerRow]:
        return [r for r in self.rows if r.match != "email"]

    def to_polars(self) -> pl.DataFrame:
        cols = list(OwnerRow.model_fields)
        return pl.DataFrame([r.model_dump() for r in self.rows], schema={
            c: (pl.Int64 if c == "owner_user_id" else pl.Utf8) for c in cols}, orient="row") if self.rows else \
            pl.DataFrame(schema={c: (pl.Int64 if c == "owner_user_id" else pl.Utf8) for c in cols})


def norm_email(e: Any) -> str | None:
    if e is None:
        return None
    s = str(e).strip().casefold()
    return s or None


def _contacts_frame(contacts: Any, run_key: str | None) -> pl.DataFrame:
    if isinstance(contacts, pl.DataFrame):
        return contacts
    # a DuckDB connection: staged contacts of the run
    cols = {r[0] for r in contacts.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='staging' AND table_name='stg_contacts'"
    ).fetchall()}
    if not cols:
        return pl.DataFrame(schema={"contact_id": pl.Utf8, "first_name": pl.Utf8, "last_name": pl.Utf8,
                                    "email": pl.Utf8, "role": pl.Utf8})
    sel = ", ".join(c if c in cols else f"NULL AS {c}" for c in ("contact_id", "first_name", "last_name", "email",
                                                                   "role"))
    rows = contacts.execute(f"SELECT {sel} FROM staging.stg_contacts WHERE _run_key = ? ORDER BY contact_id",
                            [run_key]).fetchall()
    return pl.DataFrame(rows, schema=["contact_id", "first_name", "last_name", "email", "role"], orient="row")


def resolve_owners(contacts: Any, run_key: str | None, users: Iterable[Any],
                   fallback_email: str | None = None) -> OwnerResolution:
    """contacts: a Polars frame (contact_id, first_name, last_name, email, role) or a DuckDB connection
    (reads staging.stg_contacts of `run_key`); users: PdUser / client User models / dicts."""
    us = [u if isinstance(u, PdUser) else _user(u) for u in users]
    active = sorted((u for u in us if u.active), key=lambda u: u.id)
    by_email: dict[str, PdUser] = {}
    for u in active:
        e = norm_email(u.email)
        if e and e not in by_email:
            by_email[e] = u
    inactive = {norm_email(u.email): u for u in us if not u.active and norm_email(u.email)}
    if fallback_email:
        fb = by_email.get(norm_email(fallback_email) or "")
        if fb is None:
            raise UserError(f"the fallback owner {fallback_email!r} is not an active Pipedrive user; "
                            f"active users: {', '.join(sorted(filter(None, (u.email for u in active)))) or 'none'}")
        fb_why = f"fallback owner {fb.email} (configured)"
    else:
        admins = [u for u in active if u.is_admin]
        fb = admins[0] if admins else (active[0] if active else None)
        if fb is None:
            raise UserError("the Pipedrive account has no active user to own the migrated records")
        fb_why = f"fallback owner {fb.email} ({'account admin' if admins else 'first active user'})"
    res = OwnerResolution(fallback_user_id=fb.id, fallback_email=fb.email)
    df = _contacts_frame(contacts, run_key)
    for r in df.iter_rows(named=True):
        cid = r.get("contact_id")
        if cid is None:
            continue
        name = " ".join(str(x).strip() for x in (r.get("first_name"), r.get("last_name")) if x and str(x).strip())
        email = norm_email(r.get("email"))
        u = by_email.get(email) if email else None
        if u is not None:
            row = OwnerRow(contact_id=str(cid), name=name, email=email, role=r.get("role"), owner_user_id=u.id,
                           owner_email=u.email, owner_name=u.name, match="email", reason=f"email matches user {u.name}")
        else:
            if not email:
                why = "no email"
            elif email in inactive:
                why = f"user {email} is inactive"
            else:
                why = f"no Pipedrive user with email {email}"
            row = OwnerRow(contact_id=str(cid), name=name, email=email, role=r.get("role"), owner_user_id=fb.id,
                           owner_email=fb.email, owner_name=fb.name, match="fallback", reason=f"{why}; {fb_why}")
        res.rows.append(row)
    res.rows.sort(key=lambda r: r.contact_id)
    return res


__all__ = ["OwnerResolution", "OwnerRow", "norm_email", "resolve_owners"]
