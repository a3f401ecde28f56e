-- Completed PM occurrences (pm_history.csv), typed; an occurrence whose PM ID is not a PM schedule
-- of the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('PM ID', 'stg_pm_schedules.pm_id', 'a PM schedule', required=True),
    link('WO Number', 'stg_work_orders.wo_number', 'a work order'),
    link('Completed By ID', 'stg_contacts.contact_id', 'a contact'),
] -%}
WITH {{ run_rows('pm_history') }},
{{ parsed_once(dates=['Due Date'], datetimes=['Completed Date']) }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("PM Event ID") AS pm_event_id,
        novo_id("PM ID") AS pm_id,
        novo_id("WO Number") AS wo_number,
        novo_date_checked(__p_due_date, TIMESTAMPTZ '{{ exported_at }}') AS due_date,
        novo_datetime_checked(__p_completed_date, TIMESTAMPTZ '{{ exported_at }}') AS completed_date,
        novo_id("Completed By ID") AS completed_by_id,
        novo_number("Meter Reading", lo := 0) AS meter_reading,
        novo_text("Result") AS result,
        novo_text("Notes") AS notes,
        novo_issues([
            novo_issue('Due Date', "Due Date", novo_date_issue_of("Due Date", __p_due_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_required_issue('Completed Date', "Completed Date", 'PM history entry'),
            novo_issue('Completed Date', "Completed Date", novo_datetime_issue_of("Completed Date", __p_completed_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Meter Reading', "Meter Reading", novo_number_issue("Meter Reading", lo := 0), CASE WHEN novo_number_issue("Meter Reading", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_issue('Result', "Result", novo_choice_issue("Result", ['Pass', 'Fail', 'Deferred']))
        ]) AS _issues,
        {{ missing_required('PM Event ID', 'PM ID') }}
    FROM parsed
),
{{ staged_rows(links, 'PM Event ID', 'Completed Date', record='PM history entry') }}
