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
- `delta`    a delta bundle from a base bundle's CSVs
"""

from flitstack_dagster.novo.generator.options import GenOptions

__all__ = ["GenOptions", "generate"]


def generate(options: GenOptions, log=print):
    """Write the bundle `options` describe; returns the `Summary`."""
    from flitstack_dagster.novo.generator.bundle_build import generate as _generate

    return _generate(options, log=log)
