"""The production instance file, the account tag and the launcher's tenants file, checked without
starting anything (the end-to-end rehearsal is test_multitenant.py)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from flitstack_dagster.defs.run_tags import ACCOUNT_TAG, account_run_tags, pipedrive_account

REPO = Path(__file__).resolve().parents[2]
PG_ENV = {"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_PORT": "5433", "DAGSTER_PG_USERNAME": "dagster",
          "DAGSTER_PG_PASSWORD": "pw", "DAGSTER_PG_DB": "dagster"}


def _launch_module():
    spec = importlib.util.spec_from_file_location("flitstack_launch", REPO / "deploy" / "launch.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def instance_config(tmp_path, monkeypatch):
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return config


def test_instance_limits_one_run_per_account_and_per_tenant(instance_config):
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = {lim["key"]: lim for lim in instance_config["concurrency"]["runs"]["tag_concurrency_limits"]}
    for key in (ACCOUNT_TAG, "dagster/code_location"):
        assert limits[key]["limit"] == 1
        assert limits[key]["value"] == {"applyLimitPerUniqueValue": True}, "the limit must apply per account"


def test_instance_reads_postgres_from_the_environment_only(instance_config):
    raw = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    db = raw["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in db.items() if k != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    assert db["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3, which is not installed
    assert "postgres" in instance_config["storage"]


@pytest.mark.parametrize("url, account", [
    ("https://Springfield-PW.pipedrive.com", "springfield-pw.pipedrive.com"),
    ("https://springfield-pw.pipedrive.com:443/", "springfield-pw.pipedrive.com"),
    ("springfield-pw.pipedrive.com", "springfield-pw.pipedrive.com"),
    ("http://127.0.0.1:8765", "127.0.0.1_8765"),
    ("http://localhost", "localhost"),
])
def test_pipedrive_account_is_the_company_host(url, account):
    assert pipedrive_account(url) == account


def test_account_run_tags():
    assert account_run_tags({"PIPEDRIVE_BASE_URL": "https://acme.pipedrive.com", "PIPEDRIVE_API_TOKEN": "t0k"}) == {
        ACCOUNT_TAG: "acme.pipedrive.com"}
    assert account_run_tags({}) == {}
    with pytest.raises(ValueError, match="has no host"):
        pipedrive_account("https://")


def _tenants_file(tmp_path: Path, entries: list[dict]) -> Path:
    p = tmp_path / "tenants.yaml"
    p.write_text(yaml.safe_dump({"tenants": entries}))
    return p


def _entry(name: str, port: int, **kw) -> dict:
    return {"name": name, "data_dir": f"tenants/{name}", "port": port,
            "pipedrive_base_url": f"https://{name}.pipedrive.com", "pipedrive_api_token_env": f"{name.upper()}_TOKEN",
            **kw}


def test_tenants_file_makes_one_grpc_location_per_tenant(tmp_path):
    launch = _launch_module()
    tenants = launch.load_tenants(_tenants_file(tmp_path, [_entry("springfield", 4101), _entry("shelbyville", 4102)]))
    assert [t.data_dir for t in tenants] == [(tmp_path / "tenants" / n).resolve() for n in ("springfield", "shelbyville")]
    ws = yaml.safe_load(launch.workspace_yaml(tenants, "127.0.0.1"))
    assert ws == {"load_from": [
        {"grpc_server": {"host": "127.0.0.1", "port": 4101, "location_name": "springfield"}},
        {"grpc_server": {"host": "127.0.0.1", "port": 4102, "location_name": "shelbyville"}},
    ]}


@pytest.mark.parametrize("entries, message", [
    ([_entry("a", 4101), _entry("b", 4101)], "share the port"),
    ([_entry("a", 4101), _entry("a", 4102)], "share the name"),
    ([_entry("Bad-Name", 4101)], "lower-case"),
    ([{**_entry("a", 4101), "pipedrive_api_token_env": ""}], "missing pipedrive_api_token_env"),
    ([], "non-empty `tenants:`"),
])
def test_tenants_file_mistakes_are_named(tmp_path, entries, message):
    launch = _launch_module()
    with pytest.raises(launch.LaunchError, match=message):
        launch.load_tenants(_tenants_file(tmp_path, entries))


def test_each_code_server_sees_only_its_own_token(tmp_path, monkeypatch):
    launch = _launch_module()
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("A_TOKEN", "token-of-a")
    monkeypatch.setenv("B_TOKEN", "token-of-b")
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "a-stray-token")
    tenants = launch.load_tenants(_tenants_file(tmp_path, [_entry("a", 4101), _entry("b", 4102)]))
    base = launch.base_env(tenants, tmp_path / "home")
    assert not {"A_TOKEN", "B_TOKEN", "PIPEDRIVE_API_TOKEN"} & set(base), "the daemon and webserver get no token"
    env_a = launch.tenant_env(tenants[0], base)
    assert env_a["PIPEDRIVE_API_TOKEN"] == "token-of-a" and "token-of-b" not in env_a.values()
    assert env_a["FLITSTACK_DATA_DIR"] == str(tenants[0].data_dir)
    assert env_a["DAGSTER_HOME"] == str(tmp_path / "home")
    monkeypatch.delenv("B_TOKEN")
    with pytest.raises(launch.LaunchError, match="set B_TOKEN"):
        launch.tenant_env(tenants[1], base)


def test_launcher_needs_the_postgres_settings(tmp_path, monkeypatch):
    launch = _launch_module()
    for k in PG_ENV:
        monkeypatch.delenv(k, raising=False)
    tenants = launch.load_tenants(_tenants_file(tmp_path, [_entry("a", 4101)]))
    with pytest.raises(launch.LaunchError, match="DAGSTER_PG_HOST, DAGSTER_PG_PORT"):
        launch.base_env(tenants, tmp_path)
