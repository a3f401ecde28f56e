-- Parts used on work orders (parts_used.csv), typed; a line whose WO Number is not a work order of
-- the run is quarantined; an unknown Part Number is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'parts_used') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates and amounts parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_number_parse("Quantity") AS __p_quantity,
        novo_money_parse("Unit Cost") AS __p_unit_cost
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Line ID") AS line_id,
        novo_id("WO Number") AS wo_number,
        novo_id("Part Number") AS part_number,
        novo_number_of(__p_quantity, lo := 0, hi := 100000) AS quantity,
        novo_money_of(__p_unit_cost, lo := 0, hi := 1000000) AS unit_cost,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_issues([
            novo_issue('Quantity', "Quantity", novo_number_issue_of("Quantity", __p_quantity, lo := 0, hi := 100000), CASE WHEN novo_number_issue_of("Quantity", __p_quantity, lo := 0, hi := 100000) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0 to 100000); staged as empty' END),
            novo_issue('Unit Cost', "Unit Cost", novo_money_issue_of("Unit Cost", __p_unit_cost, lo := 0, hi := 1000000), CASE WHEN novo_money_issue_of("Unit Cost", __p_unit_cost, lo := 0, hi := 1000000) = 'bad_money' THEN NULL ELSE 'outside the plausible range (from 0 to 1000000); staged as empty' END),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Line ID") THEN 'Line ID'
             WHEN novo_is_null("WO Number") THEN 'WO Number' END AS _missing_column,
        CASE WHEN novo_is_null("Line ID") THEN "Line ID"
             WHEN novo_is_null("WO Number") THEN "WO Number" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY line_id, _missing_column IS NULL ORDER BY date_added DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_wo_number AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_part_number AS (
    SELECT DISTINCT part_number AS id FROM {{ ref('stg_inventory') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_part_number.id IS NULL THEN NULL ELSE r.part_number END AS part_number,
        novo_issues(list_concat(r._issues, [
            novo_issue('Part Number', r.part_number, CASE WHEN r.part_number IS NOT NULL AND p_part_number.id IS NULL THEN 'orphan_reference' END,
                       'Part Number ' || r.part_number || ' is not an inventory part of this export (or, for a delta, an earlier run); the part used loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Line ID'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.line_id
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN r.wo_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Line ID ' || r.line_id || ': row ' || r._winner || ' wins (latest Date Added, ties: last row in the file)'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number ' || r.wo_number || ' is not a work order of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_wo_number ON p_wo_number.id = r.wo_number
LEFT JOIN p_part_number ON p_part_number.id = r.part_number
