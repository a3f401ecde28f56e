"""The product's settings: every PIPEDRIVE_* and FLITSTACK_* environment variable, read and checked here.

Each variable has one entry in VARIABLES (its default, its expected form, an example); every reader
(the CLI, the Pipedrive client's `from_env`, the Dagster resource, `flitstack doctor`) goes through
the functions below, so a bad value is refused the same way everywhere: a SettingError (a UserError)
naming the variable, the form and an example. A value that may hold the API token is never echoed.
An empty value counts as unset.

Where the project keeps its state: one data folder, overridable with FLITSTACK_DATA_DIR. Everything
the product writes (DuckDB file, reports, run work folders, the sandbox state, the export drop
folder) lives under it, so "nothing written outside the data folder" is one rule to check.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.core.plans import find_plan, plans_form


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def duckdb(self) -> Path:
        return self.root / "flitstack.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def sandbox_state(self) -> Path:
        return self.root / "sandbox" / "state.sqlite"

    def ensure(self) -> "Paths":
        for p in (self.root, self.reports, self.work, self.drop, self.exports):
            p.mkdir(parents=True, exist_ok=True)
        return self


# -- the variables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One environment variable: its default (None: none), the form a value must have, an example
    (what each one is for: the README's Settings table)."""

    name: str
    default: str | None
    form: str
    example: str
    secret: bool = False  # never echoed, not even in part


COMPANY_URL_EXAMPLE = "https://yourcompany.pipedrive.com"
DEFAULT_DATA_DIR = "data"
MAX_DAILY_RESERVE = 0.9

VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("PIPEDRIVE_BASE_URL", None, "your Pipedrive company URL, starting with https://", COMPANY_URL_EXAMPLE),
    Variable("PIPEDRIVE_API_TOKEN", None, "the API token alone (Pipedrive: Personal preferences > API)",
             "0123456789abcdef0123456789abcdef01234567", secret=True),
    Variable("PIPEDRIVE_PLAN", "growth", plans_form(), "growth"),
    Variable("PIPEDRIVE_SEATS", "5", "a whole number of seats", "5"),
    Variable("PIPEDRIVE_DAILY_RESERVE", "0.2", f"a fraction of the daily token budget from 0 to {MAX_DAILY_RESERVE:g}",
             "0.2"),
    Variable("FLITSTACK_DATA_DIR", DEFAULT_DATA_DIR, "a folder path", "/srv/flitstack/data"),
    Variable("FLITSTACK_DEBUG", "0", "1 or 0", "1"),
    Variable("FLITSTACK_DAGSTER_URL", "http://127.0.0.1:3000", "the Dagster UI's address, starting with http:// "
             "or https://", "https://dagster.example.org"),
)}

MIN_TOKEN_MATCH = 8  # a shorter token (tests) is found in any URL by chance; Pipedrive's have 40 characters
LOCAL_HOSTS = {"localhost"}


class SettingError(UserError):
    """One or more PIPEDRIVE_* / FLITSTACK_* values are missing or malformed; one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def url_host(url: str) -> str:
    """`host[:port]` of a URL, never any credentials pasted into it."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")


def raw(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable's value as set (stripped), or None when unset or empty."""
    value = (os.environ if env is None else env).get(name)
    value = value.strip() if value is not None else None
    return value or None


def value_or_default(name: str, env: Mapping[str, str] | None = None) -> str | None:
    got = raw(name, env)
    return got if got is not None else VARIABLES[name].default


# a long run of letters and digits may be an API token pasted into the wrong variable: never shown
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9]{20,}")


def _malformed(name: str, got: str | None = None) -> str:
    v = VARIABLES[name]
    hidden = got is None or v.secret or _TOKEN_LIKE.search(got)
    shown = "" if hidden else f" (got {got[:40]!r}{'...' if len(got) > 40 else ''})"
    return f"{name} must be {v.form}, e.g. {v.example}{shown}"


def _not_set(name: str) -> str:
    v = VARIABLES[name]
    return f"{name} is not set: set it to {v.form}" + ("" if v.secret else f", e.g. {v.example}")


# -- one check per variable: the value in its typed form, or a SettingError ------------------------


def check_base_url(value: str | None, token: str | None = None) -> str:
    """The company URL, without a trailing slash. Refuses (never echoing) a URL that may carry a token."""
    name = "PIPEDRIVE_BASE_URL"
    if value is None or not value.strip():
        raise SettingError([_not_set(name)])
    url = value.strip()
    pasted = token is not None and len(token) >= MIN_TOKEN_MATCH and token in url
    if "?" in url or "#" in url or "@" in url or pasted:
        raise SettingError([
            f"{name} must be the company URL alone, with no ?api_token=... and no user:password@ "
            f"(it is not shown: it may hold the API token); put the token in PIPEDRIVE_API_TOKEN and set "
            f"{name} to e.g. {COMPANY_URL_EXAMPLE}"])
    if any(c.isspace() for c in url):
        raise SettingError([f"{name} must be one URL with no spaces, e.g. {COMPANY_URL_EXAMPLE}"])
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "://" not in url:
        raise SettingError([f"{name} must start with https:// (e.g. {COMPANY_URL_EXAMPLE})"])
    try:
        parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        raise SettingError([f"{name} has a port that is not a number, e.g. http://127.0.0.1:8765"]) from None
    host = parts.hostname
    if not host:
        raise SettingError([f"{name} has no host name after {parts.scheme}://, e.g. {COMPANY_URL_EXAMPLE}"])
    if parts.scheme.lower() == "http" and not is_local(host):
        raise SettingError([
            f"{name} must start with https:// (e.g. {COMPANY_URL_EXAMPLE}): plain http:// would send the API "
            "token unencrypted, so it is only allowed for the local sandbox on 127.0.0.1"])
    return url.rstrip("/")


def is_local(host: str) -> bool:
    """This machine (the local sandbox): localhost or a loopback address."""
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_token(value: str | None) -> SecretStr:
    name = "PIPEDRIVE_API_TOKEN"
    if value is None or not value.strip():
        raise SettingError([_not_set(name)])
    token = value.strip()
    if any(c.isspace() or not c.isprintable() or c in "\"'<>" for c in token):
        raise SettingError([f"{name} must be {VARIABLES[name].form}, one word with no spaces, quotes or line "
                            "breaks (it is not shown): copy it again from Pipedrive"])
    return SecretStr(token)


def check_plan(value: str | None) -> str:
    """The plan's current name (an older name is taken as the plan it stands for)."""
    plan = find_plan(value if value is not None else VARIABLES["PIPEDRIVE_PLAN"].default)
    if plan is None:
        raise SettingError([_malformed("PIPEDRIVE_PLAN", value)])
    return plan.name


def check_seats(value: str | int | None) -> int:
    got = str(value if value is not None else VARIABLES["PIPEDRIVE_SEATS"].default).strip()
    if not got.isdigit() or int(got) < 1:
        raise SettingError([_malformed("PIPEDRIVE_SEATS", got)])
    return int(got)


def check_daily_reserve(value: str | float | None) -> float:
    got = str(value if value is not None else VARIABLES["PIPEDRIVE_DAILY_RESERVE"].default).strip()
    try:
        fraction = float(got)
    except ValueError:
        fraction = -1.0
    if not 0.0 <= fraction <= MAX_DAILY_RESERVE:
        raise SettingError([_malformed("PIPEDRIVE_DAILY_RESERVE", got)])
    return fraction


def check_data_dir(value: str | None) -> Path:
    name = "FLITSTACK_DATA_DIR"
    got = value if value is not None else VARIABLES[name].default
    if "\x00" in got:
        raise SettingError([_malformed(name)])
    path = Path(got).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise SettingError([f"{name} must be {VARIABLES[name].form}, e.g. {VARIABLES[name].example} "
                            f"(got {str(path)!r}, which is a file)"])
    return path


# -- what the readers use --------------------------------------------------------------------------


@dataclass(frozen=True)
class PipedriveSettings:
    """The Pipedrive account to talk to, checked. The token is a SecretStr: repr() never shows it."""

    base_url: str
    api_token: SecretStr
    plan: str
    seats: int
    daily_reserve: float

    @property
    def host(self) -> str:
        """The host (and port) people recognise, e.g. yourcompany.pipedrive.com or 127.0.0.1:8765."""
        return url_host(self.base_url)


BUDGET_CHECKS = {"PIPEDRIVE_PLAN": check_plan, "PIPEDRIVE_SEATS": check_seats,
                 "PIPEDRIVE_DAILY_RESERVE": check_daily_reserve}


def _check_all(values: Mapping[str, Any], checks: Mapping[str, Any]) -> dict[str, Any]:
    """Every value through its check; one SettingError listing every problem, so a person fixes them all
    in one go."""
    checked, problems = {}, []
    for name, check in checks.items():
        try:
            checked[name] = check(values[name])
        except SettingError as e:
            problems.extend(e.problems)
    if problems:
        raise SettingError(problems)
    return checked


def check_budget_settings(env: Mapping[str, str] | None = None) -> None:
    """PIPEDRIVE_PLAN, _SEATS and _DAILY_RESERVE checked as every command checks them (what a token budget
    is counted from; the URL and token are not needed for it)."""
    _check_all({name: raw(name, env) for name in BUDGET_CHECKS}, BUDGET_CHECKS)


def pipedrive_settings(env: Mapping[str, str] | None = None, *, base_url: str | None = None,
                       api_token: str | None = None, plan: str | None = None, seats: int | None = None,
                       daily_reserve: float | None = None) -> PipedriveSettings:
    """PIPEDRIVE_* from the environment; a value given here (e.g. a Dagster resource's config) wins.

    Raises one SettingError listing every problem.
    """
    given = {"PIPEDRIVE_BASE_URL": base_url, "PIPEDRIVE_API_TOKEN": api_token, "PIPEDRIVE_PLAN": plan,
             "PIPEDRIVE_SEATS": seats, "PIPEDRIVE_DAILY_RESERVE": daily_reserve}
    values = {k: (v if v is not None else raw(k, env)) for k, v in given.items()}
    token = values["PIPEDRIVE_API_TOKEN"]
    checked = _check_all(values, {
        "PIPEDRIVE_BASE_URL": lambda v: check_base_url(v, token.strip() if token else None),
        "PIPEDRIVE_API_TOKEN": check_api_token, **BUDGET_CHECKS,
    })
    return PipedriveSettings(checked["PIPEDRIVE_BASE_URL"], checked["PIPEDRIVE_API_TOKEN"],
                             checked["PIPEDRIVE_PLAN"], checked["PIPEDRIVE_SEATS"], checked["PIPEDRIVE_DAILY_RESERVE"])


def data_paths(env: Mapping[str, str] | None = None) -> Paths:
    """The data folder (FLITSTACK_DATA_DIR, default ./data), checked."""
    return Paths(check_data_dir(raw("FLITSTACK_DATA_DIR", env)))


def dagster_ui_url(env: Mapping[str, str] | None = None) -> str:
    """Where people open the Dagster UI (FLITSTACK_DAGSTER_URL), for the links Dagster metadata shows."""
    name = "FLITSTACK_DAGSTER_URL"
    url = value_or_default(name, env)
    if urlsplit(url).scheme.lower() not in ("http", "https") or any(c.isspace() for c in url):
        raise SettingError([_malformed(name, url)])
    return url.rstrip("/")


def debug(env: Mapping[str, str] | None = None) -> bool:
    """FLITSTACK_DEBUG=1: show tracebacks. Read leniently: it is consulted while reporting another error."""
    return (raw("FLITSTACK_DEBUG", env) or "").lower() in ("1", "true", "yes", "on")


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values that must never be printed: the API token as set (scrub them from any message)."""
    return [v for v in (raw(n, env) for n, var in VARIABLES.items() if var.secret) if v]


def scrub(text: str, env: Mapping[str, str] | None = None) -> str:
    for secret in secret_values(env):
        text = text.replace(secret, "***")
    return text
