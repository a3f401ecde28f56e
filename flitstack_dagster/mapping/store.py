"""Where mapping artifacts live: per-run JSON (profile, audit, owners) and the proposed/approved YAML.

`<data>/mapping/proposed.yaml` is what the product proposes; `<data>/mapping/approved.yaml` is what
the user confirmed (edited by hand or written by `flitstack mapping approve`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.mapping.audit import AccountAudit
from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.mapping.owners import OwnerResolution
from flitstack_dagster.mapping.profile import SourceProfile
from flitstack_dagster.mapping.propose import propose_mapping
from flitstack_dagster.mapping.yamlio import load_mapping
from flitstack_dagster.core.settings import Paths


def mapping_dir(paths: Paths) -> Path:
    d = paths.root / "mapping"
    d.mkdir(parents=True, exist_ok=True)
    return d


def proposed_path(paths: Paths) -> Path:
    return mapping_dir(paths) / "proposed.yaml"


def approved_path(paths: Paths) -> Path:
    return mapping_dir(paths) / "approved.yaml"


def _run_file(paths: Paths, run_key: str, name: str) -> Path:
    d = paths.reports / run_key
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _save(paths: Paths, run_key: str, name: str, obj: BaseModel) -> Path:
    p = _run_file(paths, run_key, name)
    p.write_text(obj.model_dump_json(indent=2), encoding="utf-8")
    return p


def _load(paths: Paths, run_key: str, name: str, cls: type[BaseModel], asset: str):
    p = _run_file(paths, run_key, name)
    if not p.exists():
        raise UserError(f"{p.name} for run {run_key} is missing: materialize `{asset}` first")
    return cls.model_validate_json(p.read_text(encoding="utf-8"))


def save_profile(paths: Paths, run_key: str, profile: SourceProfile) -> Path:
    return _save(paths, run_key, "source_profile.json", profile)


def load_profile(paths: Paths, run_key: str) -> SourceProfile:
    return _load(paths, run_key, "source_profile.json", SourceProfile, "source_profile")


def save_audit(paths: Paths, run_key: str, audit: AccountAudit) -> Path:
    return _save(paths, run_key, "account_audit.json", audit)


def load_audit(paths: Paths, run_key: str) -> AccountAudit:
    return _load(paths, run_key, "account_audit.json", AccountAudit, "pipedrive_account_audit")


def save_owners(paths: Paths, run_key: str, owners: OwnerResolution) -> Path:
    return _save(paths, run_key, "owners.json", owners)


def load_owners(paths: Paths, run_key: str) -> OwnerResolution:
    return _load(paths, run_key, "owners.json", OwnerResolution, "owner_resolution")


def load_approved(paths: Paths) -> Mapping | None:
    p = approved_path(paths)
    return load_mapping(p) if p.exists() else None


def load_proposed(paths: Paths) -> Mapping | None:
    p = proposed_path(paths)
    return load_mapping(p) if p.exists() else None


def current_mapping(paths: Paths, profile: SourceProfile, audit: AccountAudit | None) -> Mapping:
    """The mapping a run's estimates price: the approved one, else the stored proposal when it was made from
    this bundle's shape, else a fresh proposal (the data folder's proposal may be another run's)."""
    proposed = load_proposed(paths)
    if proposed is not None and proposed.profile_hash != profile.profile_hash:
        proposed = None
    return load_approved(paths) or proposed or propose_mapping(profile, audit)


def require_approved(paths: Paths) -> Mapping:
    m = load_approved(paths)
    if m is None or not m.approved_by:
        raise UserError(f"no approved mapping at {approved_path(paths)}: run `flitstack mapping approve --by NAME`")
    return m
