"""Value-proposal score on the labelled corpus of generated tenants.

    .venv/bin/python benchmarks/proposal_score.py [-v]

Prints, per tenant and kind (status, priority, list value, role, request = work-order type, entry =
activity-log entry type → activity type or note), how many proposals match the
label, the overall share, and how many closed stages were proposed confidently for open work orders
(must be 0). `-v` also prints every miss and every low-confidence proposal with its reason.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flitstack_dagster.mapping.value_proposals import CONFIDENT  # noqa: E402
from flitstack_dagster_tests.mapping.proposal_corpus import score  # noqa: E402


def main(verbose: bool = False) -> int:
    out = score()
    by: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for o in out:
        by[(o.tenant, o.kind)].append(o.right)
    print(f"{'tenant':<15}{'kind':<10}{'right':>8}")
    for (tenant, kind), rights in sorted(by.items()):
        print(f"{tenant:<15}{kind:<10}{sum(rights):>4}/{len(rights):<3}")
    right = sum(o.right for o in out)
    unsafe = [o for o in out if o.closed_for_open]
    low = [o for o in out if o.confidence < CONFIDENT]
    print(f"\nright: {right}/{len(out)} = {100 * right / len(out):.1f}%   "
          f"closed stage for open work orders with confidence >= {CONFIDENT}: {len(unsafe)}   "
          f"left for a decision (confidence < {CONFIDENT}): {len(low)}")
    if verbose:
        for o in out:
            if not o.right or o.closed_for_open or o.confidence < CONFIDENT:
                mark = "MISS" if not o.right else ("UNSAFE" if o.closed_for_open else "decide")
                print(f"  {mark:<6} {o.tenant}/{o.kind} {o.value!r} -> {o.proposed!r} "
                      f"(expected {o.expected!r}, {o.confidence:.2f}): {o.reason}")
    return 0 if right / len(out) >= 0.95 and not unsafe else 1


if __name__ == "__main__":
    sys.exit(main("-v" in sys.argv[1:]))
