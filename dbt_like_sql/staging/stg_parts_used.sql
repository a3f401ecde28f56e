-- Parts used on work orders (parts_used.csv), typed; a line whose WO Number is not a work order of
-- the run is quarantined; an unknown Part Number is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('WO Number', 'stg_work_orders.wo_number', 'a work order', required=True),
    link('Part Number', 'stg_inventory.part_number', 'an inventory part'),
] -%}
WITH {{ run_rows('parts_used') }},
{{ parsed_once(datetimes=['Date Added'], numbers=['Quantity'], money=['Unit Cost']) }},
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
        {{ missing_required('Line ID', 'WO Number') }}
    FROM parsed
),
{{ staged_rows(links, 'Line ID', 'Date Added', record='part used') }}
