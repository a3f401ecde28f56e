"""Suite-wide order: the files that take minutes first, then the other files with slow tests, then the
end-to-end folder, then the rest, so that on two workers the long files overlap with each other and
with the many short ones instead of trailing at the end (in the fast tier, the one end-to-end run
starts first)."""

from __future__ import annotations

import pytest


# folders and files measured at minutes each, longest first (the deployment rehearsal, the browser
# journey, the benchmarks' smoke runs, the Node SDK read-back, the headless commands)
LONGEST = ("deployment", "ui", "benchmarks", "test_node_sdk_readback.py", "test_headless.py")


def _rank(item) -> int:
    return min((i for i, part in enumerate(LONGEST) if part in item.path.parts), default=len(LONGEST))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    # stable: each file keeps its own order
    items.sort(key=lambda item: (item.path not in slow_files, _rank(item), "e2e" not in item.path.parts))
