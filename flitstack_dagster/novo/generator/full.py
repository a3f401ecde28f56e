"""A full bundle: builds the world and streams every entity into the bundle's files."""

from __future__ import annotations

import time
from pathlib import Path

from flitstack_dagster.novo.generator import config_files, udfs
from flitstack_dagster.novo.generator.bundle_build import Bundle, Log, Summary, prepare_out, zone
from flitstack_dagster.novo.generator.options import DEFAULT_EXPORTED_AT, GenOptions, parse_instant
from flitstack_dagster.novo.generator.world import World


def generate_full(opts: GenOptions, log: Log = print) -> Summary:
    """Write a full bundle: every entity of a freshly built world."""
    started = time.perf_counter()
    tz = zone(opts.timezone)
    exported = parse_instant(opts.exported_at or DEFAULT_EXPORTED_AT)
    root = prepare_out(Path(opts.out), opts.force)
    counts = opts.counts
    log(f"generating a full bundle: {counts.work_orders:,} work orders, seed {opts.seed}, mess {opts.mess} -> {root}")
    world = World(opts.seed, tz, exported, opts.date_order, opts.encoding)
    world.build(counts)
    n = counts.work_orders
    expected = {"departments.csv": len(world.departments), "accounts.csv": counts.accounts,
                "contacts.csv": counts.contacts, "assets.csv": counts.assets, "inventory.csv": counts.inventory,
                "pm_schedules.csv": counts.pm_schedules, "work_orders.csv": n, "labor.csv": 2 * n,
                "status_log.csv": 3 * n, "notes.csv": n // 2, "parts_used.csv": n // 2,
                "attachments.csv": n // 20, "pm_history.csv": counts.pm_schedules,
                "asset_parts.csv": counts.assets // 10}
    b = Bundle(opts, root, "full", exported, None, tz, opts.tenant, opts.encoding, opts.date_order, opts.timezone,
               expected, world.new_id, log)
    s = b.sinks
    fmt = world.fmt("user_defined_fields")
    for row in udfs.udf_rows(fmt):
        s["user_defined_fields"].write(row)
    world.write_departments(s["departments"])
    world.write_accounts(s["accounts"])
    world.write_contacts(s["contacts"])
    world.write_assets(s)
    world.write_inventory(s)
    world.write_pms(s)
    world.write_work_orders(s, n, progress=lambda i: log(f"  … {i:,} / {n:,} work orders"))
    rules = config_files.workflow_rules(opts.seed, [d.id for d in world.internal_depts()],
                                        [c.id for c in world.technicians])
    summary = b.finish(rules, config_files.form_configurations(opts.seed), started)
    return summary
