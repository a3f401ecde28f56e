"""Token cost per Pipedrive operation, from the vendored `token_costs.csv`.

The CSV is a copy of the official `x-token-cost` of every operation in Pipedrive's OpenAPI files (the
tests compare it with the pinned copy in flitstack_dagster_tests/openapi/). Paths are full request paths as sent to
`https://{company}.pipedrive.com`: `/v1/...` for API v1 and `/api/v2/...` for API v2.

A request is matched by method and path against the path templates; a literal segment beats a
`{placeholder}` (so `/api/v2/deals/search` is the search operation, not `getDeal`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

COSTS_CSV = Path(__file__).with_name("token_costs.csv")

# Cost charged for an operation the table does not know (none of the client's operations hit it).
UNKNOWN_COST = 20


@dataclass(frozen=True)
class Operation:
    api_version: str  # "v1" or "v2"
    method: str  # upper case
    template: str  # "/api/v2/organizations/{id}"
    cost: int
    operation_id: str
    deprecated: bool = False

    @property
    def key(self) -> str:
        """The name `client.usage` uses: "POST /api/v2/organizations"."""
        return f"{self.method} {self.template}"

    @property
    def is_search(self) -> bool:
        """Search endpoints have their own, lower burst limit (10 per 2 s)."""
        return is_search_path(self.template)


def is_search_path(path: str) -> bool:
    segments = [s for s in path.split("?")[0].split("/") if s]
    return any(s == "search" or s.startswith("itemSearch") for s in segments)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
    return re.compile(rx + r"/?\Z")


class CostTable:
    """Looks up an operation (and its token cost) by HTTP method and request path."""

    def __init__(self, operations: list[Operation]) -> None:
        self._by_method: dict[str, list[tuple[int, int, re.Pattern[str], Operation]]] = {}
        self._exact: dict[tuple[str, str], Operation] = {}
        for op in operations:
            n_params = op.template.count("{")
            entry = (n_params, -len(op.template), _template_regex(op.template), op)
            self._by_method.setdefault(op.method, []).append(entry)
            self._exact[(op.method, op.template)] = op
        for entries in self._by_method.values():
            entries.sort(key=lambda e: (e[0], e[1]))
        self.operations = operations

    @classmethod
    def from_csv(cls, path: Path | str = COSTS_CSV) -> CostTable:
        ops: list[Operation] = []
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                ops.append(
                    Operation(
                        api_version=row["api_version"].strip(),
                        method=row["method"].strip().upper(),
                        template=row["path"].strip(),
                        cost=int(row["x_token_cost"]),
                        operation_id=row["operationId"].strip(),
                        deprecated=row.get("deprecated", "").strip().lower() == "true",
                    )
                )
        return cls(ops)

    def lookup(self, method: str, path: str) -> Operation | None:
        """The operation for a concrete request path (query string ignored), or None."""
        method = method.upper()
        path = path.split("?", 1)[0]
        if path.startswith("/api/v1/"):  # v1 is also served under /api/v1 on company domains
            path = path[len("/api"):]
        if len(path) > 1:
            path = path.rstrip("/")
        exact = self._exact.get((method, path))
        if exact is not None:
            return exact
        for _n, _len, rx, op in self._by_method.get(method, ()):
            if rx.match(path):
                return op
        return None

    def operation(self, method: str, path: str) -> Operation:
        """Like lookup, but an unknown path gets a synthetic operation at UNKNOWN_COST tokens."""
        op = self.lookup(method, path)
        if op is not None:
            return op
        version = "v2" if path.startswith("/api/v2") else "v1"
        return Operation(version, method.upper(), path.split("?", 1)[0], UNKNOWN_COST, "unknown")

    def cost(self, method: str, path: str) -> int:
        return self.operation(method, path).cost


@lru_cache(maxsize=1)
def default_cost_table() -> CostTable:
    return CostTable.from_csv(COSTS_CSV)
