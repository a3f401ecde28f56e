"""The `mapping_approved` check's link to the `approve_mapping` launchpad: where it points and what it carries
(the browser test follows it in the real UI)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest

from flitstack_dagster.core.settings import SettingError, dagster_ui_url
from flitstack_dagster.defs.approval import MAX_URL, launchpad_example, launchpad_link

EXAMPLE = launchpad_example("ab" * 32, [{"field": "work_orders.Status", "source_value": "Comp.", "proposed": None}])


def _run() -> dg.DagsterRun:
    return dg.DagsterRun(job_name="migrate", run_id="r1")  # outside the UI: no code location of origin


def test_the_link_opens_the_launchpad_of_the_default_location_with_the_example(monkeypatch):
    monkeypatch.delenv("FLITSTACK_DAGSTER_URL", raising=False)
    url = launchpad_link(_run(), EXAMPLE).value
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:3000"
    assert parts.path == "/locations/flitstack_dagster/jobs/approve_mapping/playground/setup"
    assert parse_qs(parts.query)["config"] == [EXAMPLE]


def test_the_ui_address_comes_from_the_setting(monkeypatch):
    monkeypatch.setenv("FLITSTACK_DAGSTER_URL", "https://dagster.example.org/")
    assert launchpad_link(_run(), EXAMPLE).value.startswith("https://dagster.example.org/locations/")


def test_a_config_too_long_for_a_link_opens_the_empty_launchpad(monkeypatch):
    monkeypatch.delenv("FLITSTACK_DAGSTER_URL", raising=False)
    url = launchpad_link(_run(), "x" * MAX_URL).value
    assert url == "http://127.0.0.1:3000/locations/flitstack_dagster/jobs/approve_mapping/playground"


@pytest.mark.parametrize("bad", ["127.0.0.1:3000", "ftp://host", "http://a b"])
def test_a_malformed_ui_address_is_refused_naming_the_variable(bad):
    with pytest.raises(SettingError, match="FLITSTACK_DAGSTER_URL must be the Dagster UI's address"):
        dagster_ui_url({"FLITSTACK_DAGSTER_URL": bad})
