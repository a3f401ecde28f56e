"""Suite-wide order: files with slow tests first, then the end-to-end folder, then the rest, so that
on two workers the long files overlap with each other and with the many short ones instead of
trailing at the end (in the fast tier, the one end-to-end run starts first)."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    # stable: each file keeps its own order
    items.sort(key=lambda item: (item.path not in slow_files, "e2e" not in item.path.parts))
