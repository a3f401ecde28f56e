"""Suite-wide order: test files with slow tests run first, so that on two workers the long
end-to-end files overlap with each other and with the many short ones instead of trailing at the end."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: each file keeps its own order
