"""The mapping as a readable, diff-able YAML file (and a markdown table), and back.

Layout, always in the same order: approval stamp, options, pipeline stages, status map (one line per
status, `null` = unmapped, marked with a comment), value maps (one line per value), objects, and
fields grouped by source file (one block per source column). Loading validates against the
`Mapping` model and names the file and the bad key in the error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.model import FieldMapping, Mapping, ValueProposal
from flitstack_dagster.mapping.value_proposals import CONFIDENT, describe_status
from flitstack_dagster.core.safe_text import md_text

HEADER = """\
# FlitStack mapping: Novo Work Order -> Pipedrive
#
# {what}
# Field names are Pipedrive *names* (the account's keys live in the field registry).
# status_map: Novo status -> {{stage, status: open|won|lost, lost_reason}}; null = unmapped (blocks the load).
# value_maps: "<entity>.<column>" -> {{source value: Pipedrive option label}}; null = unmapped (blocks
#   the load), "" = leave the field empty on purpose.
#   "notes.Entry Type" maps an activity-log entry type to an activity type ("" = kept as a note).
# Labor, parts and PM rows are honoured as written: `Labor ID` / `Line ID` / `PM ID` name the activity type
#   in their options; a detail column goes to its activity field, activity.note or none. A row that can't
#   be changed that way is refused at approval, naming the targets it can take.
# value_proposals: why each value seen got its target (confidence, reason). A proposal below {confident}
#   needs your decision: set its `confirmed: true`, or change the target in status_map / value_maps.
# Edit mapping/approved.yaml (never the proposal) and run `flitstack mapping approve --by NAME`, or give
#   your decisions to the `approve_mapping` job in the Dagster UI.
"""
UNMAPPED = "  # UNMAPPED: set a target"
DECIDE = "  # DECIDE: proposed with confidence {c:.2f} - confirm it in value_proposals or change the target"

STATUS_KEY = "work_orders.Status"  # value_proposals key of the status map
_FIELD_KEYS = ("source_entity", "source_column", "target_entity", "target_field", "custom", "field_type", "options",
               "transform", "confidence", "reason")


def _s(v: Any) -> str:
    """One YAML scalar / flow collection on one line."""
    out = yaml.safe_dump(v, default_flow_style=True, allow_unicode=True, width=10**9, sort_keys=False)
    out = out.strip()
    if out.endswith("\n..."):
        out = out[:-4].strip()
    elif out.endswith("..."):
        out = out[:-3].strip()
    return out


def dump_mapping(mapping: Mapping, what: str = "Proposed mapping (generated; do not edit).") -> str:
    d = mapping.model_dump(mode="json")
    lines = [HEADER.format(what=what, confident=CONFIDENT)]
    lines.append(f"version: {d['version']}")
    for k in ("approved_by", "approved_at", "record_plan", "archive_before", "proposal_hash", "profile_hash"):
        lines.append(f"{k}: {_s(d[k])}")
    lines.append("")
    lines.append("options:")
    for k, v in d["options"].items():
        lines.append(f"  {k}: {_s(v)}")
    lines.append("")
    lines.append(f"pipeline_stages: {_s(d['pipeline_stages'])}")
    lines.append("")
    lines.append("status_map:" + ("" if d["status_map"] else " {}"))
    for k, v in d["status_map"].items():
        if v is None:
            lines.append(f"  {_s(k)}: null{UNMAPPED}")
        else:
            v = {kk: vv for kk, vv in v.items() if not (kk == "lost_reason" and vv is None)}
            lines.append(f"  {_s(k)}: {_s(v)}" + _decide(mapping, STATUS_KEY, k))
    lines.append("")
    lines.append("value_maps:" + ("" if d["value_maps"] else " {}"))
    for key, vm in d["value_maps"].items():
        lines.append(f"  {_s(key)}:" + ("" if vm else " {}"))
        for k, v in vm.items():
            lines.append(f"    {_s(k)}: {_s(v)}" + (UNMAPPED if v is None else _decide(mapping, key, k)))
    lines.append("")
    lines.append("value_proposals:" + ("" if d["value_proposals"] else " {}"))
    for key, props in d["value_proposals"].items():
        lines.append(f"  {_s(key)}:")
        for k, v in props.items():
            lines.append(f"    {_s(k)}: {_s(v)}")
    lines.append("")
    lines.append("objects:" + ("" if d["objects"] else " []"))
    for o in d["objects"]:
        lines.append(f"  - {_s(o)}")
    lines.append("")
    lines.append("fields:" + ("" if d["fields"] else " []"))
    last = None
    for f in d["fields"]:
        if f["source_entity"] != last:
            last = f["source_entity"]
            lines.append(f"  # ---- {last}")
        first = True
        for k in _FIELD_KEYS:
            v = f[k]
            if k == "options" and not v:
                continue
            if k == "field_type" and v is None:
                continue
            lines.append(f"  {'- ' if first else '  '}{k}: {_s(v)}")
            first = False
    return "\n".join(lines) + "\n"


def _decide(mapping: Mapping, key: str, value: str) -> str:
    """The comment marking a value whose proposal still needs the lead's decision."""
    return DECIDE.format(c=p.confidence) if (p := needs_decision(mapping, key, value)) is not None else ""


def needs_decision(mapping: Mapping, key: str, value: str) -> ValueProposal | None:
    """The proposal behind `value` when it is below the threshold, unconfirmed and still the target."""
    p = mapping.value_proposals.get(key, {}).get(value)
    if p is None or p.confirmed or p.confidence >= CONFIDENT:
        return None
    if key == STATUS_KEY:
        current = describe_status(mapping.status_map.get(value))
    else:
        t = mapping.value_maps.get(key, {}).get(value)
        current = "unmapped" if t is None else t
    return p if current == p.proposed else None


def _md(s: Any) -> str:
    return md_text(s, limit=500)


def mapping_markdown(mapping: Mapping, title: str = "Proposed mapping") -> str:
    out = [f"# {title}", ""]
    un = mapping.unmapped()
    if un:
        out += ["## Unmapped (blocks the load until confirmed)", ""] + [f"- {_md(u)}" for u in un] + [""]
    dn = decisions_needed(mapping)
    if dn:
        out += ["## Needs your decision (proposed with low confidence)", ""] + [f"- {_md(u)}" for u in dn] + [""]
    out += ["## Objects", "", "| Novo | Pipedrive | cardinality | how |", "| --- | --- | --- | --- |"]
    out += [f"| {_md(o.source)} | {_md(o.target)} | {o.cardinality} | {_md(o.how)} |" for o in mapping.objects]
    out += ["", "## Fields", "",
            "| source | column | target | field | new field type | options | transform | confidence | reason |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in mapping.fields:
        out.append(
            f"| {f.source_entity} | {_md(f.source_column)} | {f.target_entity} | {_md(f.target_field)} | "
            f"{_md(f.field_type) if f.custom else ''} | {_md(', '.join(f.options))} | {_md(f.transform)} | "
            f"{f.confidence:.2f} | {_md(f.reason)} |"
        )
    out += ["", "## Work-order status → stage", "",
            "| Novo status | stage | deal status | lost reason | confidence | reason |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s, t in mapping.status_map.items():
        out.append((f"| {_md(s)} | **unmapped** | | " if t is None
                    else f"| {_md(s)} | {_md(t.stage)} | {t.status} | {_md(t.lost_reason)} ") + _md_why(mapping, STATUS_KEY, s))
    for key, vm in mapping.value_maps.items():
        out += ["", f"## {_md(key)}", "", "| Novo value | Pipedrive option | decision | confidence | reason |",
                "| --- | --- | --- | --- | --- |"]
        for v, t in vm.items():
            p = mapping.value_proposals.get(key, {}).get(v)
            out.append(f"| {_md(v)} | {'**unmapped**' if t is None else ('(empty)' if t == '' else _md(t))} | "
                       f"{p.decision if p else ''} " + _md_why(mapping, key, v))
    return "\n".join(out) + "\n"


def _md_why(mapping: Mapping, key: str, value: str) -> str:
    """The confidence and reason cells of one value (bold when it needs the lead's decision)."""
    p = mapping.value_proposals.get(key, {}).get(value)
    if p is None:
        return "| | |"
    conf = f"**{p.confidence:.2f} — decide**" if needs_decision(mapping, key, value) else f"{p.confidence:.2f}"
    return f"| {conf} | {_md(p.reason)} |"


def decisions_needed(mapping: Mapping, seen: dict[str, dict[str, int]] | None = None) -> list[str]:
    """Every value proposed below the confidence threshold that the lead has not decided yet (of the
    values in `seen`, the profile's value sets, when given)."""
    out: list[str] = []
    for key, props in mapping.value_proposals.items():
        for v, p in props.items():
            if seen is not None and v not in seen.get(key, {}):
                continue
            if needs_decision(mapping, key, v) is not None:
                what = f"work order status '{v}'" if key == STATUS_KEY else f"{key} value '{v}'"
                out.append(f"{what} is proposed → {p.proposed or '(empty)'} with confidence {p.confidence:.2f} "
                           f"({p.reason}): confirm it (value_proposals['{key}']['{v}'].confirmed: true) or set "
                           f"its target yourself")
    return out


def write_mapping(path: Path | str, mapping: Mapping, what: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_mapping(mapping, what), encoding="utf-8")
    tmp.replace(p)
    return p


def write_proposal(path: Path | str, mapping: Mapping, markdown: bool = True) -> Path:
    """Write the proposal YAML (and `<name>.md` next to it)."""
    p = write_mapping(path, mapping, "Proposed mapping (generated; do not edit - copy to approved.yaml).")
    if markdown:
        p.with_suffix(".md").write_text(mapping_markdown(mapping), encoding="utf-8")
    return p


def _loc(data: Any, loc: tuple) -> str:
    """A readable path to the bad key: fields[12] (work_orders.Status).target_entity."""
    parts: list[str] = []
    cur = data
    for i, k in enumerate(loc):
        if isinstance(k, int):
            label = f"[{k}]"
            if isinstance(cur, list) and 0 <= k < len(cur) and isinstance(cur[k], dict) and i == 1 and loc[0] == "fields":
                f = cur[k]
                label += f" ({f.get('source_entity')}.{f.get('source_column')})"
            parts.append(label)
        else:
            ks = str(k)
            parts.append(f"[{ks!r}]" if (" " in ks or "." in ks) else ("." if parts else "") + ks)
        try:
            cur = cur[k]
        except Exception:  # noqa: BLE001
            cur = None
    return "".join(parts)


def _safe_load(text: str) -> Any:
    """libyaml's safe loader when present (the pure-Python one takes ~0.4 s per approved mapping at scale);
    on an error the pure-Python loader parses again so the message (line, column, problem) stays the same."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def parse_mapping(text: str, source: str = "<mapping>") -> Mapping:
    try:
        data = _safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"mapping file {source}:{where} is not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise UserError(f"mapping file {source}: expected a YAML mapping at the top level")
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            where = _loc(data, tuple(err["loc"]))
            if err["type"] == "extra_forbidden":
                msgs.append(f"{where}: unknown key")
            else:
                got = err.get("input")
                got_s = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
                msgs.append(f"{where}: {err['msg']}{got_s}")
        raise UserError(f"mapping file {source} is invalid:\n  " + "\n  ".join(msgs)) from None


def load_mapping(path: Path | str) -> Mapping:
    p = Path(path)
    if not p.exists():
        raise UserError(f"mapping file {p} does not exist")
    return parse_mapping(p.read_text(encoding="utf-8"), str(p))


def field_key(f: FieldMapping) -> str:
    return f"{f.source_entity}.{f.source_column} -> {f.target_entity}.{f.target_field}"


__all__ = ["decisions_needed", "dump_mapping", "needs_decision", "load_mapping", "mapping_markdown", "parse_mapping", "write_mapping", "write_proposal"]
