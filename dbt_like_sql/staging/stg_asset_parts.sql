-- Which parts each piece of equipment uses (asset_parts.csv), typed.
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
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty' END AS _row_message
FROM ranked r
