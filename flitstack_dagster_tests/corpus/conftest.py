"""One tiny generated bundle per session; each case copies and damages it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flitstack_dagster_tests.corpus.kit import copy, generate


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("corpus-base") / "bundle")


@pytest.fixture()
def bundle(base: Path, tmp_path: Path) -> Path:
    """A private copy of the base bundle to damage."""
    return copy(base, tmp_path / "bundle")
