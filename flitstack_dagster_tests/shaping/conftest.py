from __future__ import annotations

import json
from datetime import datetime, timezone

import polars as pl
import pytest

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.shaping.common import Owners, ShapeContext


@pytest.fixture
def ctx() -> ShapeContext:
    return ShapeContext(run_key="full-t1", exported_at=datetime(2026, 10, 20, 12, tzinfo=timezone.utc), timezone="America/Chicago")


@pytest.fixture
def mapping() -> Mapping:
    return Mapping()


@pytest.fixture
def owners() -> Owners:
    return Owners.of({"T1": 501}, default_owner_id=1)


def payloads(df: pl.DataFrame) -> dict[str, dict]:
    """source_id -> parsed payload."""
    return {s: json.loads(p) for s, p in df.select("source_id", "payload").iter_rows()}


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)
