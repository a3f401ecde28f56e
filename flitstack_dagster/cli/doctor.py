"""`flitstack doctor`: check the settings, then the Pipedrive account they name, one line per check.

Settings first (every PIPEDRIVE_* and FLITSTACK_* value, see core/settings.py), then against the account:
reachable, token accepted, which company and API user (GET /v1/users/me), plan and seats (Pipedrive's
API reports neither: the plan is compared with the burst limit it reports, the seats with the active
users), the daily budget left (the documented x-daily-requests-left header), custom-field headroom
against the plan's cap, and whether earlier runs in the data folder loaded into another company.
Exit 0 only when every check passes. It spends a few dozen API tokens and writes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.settings import PipedriveSettings, SettingError, data_paths, pipedrive_settings

FIELD_ENTITIES = ("deal", "person", "organization", "activity")  # every custom field counts towards the cap


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.name}: {self.detail}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each answer (default 15)")


def run(args: argparse.Namespace) -> int:
    passed = True
    for check in diagnose(timeout=args.timeout):
        print(check.line(), flush=True)
        passed = passed and check.ok
    print("all checks passed" if passed
          else "some checks failed: fix the FAIL lines above, then run flitstack doctor again")
    return 0 if passed else 1


def diagnose(timeout: float = 15.0) -> Iterator[Check]:
    """The checks in order; a failed prerequisite (settings, reachable, token) ends the list."""
    settings = yield from _settings()
    if settings is None:
        return
    from flitstack_dagster.pipedrive.client import PipedriveClient

    # no reserve for its own few reads: it must still report when the budget is down to the reserve
    with PipedriveClient.from_env(max_retries=0, max_rate_limit_retries=3, timeout=timeout,
                                  daily_reserve_fraction=0.0) as client:
        identity = yield from _identity(client, settings)
        if identity is None:
            return
        yield from _runs_elsewhere(identity)
        from flitstack_dagster.pipedrive.errors import PipedriveError
        from flitstack_dagster.pipedrive.problems import human_message

        for name, check in (("plan, seats and budget", _plan_seats_budget), ("custom fields", _custom_fields)):
            try:
                yield from check(client, settings)
            except (UserError, PipedriveError) as e:  # e.g. the budget ran out between two checks
                yield Check(name, False, human_message(e, settings.host) or str(e))


def _settings() -> Iterator[Check]:
    """One line for the settings (each problem on its own line); returns them, or None when bad."""
    problems: list[str] = []
    paths = settings = None
    for read in (data_paths, pipedrive_settings):
        try:
            got = read()
        except SettingError as e:
            problems.extend(e.problems)
            continue
        paths, settings = (got, settings) if read is data_paths else (paths, got)
    for problem in problems:
        yield Check("settings", False, problem)
    if problems or settings is None or paths is None:
        return None
    yield Check("settings", True, f"PIPEDRIVE_BASE_URL={settings.base_url}, PIPEDRIVE_API_TOKEN set (not shown), "
                f"PIPEDRIVE_PLAN={settings.plan}, PIPEDRIVE_SEATS={settings.seats}, "
                f"PIPEDRIVE_DAILY_RESERVE={settings.daily_reserve:g}, FLITSTACK_DATA_DIR={paths.root}")
    return settings


def _identity(client: Any, settings: PipedriveSettings) -> Iterator[Check]:
    """reachable, token, account: GET /v1/users/me (pipedrive.account.identify). Returns the identity or None."""
    from flitstack_dagster.pipedrive.account import NotPipedriveApi, TokenRefused, identify
    from flitstack_dagster.pipedrive.errors import DailyBudgetSpent, PipedriveError
    from flitstack_dagster.pipedrive.problems import human_message

    host = settings.host
    try:
        identity = identify(client)
    except (PipedriveError, UserError) as e:
        if isinstance(e, PipedriveError) and e.status is None and not isinstance(e, UserError):
            yield Check("reachable", False, human_message(e, host) or str(e))
            return None
        failed = ("token" if isinstance(e, TokenRefused) else "budget" if isinstance(e, DailyBudgetSpent)
                  else "Pipedrive API")
        not_api = isinstance(e, NotPipedriveApi) or failed == "Pipedrive API"
        yield Check("reachable", True, f"{host} answers" + ("" if not_api else " as Pipedrive's API"))
        yield Check(failed, False, human_message(e, host) or str(e))
        return None
    yield Check("reachable", True, f"{host} answers as Pipedrive's API")
    email = f"<{identity.user_email}>" if identity.user_email else None
    who = " ".join(p for p in (identity.user_name, email) if p)
    yield Check("token", True, f"accepted: API user {who or '?'} (user id {identity.user_id})")
    name = f"{identity.company_name}, " if identity.company_name else ""
    yield Check("account", True,
                f"company {name}domain {identity.company_domain or '?'} (company id {identity.company_id})")
    return identity


def _runs_elsewhere(identity: Any) -> Iterator[Check]:
    """Runs in this data folder that loaded into another company (their next step would be refused)."""
    from flitstack_dagster.core import duck

    db = data_paths().duckdb
    if not db.exists():
        return
    try:
        con = duck.connect(db, read_only=True)
    except Exception as e:  # noqa: BLE001 - e.g. Dagster holds the file for a running load
        yield Check("runs", True, f"not compared with this account: {db} cannot be opened now ({type(e).__name__})")
        return
    with con:
        if not duck.has_table(con, "meta", "run_accounts"):
            return
        rows = con.execute("SELECT run_key, company_id, company_domain FROM meta.run_accounts "
                           "WHERE company_id <> ? ORDER BY run_key", [identity.company_id]).fetchall()
    if not rows:
        yield Check("runs", True, f"every run in {db.parent} loaded into this account")
        return
    elsewhere = ", ".join(f"{key} ({domain or company})" for key, company, domain in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    yield Check("runs", False, f"{elsewhere}{more} loaded into another Pipedrive company than this one "
                f"({identity.company_domain}): point PIPEDRIVE_BASE_URL/TOKEN back at it to continue them")


def _plan_seats_budget(client: Any, settings: PipedriveSettings) -> Iterator[Check]:
    """plan, seats and budget from one GET /v1/users: its active users and its rate-limit headers."""
    from flitstack_dagster.pipedrive.ratelimit import PLAN_BURST, daily_budget

    resp = client.request("GET", client.path("v1", "/users"), raw=True)
    yield _plan(settings, _header_int(resp, "x-ratelimit-limit"), PLAN_BURST)
    users = (resp.json() or {}).get("data") or []
    active = sum(1 for u in users if isinstance(u, dict) and u.get("active_flag") and not u.get("is_deleted"))
    note = ("" if active <= settings.seats else
            "; more active users than seats: if the account has more seats, raise PIPEDRIVE_SEATS "
            "(too low only makes the daily budget smaller than it is)")
    yield Check("seats", True, f"not reported by the API; using PIPEDRIVE_SEATS={settings.seats} "
                f"(the account has {active} active user{'s' if active != 1 else ''}{note})")
    budget = daily_budget(settings.plan, settings.seats)
    reserve = round(budget * settings.daily_reserve)
    yield _budget(_header_int(resp, "x-daily-requests-left"), budget, reserve)


def _plan(settings: PipedriveSettings, burst: int | None, plan_burst: dict[str, int]) -> Check:
    configured = f"PIPEDRIVE_PLAN={settings.plan}"
    if burst is None:
        return Check("plan", True, f"not reported by the API (nor its burst limit); using {configured}")
    same = [p for p, b in plan_burst.items() if b == burst]
    if plan_burst[settings.plan] == burst or len(same) != 1:
        return Check("plan", True, f"not reported by the API; using {configured} "
                     f"(burst limit {burst} requests per 2 s, from x-ratelimit-limit)")
    return Check("plan", False, f"not reported by the API, but its burst limit ({burst} requests per 2 s, "
                 f"x-ratelimit-limit) is the {same[0]} plan's, not {settings.plan}'s: set PIPEDRIVE_PLAN={same[0]} "
                 "if that is the account's plan")


def _budget(left: int | None, budget: int, reserve: int) -> Check:
    ours = f"the plan and seats give {budget:,} tokens a day, {reserve:,} kept in reserve (PIPEDRIVE_DAILY_RESERVE)"
    if left is None:
        return Check("budget", True,
                     f"what is left today is not reported by the API (no x-daily-requests-left); {ours}")
    if left <= reserve:
        return Check("budget", False, f"Pipedrive reports {left:,} left today (x-daily-requests-left), no more than "
                     f"the {reserve:,} kept in reserve: a load would stop at once; the budget resets at midnight UTC "
                     "and budget_reset_sensor resumes the load then")
    return Check("budget", True, f"Pipedrive reports {left:,} left today (x-daily-requests-left); {ours}")


def _custom_fields(client: Any, settings: PipedriveSettings) -> Iterator[Check]:
    """Custom fields per entity against the plan's cap (provisioning refuses past it)."""
    from flitstack_dagster.mapping.audit import PLAN_FIELD_CAP, read_fields

    counts = {e: sum(1 for f in read_fields(client, e) if f.custom) for e in FIELD_ENTITIES}
    used, cap = sum(counts.values()), PLAN_FIELD_CAP[settings.plan]
    per = ", ".join(f"{e} {n}" for e, n in counts.items())
    if used >= cap:
        yield Check("custom fields", False, f"{used} of the {settings.plan} plan's {cap} are used ({per}): "
                    "provisioning cannot add any; remove unused custom fields in Pipedrive or upgrade the plan")
        return
    yield Check("custom fields", True,
                f"{used} of the {settings.plan} plan's {cap} used ({per}): room for {cap - used} more")


def _header_int(resp: Any, name: str) -> int | None:
    try:
        return int(float(resp.headers[name]))
    except (KeyError, ValueError):
        return None

