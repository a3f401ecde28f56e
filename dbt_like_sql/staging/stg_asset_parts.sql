-- Which parts each piece of equipment uses (asset_parts.csv), typed; a link whose asset or part is
-- not in the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'asset_parts') }}
    WHERE _run_key = '{{ run_key }}'
),
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
        CASE WHEN novo_is_null("Asset ID") THEN 'Asset ID'
             WHEN novo_is_null("Part Number") THEN 'Part Number' END AS _missing_column,
        CASE WHEN novo_is_null("Asset ID") THEN "Asset ID"
             WHEN novo_is_null("Part Number") THEN "Part Number" END AS _missing_raw
    FROM src
),
ranked AS (
    SELECT *,
        _row_number AS _winner
    FROM typed
),
p_asset_id AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
),
p_part_number AS (
    SELECT DISTINCT part_number AS id FROM {{ ref('stg_inventory') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN p_asset_id.id IS NULL AND r.asset_id IS NOT NULL THEN 'orphan_reference'
         WHEN p_part_number.id IS NULL AND r.part_number IS NOT NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN p_asset_id.id IS NULL AND r.asset_id IS NOT NULL THEN 'Asset ID'
         WHEN p_part_number.id IS NULL AND r.part_number IS NOT NULL THEN 'Part Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN p_asset_id.id IS NULL AND r.asset_id IS NOT NULL THEN r.asset_id
         WHEN p_part_number.id IS NULL AND r.part_number IS NOT NULL THEN r.part_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN p_asset_id.id IS NULL AND r.asset_id IS NOT NULL THEN 'Asset ID ' || r.asset_id || ' is not an asset of this export (or, for a delta, an earlier run)'
         WHEN p_part_number.id IS NULL AND r.part_number IS NOT NULL THEN 'Part Number ' || r.part_number || ' is not an inventory part of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_asset_id ON p_asset_id.id = r.asset_id
LEFT JOIN p_part_number ON p_part_number.id = r.part_number
