"""The import contracts in pyproject.toml hold: no Dagster in domain packages, stages import only down the
flow, no import cycles — and every package of the project is covered by them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import flitstack_dagster

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The Dagster side: the code location, its wiring, and the CLI that calls into it.
DAGSTER_SIDE = {"defs", "definitions", "cli"}


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = _lint(REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_package_outside_the_dagster_side_is_a_domain_package_under_the_contract():
    root = Path(flitstack_dagster.__file__).parent
    packages = {p.stem for p in root.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    domain = {m.removeprefix("flitstack_dagster.") for m in _contracts()["no-dagster-in-domain"]["source_modules"]}
    assert packages - DAGSTER_SIDE == domain


def test_a_broken_contract_is_reported(tmp_path):
    """The linter reads the real graph: forbidding an import the code makes fails."""
    config = tmp_path / "broken.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "flitstack_dagster"\n\n'
        '[[tool.importlinter.contracts]]\nname = "landing without core"\ntype = "forbidden"\n'
        'source_modules = ["flitstack_dagster.novo"]\nforbidden_modules = ["flitstack_dagster.core"]\n',
        encoding="utf-8")
    result = _lint(config)
    assert result.returncode != 0
    assert "landing without core BROKEN" in result.stdout
