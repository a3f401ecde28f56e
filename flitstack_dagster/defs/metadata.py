"""Small helpers that turn domain results into metadata a migration lead reads in the UI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import duckdb

from flitstack_dagster.core import duck
from flitstack_dagster.core.safe_text import cap_document, md_list, plain_line

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


def site_url(url: str) -> dg.MetadataValue:
    """A link to the site a URL points at: scheme, host and port only (never a user, password or query)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return dg.MetadataValue.url(f"{parts.scheme}://{parts.hostname}{port}/")


def md_problems(problems: Iterable[Any]) -> dg.MetadataValue:
    """A bulleted list of messages that may quote source text."""
    return dg.MetadataValue.md(md_list(problems))


def md_document(text: str, path: Any) -> dg.MetadataValue:
    """A Markdown document written to `path`, cut for the UI where it is too long."""
    return dg.MetadataValue.md(cap_document(text, DOCUMENT_PREVIEW, str(path)))


def counts_table(pairs: Iterable[tuple[str, int]], key: str, value: str = "rows") -> dg.MetadataValue:
    """Two typed columns: a name and its count."""
    return table([{key: k, value: v} for k, v in pairs], columns=[key, value])


def records_table(items: Sequence[Any], kind: type, limit: int | None = None) -> dg.MetadataValue:
    """A table of dataclass instances, one column per field of `kind` (so an empty list keeps its schema)."""
    return table([dataclasses.asdict(i) for i in items], columns=[f.name for f in dataclasses.fields(kind)],
                 limit=limit)


def column_schema(columns: Iterable[tuple[str, str]]) -> dg.TableSchema:
    """A table's columns with their database types, as the UI's schema tab shows them."""
    return dg.TableSchema(columns=[dg.TableColumn(name, kind.lower()) for name, kind in columns])


def table_facts(con: duckdb.DuckDBPyConnection, table_name: str, rows: int) -> dict[str, Any]:
    """What the UI shows of a DuckDB table an asset writes: its name, this run's rows and its columns."""
    schema, name = table_name.split(".", 1)
    return {"dagster/table_name": table_name, "dagster/row_count": int(rows),
            "dagster/column_schema": column_schema(duck.table_columns(con, schema, name))}
