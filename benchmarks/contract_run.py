"""The property-based contract run with a large example budget, and its report.

    .venv/bin/python benchmarks/contract_run.py [--examples 100] [--out benchmarks/results/contract_run.md]

The same run as flitstack_dagster_tests/sandbox/test_property_contract.py (schemathesis over the
pinned official OpenAPI files, every operation the sandbox serves, over real HTTP), with more
generated requests per operation. Exit code 1 when it finds a server error, an error body not in
Pipedrive's shape, or a response-schema violation other than the listed spec quirks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flitstack_dagster.sandbox.server import SandboxServer  # noqa: E402
from flitstack_dagster_tests.sandbox.conftest import NULLABLE_ERRATA, OPENAPI_DIR, Spec  # noqa: E402
from flitstack_dagster_tests.sandbox.test_property_contract import contract_run, seed  # noqa: E402


def load_spec(api: str) -> Spec:
    with open(OPENAPI_DIR / f"pipedrive-{api}-openapi.yml", encoding="utf-8") as fh:
        return Spec(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def report(rows: list[dict], examples: int) -> str:
    lines = ["# Property-based contract run", "",
             f"schemathesis over the pinned official OpenAPI files, {examples} generated requests per operation "
             "(`benchmarks/contract_run.py`).", "",
             "| API | operations | 2xx | 4xx | 5xx | server errors | error shapes | schema violations | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        f = r["findings"]
        lines.append(f"| {r['api']} | {r['operations']} | {r['statuses'].get(2, 0)} | {r['statuses'].get(4, 0)} "
                     f"| {r['statuses'].get(5, 0)} | {len(f['server errors'])} | {len(f['error shapes'])} "
                     f"| {len(f['schema violations'])} | {r['seconds']:.0f} |")
    lines += ["", "Listed spec quirks (properties Pipedrive sends as null whose schema lacks `nullable`):", ""]
    lines += [f"- `{name}`: {reason}" for name, reason in sorted(NULLABLE_ERRATA.items())]
    for r in rows:
        for kind, items in r["findings"].items():
            lines += [f"- {r['api']} {kind}: {x}" for x in items[:20]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "contract_run.md")
    args = ap.parse_args()
    rows = []
    with SandboxServer(plan="ultimate", seats=5) as sb, \
            httpx.Client(base_url=sb.base_url, headers={"x-api-token": sb.api_token}, timeout=30) as client:
        seed(client)
        for api in ("v2", "v1"):
            t0 = time.monotonic()
            ops, statuses, findings = contract_run(sb, load_spec(api), api, args.examples)
            rows.append({"api": api, "operations": len(ops), "statuses": dict(statuses), "findings": findings,
                         "seconds": time.monotonic() - t0})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(rows, args.examples), encoding="utf-8")
    print(json.dumps([{k: v for k, v in r.items() if k != "findings"} | {
        "findings": {k: len(v) for k, v in r["findings"].items()}} for r in rows]))
    return 1 if any(any(r["findings"].values()) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
