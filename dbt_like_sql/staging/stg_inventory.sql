-- Parts inventory (inventory.csv), typed; duplicate Part Numbers resolved by Date Modified; a
-- vendor account or storeroom asset not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'inventory') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Date Modified", '{{ date_order }}', '{{ timezone }}') AS __p_date_modified
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Part Number") AS part_number,
        novo_text("Description") AS description,
        novo_text("Category") AS category,
        novo_text("Unit") AS unit,
        novo_money("Unit Cost", lo := 0, hi := 1000000) AS unit_cost,
        novo_number("Qty On Hand", lo := 0) AS qty_on_hand,
        novo_number("Reorder Point", lo := 0) AS reorder_point,
        novo_id("Vendor Account ID") AS vendor_account_id,
        novo_id("Storeroom Asset ID") AS storeroom_asset_id,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified,
        novo_issues([
            novo_issue('Unit Cost', "Unit Cost", novo_money_issue("Unit Cost", lo := 0, hi := 1000000), CASE WHEN novo_money_issue("Unit Cost", lo := 0, hi := 1000000) = 'bad_money' THEN NULL ELSE 'outside the plausible range (from 0 to 1000000); staged as empty' END),
            novo_issue('Qty On Hand', "Qty On Hand", novo_number_issue("Qty On Hand", lo := 0), CASE WHEN novo_number_issue("Qty On Hand", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_issue('Reorder Point', "Reorder Point", novo_number_issue("Reorder Point", lo := 0), CASE WHEN novo_number_issue("Reorder Point", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Part Number") THEN 'Part Number' END AS _missing_column,
        CASE WHEN novo_is_null("Part Number") THEN "Part Number" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY part_number, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_vendor_account_id AS (
    SELECT DISTINCT account_id AS id FROM {{ ref('stg_accounts') }} WHERE _run_key IN {{ parent_runs }}
),
p_storeroom_asset_id AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_vendor_account_id.id IS NULL THEN NULL ELSE r.vendor_account_id END AS vendor_account_id,
        CASE WHEN p_storeroom_asset_id.id IS NULL THEN NULL ELSE r.storeroom_asset_id END AS storeroom_asset_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Vendor Account ID', r.vendor_account_id, CASE WHEN r.vendor_account_id IS NOT NULL AND p_vendor_account_id.id IS NULL THEN 'orphan_reference' END,
                       'Vendor Account ID ' || r.vendor_account_id || ' is not an account of this export (or, for a delta, an earlier run); the inventory part loads without this link'),
            novo_issue('Storeroom Asset ID', r.storeroom_asset_id, CASE WHEN r.storeroom_asset_id IS NOT NULL AND p_storeroom_asset_id.id IS NULL THEN 'orphan_reference' END,
                       'Storeroom Asset ID ' || r.storeroom_asset_id || ' is not an asset of this export (or, for a delta, an earlier run); the inventory part loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Part Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.part_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Part Number ' || r.part_number || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_vendor_account_id ON p_vendor_account_id.id = r.vendor_account_id
LEFT JOIN p_storeroom_asset_id ON p_storeroom_asset_id.id = r.storeroom_asset_id
