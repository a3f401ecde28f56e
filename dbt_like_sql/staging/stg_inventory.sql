-- Parts inventory (inventory.csv), typed; duplicate Part Numbers resolved by Date Modified; a
-- vendor account or storeroom asset not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Vendor Account ID', 'stg_accounts.account_id', 'an account'),
    link('Storeroom Asset ID', 'stg_assets.asset_id', 'an asset'),
] -%}
WITH {{ run_rows('inventory') }},
{{ parsed_once(datetimes=['Date Modified']) }},
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
        {{ missing_required('Part Number') }}
    FROM parsed
),
{{ staged_rows(links, 'Part Number', 'Date Modified', record='inventory part') }}
