#!/usr/bin/env bash
# The multi-tenant rehearsal alone: PostgreSQL (installed with apt when missing), two Pipedrive sandboxes,
# a code server per tenant, the daemon and the webserver; two tenants' exports dropped at once
# (docs/deployment.md, "Rehearse it on one machine"). `make test` (.ci/run) runs it with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
exec .venv/bin/python -m pytest -q -p no:cacheprovider flitstack_dagster_tests/deployment "$@"
