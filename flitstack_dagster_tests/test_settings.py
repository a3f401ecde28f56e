"""Settings: every PIPEDRIVE_* / FLITSTACK_* variable is checked in one place, each bad value named
with its form and an example, and a URL that may hold the token refused without echoing it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flitstack_dagster.pipedrive.client import PipedriveClient
from flitstack_dagster.defs.run_tags import ACCOUNT_TAG, account_run_tags
from flitstack_dagster.core.settings import (
    VARIABLES,
    SettingError,
    data_paths,
    debug,
    pipedrive_settings,
    scrub,
)

REPO = Path(__file__).resolve().parents[1]
TOKEN = "9f0e1d2c3b4a59687766554433221100aabbccdd"
GOOD = {"PIPEDRIVE_BASE_URL": "https://acme.pipedrive.com", "PIPEDRIVE_API_TOKEN": TOKEN}


def problems(**env: str) -> str:
    with pytest.raises(SettingError) as info:
        pipedrive_settings({**GOOD, **env})
    return str(info.value)


def test_defaults_and_a_good_account():
    s = pipedrive_settings({"PIPEDRIVE_BASE_URL": "https://acme.pipedrive.com/", "PIPEDRIVE_API_TOKEN": TOKEN})
    assert (s.base_url, s.plan, s.seats, s.daily_reserve, s.host) == (
        "https://acme.pipedrive.com", "growth", 5, 0.2, "acme.pipedrive.com")
    assert TOKEN not in repr(s) and s.api_token.get_secret_value() == TOKEN
    local = pipedrive_settings({**GOOD, "PIPEDRIVE_BASE_URL": "http://127.0.0.1:8765", "PIPEDRIVE_PLAN": " Premium ",
                                "PIPEDRIVE_SEATS": "12", "PIPEDRIVE_DAILY_RESERVE": "0"})
    assert (local.host, local.plan, local.seats, local.daily_reserve) == ("127.0.0.1:8765", "premium", 12, 0.0)


def test_each_bad_value_is_named_with_its_form_and_an_example():
    assert problems(PIPEDRIVE_SEATS="five") == "PIPEDRIVE_SEATS must be a whole number of seats, e.g. 5 (got 'five')"
    assert "PIPEDRIVE_SEATS must be a whole number" in problems(PIPEDRIVE_SEATS="0")
    assert problems(PIPEDRIVE_PLAN="gold") == (
        "PIPEDRIVE_PLAN must be one of lite, growth, premium, ultimate (or an older plan's name: essential, "
        "advanced, power, enterprise, professional), e.g. growth (got 'gold')")
    assert problems(PIPEDRIVE_DAILY_RESERVE="lots") == (
        "PIPEDRIVE_DAILY_RESERVE must be a fraction of the daily token budget from 0 to 0.9, e.g. 0.2 (got 'lots')")
    assert "(got '0.95')" in problems(PIPEDRIVE_DAILY_RESERVE="0.95")
    assert problems(PIPEDRIVE_BASE_URL="yourcompany.pipedrive.com") == (
        "PIPEDRIVE_BASE_URL must start with https:// (e.g. https://yourcompany.pipedrive.com)")
    assert problems(PIPEDRIVE_BASE_URL="ftp://acme.pipedrive.com").startswith("PIPEDRIVE_BASE_URL must start with https://")
    assert "only allowed for the local sandbox" in problems(PIPEDRIVE_BASE_URL="http://acme.pipedrive.com")
    assert "has no host name" in problems(PIPEDRIVE_BASE_URL="https://")
    assert "port that is not a number" in problems(PIPEDRIVE_BASE_URL="http://127.0.0.1:eighty")


def test_missing_values_are_all_listed_at_once():
    with pytest.raises(SettingError) as info:
        pipedrive_settings({"PIPEDRIVE_BASE_URL": "  ", "PIPEDRIVE_SEATS": "five"})
    assert info.value.problems == [
        "PIPEDRIVE_BASE_URL is not set: set it to your Pipedrive company URL, starting with https://, "
        "e.g. https://yourcompany.pipedrive.com",
        "PIPEDRIVE_API_TOKEN is not set: set it to the API token alone (Pipedrive: Personal preferences > API)",
        "PIPEDRIVE_SEATS must be a whole number of seats, e.g. 5 (got 'five')",
    ]


@pytest.mark.parametrize("url", [
    f"https://acme.pipedrive.com/?api_token={TOKEN}",
    f"https://acme.pipedrive.com/v1/deals?api_token={TOKEN}&start=0",
    f"https://me:{TOKEN}@acme.pipedrive.com",
    f"https://{TOKEN}@acme.pipedrive.com",
    f"https://acme.pipedrive.com/{TOKEN}",
    f"acme.pipedrive.com/?api_token={TOKEN}",
])
def test_a_token_pasted_into_the_url_is_refused_and_never_echoed(url):
    text = problems(PIPEDRIVE_BASE_URL=url)
    assert text.startswith("PIPEDRIVE_BASE_URL must be the company URL alone")
    assert TOKEN not in text and TOKEN[:8] not in text and "put the token in PIPEDRIVE_API_TOKEN" in text


def test_a_malformed_token_is_refused_and_never_echoed():
    text = problems(PIPEDRIVE_API_TOKEN=f"Bearer {TOKEN}")
    assert text.startswith("PIPEDRIVE_API_TOKEN must be the API token alone") and TOKEN not in text
    assert TOKEN not in problems(PIPEDRIVE_API_TOKEN=f'"{TOKEN}"')


@pytest.mark.parametrize("name", ["PIPEDRIVE_PLAN", "PIPEDRIVE_SEATS", "PIPEDRIVE_DAILY_RESERVE"])
def test_a_token_pasted_into_another_variable_is_never_echoed(name):
    text = problems(**{name: TOKEN})
    assert text.startswith(f"{name} must be") and TOKEN not in text and TOKEN[:20] not in text


def test_given_values_win_over_the_environment():
    s = pipedrive_settings({**GOOD, "PIPEDRIVE_SEATS": "five"}, seats=3, plan="lite")
    assert (s.seats, s.plan) == (3, "lite")


def test_data_dir(tmp_path):
    assert data_paths({"FLITSTACK_DATA_DIR": str(tmp_path / "d")}).root == (tmp_path / "d").resolve()
    assert data_paths({"FLITSTACK_DATA_DIR": ""}).root == Path("data").resolve()
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(SettingError, match=r"^FLITSTACK_DATA_DIR must be a folder path, e.g. /srv/flitstack/data "
                                           r"\(got '.*f\.txt', which is a file\)$"):
        data_paths({"FLITSTACK_DATA_DIR": str(afile)})


def test_debug_and_scrub():
    assert debug({"FLITSTACK_DEBUG": "1"}) and not debug({}) and not debug({"FLITSTACK_DEBUG": "maybe"})
    assert scrub(f"boom {TOKEN} boom", {"PIPEDRIVE_API_TOKEN": TOKEN}) == "boom *** boom"


def test_the_client_reads_the_same_settings():
    c = PipedriveClient.from_env({**GOOD, "PIPEDRIVE_PLAN": "lite", "PIPEDRIVE_SEATS": "2"})
    assert (c.plan, c.seats, c.limiter.daily_budget, c.limiter.reserve) == ("lite", 2, 60_000, 12_000)
    with pytest.raises(SettingError, match=r"PIPEDRIVE_SEATS must be a whole number of seats, e\.g\. 5 \(got 'five'\)"):
        PipedriveClient.from_env({**GOOD, "PIPEDRIVE_SEATS": "five"})


def test_a_bad_url_does_not_stop_the_code_location_from_loading():
    assert account_run_tags({"PIPEDRIVE_BASE_URL": "https://"}) == {}
    assert account_run_tags({"PIPEDRIVE_BASE_URL": "http://127.0.0.1:x"}) == {}
    assert account_run_tags({"PIPEDRIVE_BASE_URL": "https://Acme.pipedrive.com/"}) == {ACCOUNT_TAG: "acme.pipedrive.com"}


def test_readme_lists_every_variable_with_its_default():
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Settings\n")
    section = readme[start:readme.index("\n## ", start)]
    for v in VARIABLES.values():
        row = next((line for line in section.splitlines() if line.startswith(f"| `{v.name}` |")), None)
        assert row is not None, f"{v.name} missing from the README's Settings table"
        default = row.split("|")[2]
        assert (f"`{v.default}`" in default) if v.default is not None else ("none" in default), row
    documented = set(re.findall(r"`((?:PIPEDRIVE|FLITSTACK)_[A-Z_]+)`", section))
    assert set(VARIABLES) <= documented


def test_every_variable_the_product_names_is_a_setting():
    """A new PIPEDRIVE_* / FLITSTACK_* read anywhere in the product must get an entry (default, form)."""
    named = {m for path in (REPO / "flitstack_dagster").rglob("*.py")
             for m in re.findall(r"\b((?:PIPEDRIVE|FLITSTACK)_[A-Z][A-Z_]*)\b", path.read_text())}
    assert named and named <= set(VARIABLES), named - set(VARIABLES)


def test_the_plan_form_lists_the_plans_the_rate_limiter_knows():
    from flitstack_dagster.core.plans import PLAN_NAMES, PLANS
    from flitstack_dagster.core.settings import check_plan
    from flitstack_dagster.pipedrive.ratelimit import PLAN_BURST, PLAN_MULTIPLIER, normalize_plan

    assert all(name in VARIABLES["PIPEDRIVE_PLAN"].form for name in PLAN_NAMES)
    assert tuple(PLAN_BURST) == tuple(PLAN_MULTIPLIER) == PLANS
    assert [check_plan(f" {p.upper()} ") for p in PLAN_NAMES] == [normalize_plan(f" {p.upper()} ") for p in PLAN_NAMES]
