"""Every row of the mapping file is honoured or refused: pointed elsewhere by the lead, it either
changes what shaping produces or approval refuses it in a sentence naming the row. No edit is
silently ignored."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from flitstack_dagster.core import duck
from flitstack_dagster.mapping.activity_rows import editable
from flitstack_dagster.mapping.approval import check_approval
from flitstack_dagster.mapping.model import FieldMapping, Mapping
from flitstack_dagster.mapping.profile import profile_source
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.shaping.common import Owners, ShapeContext
from flitstack_dagster.staging.frames import read_staged
from flitstack_dagster.shaping.run import shape_all
from flitstack_dagster_tests.reliability import kit

pytestmark = pytest.mark.slow

RECORD_FILES = {"accounts": "organization", "assets": "organization", "contacts": "person", "work_orders": "deal"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rows")
    paths, run_key = kit.staged_run(tmp, 15, 3)
    with duck.connect(paths.duckdb) as con:
        profile, inputs = profile_source(con, run_key), read_staged(con, run_key)
    proposal = propose_mapping(profile)
    proposal.approved_by = "lee"  # as approved, unchanged
    for props in proposal.value_proposals.values():
        for p in props.values():
            p.confirmed = True
    ctx = ShapeContext(run_key=run_key, exported_at=datetime(2026, 10, 20, 12, tzinfo=timezone.utc),
                       timezone="America/Chicago")

    def shaped(m: Mapping) -> dict:
        out = shape_all(inputs, m, Owners.of({}, default_owner_id=1), ctx).outputs()
        return {k: sorted(v.select("source_id", "payload").rows()) if "payload" in v.columns else v.height
                for k, v in out.items()}

    assert check_approval(proposal, proposal, profile) == []
    return proposal, profile, shaped, shaped(proposal)


def _edited(proposal: Mapping, i: int, **change) -> tuple[Mapping, FieldMapping]:
    m = proposal.model_copy(deep=True)
    row = m.fields[i]
    for k, v in change.items():
        setattr(row, k, v)
    return m, row


def _has_data(profile, row: FieldMapping) -> bool:
    ep = profile.entity(row.source_entity)
    col = ep.column(row.source_column) if ep else None
    return col is not None and col.rows > col.null_count


def _payload_keys(out: dict) -> set[str]:
    return {k for v in out.values() if isinstance(v, list) for _, p in v if p for k in json.loads(p)}


def _honoured_or_refused(run, m: Mapping, row: FieldMapping) -> str:
    proposal, profile, shaped, base = run
    refused = check_approval(m, proposal, profile)
    if refused:
        assert any(f"{row.source_entity}.'{row.source_column}'" in r for r in refused), refused
        return "refused"
    assert shaped(m) != base, f"{row.source_entity}.'{row.source_column}' → {row.target_entity}.{row.target_field} " \
                              "was approved but changes nothing that loads"
    return "honoured"


def test_every_row_pointed_at_none_is_honoured_or_refused(run):
    proposal, profile, _, _ = run
    outcomes = {"honoured": 0, "refused": 0}
    for i, f in enumerate(proposal.fields):
        if f.target_entity == "none" or not _has_data(profile, f):
            continue
        m, row = _edited(proposal, i, target_entity="none", target_field=None)
        outcomes[_honoured_or_refused(run, m, row)] += 1
    assert outcomes["honoured"] >= 30 and outcomes["refused"] >= 30, outcomes  # both kinds exist in the default map


def test_a_column_not_migrated_can_become_a_custom_field_of_its_records(run):
    proposal, profile, shaped, _ = run
    tried = 0
    for i, f in enumerate(proposal.fields):
        entity = RECORD_FILES.get(f.source_entity)
        if f.target_entity != "none" or entity is None or not _has_data(profile, f):
            continue
        m, row = _edited(proposal, i, target_entity=entity, target_field=f"Novo {f.source_column}", custom=True,
                         field_type="varchar", transform="copy")
        assert check_approval(m, proposal, profile) == [], (f.source_entity, f.source_column)
        assert _payload_keys(shaped(m)) & {f"Novo {f.source_column}"}, (f.source_entity, f.source_column)
        tried += 1
    assert tried >= 5


@pytest.mark.parametrize(("file", "column", "target", "words"), [
    ("assets", "Manufacturer", ("deal", "Manufacturer"), "assets rows become organization records"),
    ("accounts", "Account Name", ("organization", "Company"), "can't be changed (the record is built from it"),
    ("contacts", "Email", ("none", None), "it can only take person.emails"),
    ("work_orders", "Status", ("none", None), "it can only take deal.stage_id"),
])
def test_an_edit_shaping_would_not_honour_is_refused_in_a_sentence(run, file, column, target, words):
    proposal, profile, _, _ = run
    i = next(i for i, f in enumerate(proposal.fields) if (f.source_entity, f.source_column) == (file, column))
    m, _ = _edited(proposal, i, target_entity=target[0], target_field=target[1], custom=target[0] != "none",
                    field_type="varchar" if target[0] != "none" else None)
    refused = check_approval(m, proposal, profile)
    assert len(refused) == 1 and words in refused[0] and refused[0].startswith(f"fields {file}.'{column}' → "), refused


def test_every_custom_value_field_can_be_renamed(run):
    proposal, profile, shaped, _ = run
    renamed = 0
    for i, f in enumerate(proposal.fields):
        if f.target_entity == "none" or not editable(f) or not _has_data(profile, f):
            continue
        m, _ = _edited(proposal, i, target_field=f"{f.target_field} (Novo)", custom=True,
                       field_type=f.field_type or "varchar")
        assert check_approval(m, proposal, profile) == [], (f.source_entity, f.source_column)
        assert f"{f.target_field} (Novo)" in _payload_keys(shaped(m)), (f.source_entity, f.source_column)
        renamed += 1
    assert renamed >= 20
