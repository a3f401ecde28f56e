"""The field-level diff report: one self-contained HTML file (inline CSS and JS, no network), source
value vs destination value for every mapped field of every verified record, grouped by entity, the
differences first, with filters by entity, outcome and text. Every value is escaped (safe_text.html_text)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from flitstack_dagster.core.safe_text import HTML_CELL_LIMIT, html_text
from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.verification.verify import VerificationResult, field_summary

ORDER = {"mismatch": 0, "missing": 1, "match": 2}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.v{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;max-width:40em}
tr.mismatch td.o{background:#fdd;font-weight:bold}tr.missing td.o{background:#fec;font-weight:bold}
tr.match td.o{color:#2a7}tr.accepted td.o{background:#eef}
.cards span{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:6px 10px;margin:0 8px 8px 0}
.bad{color:#b00;font-weight:bold}.ok{color:#2a7;font-weight:bold}
#filters{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #ddd}
"""

JS = """
function applyFilters(){
  var ent=document.getElementById('f-entity').value, out=document.getElementById('f-outcome').value;
  var q=document.getElementById('f-text').value.toLowerCase(), shown=0;
  document.querySelectorAll('section.entity').forEach(function(sec){
    var any=0;
    sec.querySelectorAll('tbody tr').forEach(function(tr){
      var ok=(!ent||tr.dataset.entity===ent)&&(!out||(out==='differences'?tr.dataset.outcome!=='match':tr.dataset.outcome===out))
        &&(!q||tr.textContent.toLowerCase().indexOf(q)>=0);
      tr.style.display=ok?'':'none'; if(ok){any++;shown++;}
    });
    sec.style.display=any?'':'none';
  });
  document.getElementById('f-count').textContent=shown+' rows shown';
}
document.addEventListener('DOMContentLoaded',applyFilters);
"""


def write_field_diff_report(result: VerificationResult, path: Path, *, max_match_rows: int = 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, max_match_rows=max_match_rows), encoding="utf-8")
    return path


def render(result: VerificationResult, *, max_match_rows: int = 5000) -> str:
    d = result.field_diff
    s = result.summary()
    verdict = ("<span class=ok>zero unexplained mismatches</span>" if result.clean
               else f"<span class=bad>{s['unexplained']} unexplained differences, {s['duplicates']} duplicate Source IDs"
               + (f", stopped: {html_text(result.stopped)}" if result.stopped else "") + "</span>")
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           f"<title>Field-level diff — {html_text(result.run_key)}</title><style>{CSS}</style><script>{JS}</script></head><body>",
           f"<h1>Field-level diff — {html_text(result.run_key)}</h1>",
           (f"<p>Source value (what shaping intended, in this account's terms) vs destination value (read back from "
           f"Pipedrive). Result: {verdict}. Values longer than {HTML_CELL_LIMIT:,} characters are cut here; DuckDB's "
           f"verification.field_diff holds them whole.</p><div class=cards>")]
    for label, key in (("records", "records"), ("fields compared", "fields"), ("match", "matches"),
                       ("mismatch", "mismatches"), ("missing", "missing"), ("accepted", "accepted"), ("tokens", "tokens")):
        out.append(f"<span>{label}: <b>{s[key]:,}</b></span>")
    out.append("</div>")
    out += _summary_table(d)
    out += _duplicates(result.duplicates)
    order = ENTITIES.load_order
    entities = [e for e in order if e in set(d["entity"])] if d.height else []
    bad_count = {e: d.filter((pl.col("entity") == e) & (pl.col("outcome") != "match")).height for e in entities}
    entities.sort(key=lambda e: (-bad_count[e], order.index(e)))
    out.append("<div id=filters>Entity <select id=f-entity onchange=applyFilters()><option value=''>all</option>"
               + "".join(f"<option>{html_text(e)}</option>" for e in entities) + "</select> Outcome "
               "<select id=f-outcome onchange=applyFilters()><option value=''>all</option>"
               "<option value=differences>differences only</option><option>mismatch</option><option>missing</option>"
               "<option>match</option></select> Search <input id=f-text oninput=applyFilters() placeholder='source id, field, value'> "
               "<span id=f-count></span></div>")
    for e in entities:
        rows = (d.filter(pl.col("entity") == e)
                .with_columns(pl.col("outcome").replace_strict(ORDER, default=3).alias("_o"))
                .sort("_o", "source_id", "field"))
        matches = rows.filter(pl.col("outcome") == "match")
        cut = max(0, matches.height - max_match_rows)
        if cut:
            rows = pl.concat([rows.filter(pl.col("outcome") != "match"), matches.head(max_match_rows)])
        out.append(f"<section class=entity id='entity-{html_text(e)}'><h2>{html_text(e)} — {bad_count[e]} differences</h2>")
        if cut:
            out.append(f"<p>{cut:,} matching fields not shown (all are in DuckDB: verification.field_diff).</p>")
        out.append("<table><thead><tr><th>source id</th><th>Pipedrive id</th><th>field</th><th>source value</th>"
                   "<th>destination value</th><th>outcome</th><th>note</th></tr></thead><tbody>")
        for r in rows.iter_rows(named=True):
            cls = r["outcome"] + (" accepted" if r["accepted"] else "")
            note = r["accepted"] and f"accepted: {r['accepted']}" or r["note"] or ""
            out.append(f"<tr class='{cls}' data-entity='{html_text(e)}' data-outcome='{r['outcome']}'>"
                       f"<td>{html_text(r['source_id'])}</td><td>{r['pipedrive_id'] or ''}</td><td>{html_text(r['field'])}</td>"
                       f"<td class=v>{_v(r['expected'])}</td><td class=v>{_v(r['actual'])}</td>"
                       f"<td class=o>{r['outcome']}</td><td>{html_text(note)}</td></tr>")
        out.append("</tbody></table></section>")
    if not entities:
        out.append("<p>No migrated records to compare in this run.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def _table(opening: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """`opening` (heading and `<table>` tag) with the header row, one line per row of cells (escaped by
    the caller), and the closing tags."""
    out = [opening + "<thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cells in rows]
    out.append("</tbody></table>")
    return out


def _summary_table(d: pl.DataFrame) -> list[str]:
    return _table(
        "<h2>Per entity and field</h2><table class=summary>",
        ("entity", "field", "match", "mismatch", "missing", "accepted", "example"),
        ((html_text(r["entity"]), html_text(r["field"]), r["match"], r["mismatch"], r["missing"], r["accepted"],
          html_text(r["example"])) for r in field_summary(d).iter_rows(named=True)),
    )


def _duplicates(dups: pl.DataFrame) -> list[str]:
    if dups.height == 0:
        return ["<p>No two Pipedrive records share a Novo Source ID.</p>"]
    return _table(
        "<h2 class=bad>Duplicate Novo Source IDs</h2><table>",
        ("entity", "Novo Source ID", "Pipedrive ids", "in this run"),
        ((html_text(r["entity"]), html_text(r["source_value"]), html_text(r["pipedrive_ids"]),
          "yes" if r["in_run"] else "no") for r in dups.iter_rows(named=True)),
    )


def _v(v: str | None) -> str:
    return "<i>(empty)</i>" if v is None else html_text(v)
