"""Pipedrive's file-size limit has one home (`pipedrive/limits.py`); every stage reads it from there."""

from __future__ import annotations

import re
from pathlib import Path

from flitstack_dagster.mapping.model import MappingOptions
from flitstack_dagster.mapping.profile import SIZE_BANDS
from flitstack_dagster.pipedrive import client
from flitstack_dagster.pipedrive.limits import MAX_FILE_BYTES, file_limit_text

PACKAGE = Path(__file__).resolve().parents[2] / "flitstack_dagster"
# the local Pipedrive and the Novo generator stand in for the two outside systems: they keep their own copy
OUTSIDE = ("sandbox", "novo/generator")
SPELLED = re.compile(r"25\s*\*\s*1024|25 ?MB|26214400")


def test_the_mapping_default_the_client_and_the_profile_use_the_one_limit():
    assert MappingOptions().max_file_bytes == MAX_FILE_BYTES
    assert client.MAX_FILE_BYTES == MAX_FILE_BYTES
    assert SIZE_BANDS[-2][1] == MAX_FILE_BYTES and file_limit_text() in SIZE_BANDS[-1][0]


def test_no_product_module_spells_the_limit_itself():
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "pipedrive/limits.py" or rel.startswith(OUTSIDE):
            continue
        spelled += [f"{rel}:{n}" for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                    if SPELLED.search(line)]
    assert not spelled, f"read the limit from flitstack_dagster.pipedrive.limits instead: {spelled}"
