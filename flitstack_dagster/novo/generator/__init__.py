"""Synthetic Novo Work Order export bundles (`flitstack generate`): plain Python, no Dagster.

- `options`  the knobs (`GenOptions`) and derived entity counts
- `pools`    word lists: names, streets, departments, equipment, phrases
- `fmt`      how values are written (mixed date, money, number and yes/no forms of the spec)
- `world`    the entity model: small entities in memory, work orders and their children streamed
- `udfs`     the tenant's user defined fields (every Data Type for each UDF entity) and their values
- `bodies`   tiny valid attachment bodies (PNG, PDF, text), deterministic
- `config_files` workflow_rules.json and form_configurations.json
- `mess`     injects each problem of the spec's "What real exports get wrong" at a known rate
- `writers`  streaming CSV sinks that count records, bytes and SHA-256 while writing; body writer
- `bundle_build` output folder, sinks, manifest, mess log beside the bundle, deterministic zip
- `full`     a full bundle from a freshly built world
- `delta`    a delta bundle from a base bundle's CSVs
"""

from flitstack_dagster.novo.generator.options import GenOptions

__all__ = ["GenOptions", "generate"]


def generate(options: GenOptions, log=print):
    """Write the bundle `options` describe (a delta of `delta_from` when set); returns the `Summary`."""
    options.validate()
    if options.delta_from is not None:
        from flitstack_dagster.novo.generator.delta import generate_delta

        return generate_delta(options, log)
    from flitstack_dagster.novo.generator.full import generate_full

    return generate_full(options, log)
