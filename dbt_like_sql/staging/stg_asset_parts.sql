-- Which parts each piece of equipment uses (asset_parts.csv), typed; a link whose asset or part is
-- not in the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Asset ID', 'stg_assets.asset_id', 'an asset', required=True),
    link('Part Number', 'stg_inventory.part_number', 'an inventory part', required=True),
] -%}
WITH {{ run_rows('asset_parts') }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Asset ID") AS asset_id,
        novo_id("Part Number") AS part_number,
        novo_number("Qty Required", lo := 0) AS qty_required,
        novo_issues([
            novo_issue('Qty Required', "Qty Required", novo_number_issue("Qty Required", lo := 0), CASE WHEN novo_number_issue("Qty Required", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END)
        ]) AS _issues,
        {{ missing_required('Asset ID', 'Part Number') }}
    FROM src
),
{{ staged_rows(links) }}
