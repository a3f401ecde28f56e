"""Migration run registry: keys, one bundle per key, and a delta needs an earlier run."""

import duckdb
import pytest

from flitstack_dagster.cli import main as cli_main
from flitstack_dagster.core.errors import UserError
from flitstack_dagster.novo.runs import add_run, get_run, mode_of, run_key_for


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "b"
    assert cli_main(["generate", "--work-orders", "50", "--seed", "3", "--out", str(out), "--no-mess-log"]) == 0
    return out


def test_keys_and_modes():
    assert run_key_for("full", "x-1") == "full-x-1"
    assert mode_of("delta-x-1") == "delta"
    with pytest.raises(UserError):
        mode_of("weekly-x")


def test_delta_without_an_earlier_run_is_refused(bundle, tmp_path):
    with duckdb.connect(str(tmp_path / "db.duckdb")) as con:
        with pytest.raises(UserError, match="earlier full run"):
            add_run(con, bundle, "delta", tmp_path)
        full = add_run(con, bundle, "full", tmp_path)
        assert get_run(con, full.run_key).bundle_fingerprint == full.bundle_fingerprint
        assert add_run(con, bundle, "full", tmp_path) == full  # registering again is idempotent
        assert add_run(con, bundle, "delta", tmp_path).mode == "delta"
