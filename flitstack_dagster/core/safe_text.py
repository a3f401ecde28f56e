"""Source text made safe to open: CSV cells a spreadsheet will not run, Markdown and HTML it cannot shape.

Novo text is whatever someone typed, so every CSV, Markdown and HTML output passes it through here:
- CSV: a cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` (the OWASP
  CSV-injection rule), so a spreadsheet shows it as text instead of running it as a formula;
- Markdown: source text cannot make links, images, headings, lists, tables, HTML or code; it stays on
  one line and long text is cut, saying so;
- HTML: escaped, long text cut, saying so;
- everywhere: NUL, other invisible control characters and bidi overrides are dropped, so nothing hides
  or reorders what a reader sees.
Data outputs (Parquet, JSON, DuckDB) keep the raw values; they are data, not documents.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

# Control characters (tab, LF and CR kept) and the bidi embeddings, overrides and isolates.
_HIDDEN_RANGES = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069))
_HIDDEN = re.compile("[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in _HIDDEN_RANGES) + "]")
# The same set in RE2 syntax, for DuckDB's regexp_replace
_HIDDEN_RE2 = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _HIDDEN_RANGES) + "]"
FORMULA_START = "=+-@\t\r"
MD_CELL_LIMIT = 200
HTML_CELL_LIMIT = 5000

_MD_INLINE = re.compile(r"([\\`*\[\]|~])")
_UNDERSCORES = re.compile(r"_+")
# what could start a tag, an autolink or a character reference
_MD_HTML = re.compile(r"<|&(?=#?\w+;)")
# a heading, list, quote, setext underline or numbered list where the text starts a line
_MD_BLOCK_START = re.compile(r"^(\s*)([#+\-=>]|\d+(?=[.)](?:\s|$)))")
_AUTOLINK = re.compile(r"(?i)(:)(?=//)|(?<=www)(\.)|(@)")
_NEWLINES = re.compile(r"\r\n|[\r\n\t]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_MARKUP = {ord(c): f"\\u{ord(c):04x}" for c in "<>&`[]"}


def visible_text(value: Any) -> str:
    """`value` as text without NUL, invisible control characters or bidi overrides."""
    return _HIDDEN.sub("", "" if value is None else str(value))


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters with a note saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … (cut after {limit:,} of {len(text):,} characters)"


def plain_line(value: Any, limit: int = 300) -> str:
    """Source text for one line of a terminal or a log: visible characters only, one line, long text cut."""
    return cut(_NEWLINES.sub(" ", visible_text(value)), limit)


# -- CSV -------------------------------------------------------------------------------------------


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text; numbers and None pass through unchanged."""
    if not isinstance(value, str):
        return value
    text = visible_text(value)
    return "'" + text if text.startswith(tuple(FORMULA_START)) else text


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def csv_cell_sql(expr: str) -> str:
    """DuckDB SQL for `csv_cell` of a text expression (the column name it keeps is the caller's)."""
    clean = f"regexp_replace(CAST({expr} AS VARCHAR), '{_HIDDEN_RE2}', '', 'g')"
    starts = "^([" + "".join({"\t": r"\t", "\r": r"\r", "-": r"\-"}.get(c, c) for c in FORMULA_START) + "])"
    return f"regexp_replace({clean}, '{starts}', '''\\1')"


# -- Markdown ----------------------------------------------------------------------------------------


class Markdown(str):
    """Markdown the product wrote itself (`**unmapped**`): `md_text` leaves it as it is."""


def md_text(value: Any, limit: int = MD_CELL_LIMIT) -> str:
    """Source text for one line of Markdown (a table cell, a list item, a heading): shown as typed,
    never as markup; newlines and tabs become spaces, and long text is cut."""
    if isinstance(value, (Markdown, int, float)):  # numbers cannot carry markup
        return str(value)
    text = _MD_HTML.sub(lambda m: "&lt;" if m.group(0) == "<" else "&amp;", plain_line(value, limit))
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _UNDERSCORES.sub(_escape_underscores, text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return _MD_BLOCK_START.sub(_escape_block_start, text, count=1)


def _escape_underscores(m: re.Match) -> str:
    """`_` inside a word never makes emphasis (Novo_Priority__c stays readable); elsewhere it is escaped."""
    s, i, j = m.string, m.start(), m.end()
    inside_word = i > 0 and j < len(s) and s[i - 1].isalnum() and s[j].isalnum()
    return m.group(0) if inside_word else "\\_" * (j - i)


def _escape_block_start(m: re.Match) -> str:
    lead, mark = m.group(1), m.group(2)
    return lead + (mark + "\\" if mark[0].isdigit() else "\\" + mark)


def md_json_block(data: Any) -> list[str]:
    """Lines of a fenced JSON block showing `data`; inside its strings every character that could read
    as markup (even in a viewer that ignores the fence) is a \\u escape, so the JSON means the same."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)  # ASCII: bidi and NUL are escapes too
    return ["```json", _JSON_STRING.sub(lambda m: m.group(0).translate(_JSON_MARKUP), text), "```"]


def md_list(items: Iterable[Any], empty: str = "none") -> str:
    """A bulleted Markdown list of source-bearing messages (or `empty`)."""
    return "\n".join(f"- {md_text(i, limit=1000)}" for i in items) or empty


def cap_document(text: str, limit: int, where: str) -> str:
    """A Markdown document cut for a preview at a line end, a code block closed, saying where the rest is."""
    if len(text) <= limit:
        return text
    head = text[:limit].rsplit("\n", 1)[0]
    open_fence = None
    for line in head.split("\n"):
        if line.startswith("```"):
            fence = line[:len(line) - len(line.lstrip("`"))]
            open_fence = None if open_fence and fence.startswith(open_fence) else (open_fence or fence)
    closing = [open_fence] if open_fence else []
    note = f"_Cut here for the preview; the whole document is {md_text(where)}._"
    return "\n".join([head, *closing, "", note])


# -- HTML --------------------------------------------------------------------------------------------


def html_text(value: Any, limit: int = HTML_CELL_LIMIT) -> str:
    """Source text escaped for HTML (element text or a quoted attribute), long text cut."""
    return html.escape(cut(visible_text(value), limit), quote=True)
