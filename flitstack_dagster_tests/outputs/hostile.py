"""Hostile Novo text and the checks that every output shows it as text: the corpus, a bundle that
carries it in free-text columns and in values that get quarantined, and one check per output kind.

"Shown as typed" is checked on what a reader gets: CSV cells read back with the csv module, Markdown
rendered by a CommonMark parser (with GFM tables and strikethrough), HTML parsed by the standard
library's parser.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from markdown_it import MarkdownIt

from flitstack_dagster.core.safe_text import FORMULA_START, visible_text
from flitstack_dagster_tests.kit import resign
from flitstack_dagster_tests.reliability.kit import read_csv, write_csv

FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1+2", "\r=3+4"]
HTML = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
MARKDOWN = ["[x](javascript:alert(1))", "![i](http://x)", "# heading", "| a | b |", "``` fence", "`code`",
            "**bold** _em_ ~~gone~~", "<http://auto.link>", "www.evil.example and jane@evil.example"]
HIDDEN = ["nul\x00byte", "\u202Egnp.exe", "iso\u2066late\u2069"]
LONG = ("<script>alert(3)</script> [l](http://x) " * 2000)[:70_000]
CORPUS = [*FORMULAS, *HTML, *MARKDOWN, *HIDDEN]
BIDI_OR_NUL = re.compile("[\x00\u202a-\u202e\u2066-\u2069]")


# -- checks ------------------------------------------------------------------------------------------


def csv_rows(path: Path) -> list[list[str]]:
    """The file's cells; fails on any cell a spreadsheet would run, or with hidden characters."""
    with path.open(encoding="utf-8", newline="") as f:  # a carriage return inside a cell stays one
        text = f.read()
    assert not BIDI_OR_NUL.search(text), f"{path.name}: NUL or bidi control in the file"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for row in rows:
        for cell in row:
            assert not cell.startswith(tuple(FORMULA_START)), f"{path.name}: cell starts a formula: {cell[:60]!r}"
    return rows


def unprefixed(cell: str) -> str:
    """A CSV cell as the source had it, minus the neutralising quote."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in tuple(FORMULA_START) else cell


def csv_round_trips(cells: list[str], originals: list[str]) -> None:
    """Every original value is in the CSV, as typed apart from the quote and hidden characters."""
    have = {unprefixed(c) for c in cells}
    for value in originals:
        assert visible_text(value) in have, f"{value[:60]!r} lost"


_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
OUR_HTML_BLOCKS = {"<details><summary>Original definition</summary>", "</details>"}


def markdown_safe(text: str, name: str) -> str:
    """Fails when the document has markup that source text could have made; returns its rendered text."""
    assert not BIDI_OR_NUL.search(text), f"{name}: NUL or bidi control"
    assert not re.search(r"<(script|img)\b", text, re.I), f"{name}: a raw script or image tag"
    tokens = _MD.parse(text)
    for t in tokens:
        assert t.type != "html_block" or t.content.strip() in OUR_HTML_BLOCKS, f"{name}: raw HTML {t.content[:80]!r}"
        if t.type == "inline":
            kinds = {c.type for c in t.children or []}
            assert not kinds & {"link_open", "image", "html_inline", "s_open"}, f"{name}: {kinds} in {t.content[:80]!r}"
            # bare URLs and emails become links in GitHub and Dagster's renderer (not in code): escaped
            outside_code = re.sub(r"(`+).*?\1", "", t.content)
            assert not re.search(r"(?<!\\)://|(?i:www)(?<!\\)\.|(?<!\\)@", outside_code), f"{name}: autolink {t.content[:80]!r}"
    html = _MD.render(text)
    assert not re.search(r"<(script|img)\b", html, re.I), f"{name}: renders a script or image tag"
    return html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


REPORT_TAGS = {"html", "head", "meta", "title", "style", "script", "body", "h1", "h2", "p", "div", "span", "b", "i",
               "table", "thead", "tbody", "tr", "th", "td", "select", "option", "input", "section"}
REPORT_HANDLERS = {("select", "onchange"), ("input", "oninput")}


def html_safe(text: str, name: str) -> str:
    """Fails when the page has an element or handler source text could have made; returns its text."""
    assert not BIDI_OR_NUL.search(text), f"{name}: NUL or bidi control"
    assert text.lower().count("<script") == 1 and "<img" not in text.lower(), f"{name}: a raw script or image tag"
    p = _Tags()
    p.feed(text)
    tags = [t for t, _ in p.tags]
    assert set(tags) <= REPORT_TAGS and tags.count("script") == 1, f"{name}: unexpected elements {set(tags) - REPORT_TAGS}"
    handlers = {(t, a) for t, attrs in p.tags for a, _ in attrs if a.startswith("on")}
    assert handlers <= REPORT_HANDLERS, f"{name}: event handlers {handlers - REPORT_HANDLERS}"
    return "".join(p.text)


# -- the bundle --------------------------------------------------------------------------------------


def poison_bundle(bundle: Path) -> dict[str, list[str]]:
    """Put the corpus into free-text columns and into values staging quarantines; manifest re-signed.
    Returns what went where: `text` (free text that migrates), `quarantined` (values that get set aside)."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["encoding"] == "utf-8"  # the corpus needs Unicode
    placed: dict[str, list[str]] = {"text": [], "quarantined": []}

    def edit(name: str, change) -> None:
        """`change` gets the rows whose ID is unique (a duplicate row may be set aside as a whole)."""
        header, rows, enc = read_csv(bundle, name)
        ids = Counter(r[header[0]] for r in rows)
        change([r for r in rows if ids[r[header[0]]] == 1])
        write_csv(bundle, name, header, rows, enc)

    def work_orders(rows):
        for i, value in enumerate(CORPUS[: len(rows)]):
            rows[i]["Title"] = value
        rows[0]["Description"] = LONG
        for row, value in zip(rows, FORMULAS):
            row["Estimated Hours"] = value  # not a number: reported with its raw value
        rows[1]["Status"] = "[x](javascript:alert(1)) <script>alert(4)</script> | a | b |"  # a tenant status
        placed["text"] += [*CORPUS[: len(rows)], LONG]
        placed["quarantined"] += FORMULAS[: len(rows)]

    def assets(rows):
        for row, value in zip(rows, [*HTML, *MARKDOWN, *HIDDEN]):
            row["Asset Name"] = value

    def contacts(rows):
        for row, (first, last) in zip(rows, zip(CORPUS, reversed(CORPUS))):
            row["First Name"], row["Last Name"] = first, last

    def pm(rows):
        rows[0]["PM Name"] = "<img src=x onerror=alert(5)> ``` [pm](http://x) # heading"
        rows[0]["Procedure"] = LONG
        rows[0]["Recurrence Rule"] = "`` FREQ=<script>"

    def notes(rows):
        for row, value in zip(rows, CORPUS):
            row["Subject"], row["Body"] = value, f"body {value}\n# heading\n```\n</details>"

    edit("work_orders.csv", work_orders)
    edit("assets.csv", assets)
    edit("contacts.csv", contacts)
    edit("pm_schedules.csv", pm)
    edit("notes.csv", notes)
    rules = json.loads((bundle / "workflow_rules.json").read_text(encoding="utf-8"))
    rules[0]["name"] = "=HYPERLINK(\"http://x\") <script>alert(6)</script> ![i](http://x) \u202e"
    (bundle / "workflow_rules.json").write_text(json.dumps(rules, indent=2), encoding="utf-8")
    resign(bundle)
    return placed


def poison_deletions(delta: Path) -> list[str]:
    """Work orders the delta's deleted.csv lists under hostile IDs (never loaded, so deletions.csv names
    them as such), one with a hostile Deleted At; returns the IDs."""
    header, rows, enc = read_csv(delta, "deleted.csv")
    ids = [*FORMULAS, *HTML, *HIDDEN, "[x](javascript:alert(1))"]
    rows += [{"Entity": "Work Order", "ID": v, "Deleted At": "11/21/2026 10:00"} for v in ids]
    rows[-1]["Deleted At"] = "@SUM(A1)"
    write_csv(delta, "deleted.csv", header, rows, enc)
    resign(delta, {"deleted.csv": len(rows)})
    return ids

