-- Labor entries (labor.csv), typed; an entry whose WO Number is not a work order of the run is
-- quarantined; hours below 0 or above 24 are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('WO Number', 'stg_work_orders.wo_number', 'a work order', required=True),
    link('Technician ID', 'stg_contacts.contact_id', 'a contact'),
] -%}
WITH {{ run_rows('labor') }},
{{ parsed_once(dates=['Work Date'], datetimes=['Date Added'], numbers=['Hours'], money=['Rate']) }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Labor ID") AS labor_id,
        novo_id("WO Number") AS wo_number,
        novo_id("Technician ID") AS technician_id,
        novo_date_checked(__p_work_date, TIMESTAMPTZ '{{ exported_at }}') AS work_date,
        novo_text("Start Time") AS start_time,
        novo_number_of(__p_hours, lo := 0, hi := 24) AS hours,
        novo_money_of(__p_rate, lo := 0, hi := 1000) AS rate,
        novo_text("Labor Type") AS labor_type,
        novo_text("Notes") AS notes,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_issues([
            novo_required_issue('Work Date', "Work Date", 'labor entry'),
            novo_issue('Work Date', "Work Date", novo_date_issue_of("Work Date", __p_work_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Hours', "Hours", novo_number_issue_of("Hours", __p_hours, lo := 0, hi := 24), CASE WHEN novo_number_issue_of("Hours", __p_hours, lo := 0, hi := 24) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0 to 24); staged as empty' END),
            novo_issue('Rate', "Rate", novo_money_issue_of("Rate", __p_rate, lo := 0, hi := 1000), CASE WHEN novo_money_issue_of("Rate", __p_rate, lo := 0, hi := 1000) = 'bad_money' THEN NULL ELSE 'outside the plausible range (from 0 to 1000); staged as empty' END),
            novo_issue('Labor Type', "Labor Type", novo_choice_issue("Labor Type", ['Regular', 'Overtime', 'Contractor'])),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        {{ missing_required('Labor ID', 'WO Number') }}
    FROM parsed
),
{{ staged_rows(links, 'Labor ID', 'Date Added', record='labor entry') }}
