"""Small helpers that turn domain results into metadata a migration lead reads in the UI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from flitstack_dagster.core.safe_text import cap_document, md_list, md_text, plain_line

# the UI renders Markdown metadata up to about this size
DOCUMENT_PREVIEW = 60000


# a table cell's Dagster column type, from the Python type of its values (bool before int: a bool is an int)
_COLUMN_TYPES = ((bool, "bool"), (int, "int"), (float, "float"))
CELL_LIMIT = 300


def _column_type(values: Iterable[Any]) -> str:
    kinds = {next((name for t, name in _COLUMN_TYPES if isinstance(v, t)), "string") for v in values if v is not None}
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "string"


def _cell(value: Any, kind: str) -> Any:
    if value is None or kind != "string":
        return value
    return plain_line(value, CELL_LIMIT)  # source text shown as typed, on one line


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
          limit: int | None = None) -> dg.MetadataValue:
    """A typed table for the UI: one record per row, the schema's column types taken from the values."""
    rows = list(rows)[:limit] if limit is not None else list(rows)
    cols = list(columns or dict.fromkeys(k for r in rows for k in r))
    types = {c: _column_type(r.get(c) for r in rows) for c in cols}
    records = [dg.TableRecord({c: _cell(r.get(c), types[c]) for c in cols}) for r in rows]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, types[c]) for c in cols])
    return dg.MetadataValue.table(records, schema=schema)


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, limit: int = 10) -> dg.MetadataValue:
    """A markdown preview table: cells shown as typed (never as markup), long ones cut for the UI."""
    rows = list(rows)[:limit]
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    cols = list(columns or rows[0].keys())
    out = ["| " + " | ".join(md_text(c, limit=60) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(md_text(r.get(c), limit=60) for c in cols) + " |")
    return dg.MetadataValue.md("\n".join(out))


def md_problems(problems: Iterable[Any]) -> dg.MetadataValue:
    """A bulleted list of messages that may quote source text."""
    return dg.MetadataValue.md(md_list(problems))


def md_document(text: str, path: Any) -> dg.MetadataValue:
    """A Markdown document written to `path`, cut for the UI where it is too long."""
    return dg.MetadataValue.md(cap_document(text, DOCUMENT_PREVIEW, str(path)))


def counts_table(pairs: Iterable[tuple[str, int]], key: str, value: str = "rows") -> dg.MetadataValue:
    return md_table([{key: k, value: f"{v:,}"} for k, v in pairs], limit=100)
