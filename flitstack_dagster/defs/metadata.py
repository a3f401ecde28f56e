"""Small helpers that turn domain results into metadata a migration lead reads in the UI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, limit: int = 10) -> dg.MetadataValue:
    """A markdown preview table; long cells are cut so the UI stays readable."""
    rows = list(rows)[:limit]
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    cols = list(columns or rows[0].keys())
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return dg.MetadataValue.md("\n".join(out))


def _cell(v: Any) -> str:
    s = "" if v is None else str(v)
    s = s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s if len(s) <= 60 else s[:57] + "…"


def counts_table(pairs: Iterable[tuple[str, int]], key: str, value: str = "rows") -> dg.MetadataValue:
    return md_table([{key: k, value: f"{v:,}"} for k, v in pairs], limit=100)
