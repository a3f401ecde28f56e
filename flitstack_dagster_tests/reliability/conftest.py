"""One shaped run per session (built through Dagster), copied for each test; `soak` tests only on request.

Soak variants run with `-m soak` (e.g. `.venv/bin/pytest -p no:cacheprovider -m soak
flitstack_dagster_tests/reliability`); without it they are deselected, so CI runs the short matrix.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import kit


def pytest_collection_modifyitems(config, items):
    if "soak" in (config.getoption("markexpr") or ""):
        return
    soak = [i for i in items if i.get_closest_marker("soak") and "reliability" in str(i.fspath)]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [i for i in items if i not in soak]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> kit.Prepared:
    """12 work orders with 3% injected problems and 20 extra attachments, shaped and ready to load.

    FLITSTACK_RELIABILITY_PREPARED=<folder> reuses a folder `kit.prepare` made (while editing tests)."""
    reuse = os.environ.get("FLITSTACK_RELIABILITY_PREPARED")
    if reuse:
        return kit.reuse(Path(reuse))
    return kit.prepare(tmp_path_factory.mktemp("reliability_prepared"))


@pytest.fixture
def fresh(prepared, tmp_path) -> kit.Prepared:
    """This test's own copy of the prepared data folder and sandbox state."""
    return kit.clone(prepared, tmp_path / "run")
