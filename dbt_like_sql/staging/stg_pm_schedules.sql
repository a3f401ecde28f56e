-- Preventive maintenance schedules (pm_schedules.csv), typed; duplicate PM IDs resolved by Date
-- Modified; an asset or assignee not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Asset ID', 'stg_assets.asset_id', 'an asset'),
    link('Assigned To ID', 'stg_contacts.contact_id', 'a contact'),
] -%}
WITH {{ run_rows('pm_schedules') }},
{{ parsed_once(dates=['Start Date', 'End Date', 'Next Due'], datetimes=['Date Added', 'Date Modified']) }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("PM ID") AS pm_id,
        novo_text("PM Name") AS pm_name,
        novo_id("Asset ID") AS asset_id,
        novo_text("Trigger") AS trigger,
        novo_text("Frequency") AS frequency,
        novo_number("Every", lo := 0) AS every,
        novo_text("Recurrence Rule") AS recurrence_rule,
        novo_text("Meter Name") AS meter_name,
        novo_number("Meter Interval", lo := 0) AS meter_interval,
        novo_number("Last Meter Reading", lo := 0) AS last_meter_reading,
        novo_date_checked(__p_start_date, TIMESTAMPTZ '{{ exported_at }}') AS start_date,
        novo_date_checked(__p_end_date, TIMESTAMPTZ '{{ exported_at }}') AS end_date,
        novo_date_checked(__p_next_due, TIMESTAMPTZ '{{ exported_at }}') AS next_due,
        novo_id("Assigned To ID") AS assigned_to_id,
        novo_number("Estimated Hours", lo := 0, hi := 1000) AS estimated_hours,
        novo_text("Procedure") AS procedure,
        novo_yesno("Active") AS active,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified,
        novo_issues([
            novo_issue('Trigger', "Trigger", novo_choice_issue("Trigger", ['Date', 'Meter'])),
            novo_issue('Frequency', "Frequency", novo_choice_issue("Frequency", ['Daily', 'Weekly', 'Monthly', 'Yearly'])),
            novo_issue('Every', "Every", novo_number_issue("Every", lo := 0), CASE WHEN novo_number_issue("Every", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_issue('Meter Interval', "Meter Interval", novo_number_issue("Meter Interval", lo := 0), CASE WHEN novo_number_issue("Meter Interval", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_issue('Last Meter Reading', "Last Meter Reading", novo_number_issue("Last Meter Reading", lo := 0), CASE WHEN novo_number_issue("Last Meter Reading", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_required_issue('Start Date', "Start Date", 'PM schedule'),
            novo_issue('Start Date', "Start Date", novo_date_issue_of("Start Date", __p_start_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('End Date', "End Date", novo_date_issue_of("End Date", __p_end_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Next Due', "Next Due", novo_date_issue_of("Next Due", __p_next_due, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Estimated Hours', "Estimated Hours", novo_number_issue("Estimated Hours", lo := 0, hi := 1000), CASE WHEN novo_number_issue("Estimated Hours", lo := 0, hi := 1000) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0 to 1000); staged as empty' END),
            novo_issue('Active', "Active", novo_yesno_issue("Active")),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        {{ missing_required('PM ID', 'PM Name') }}
    FROM parsed
),
{{ staged_rows(links, 'PM ID', 'Date Modified', record='PM schedule') }}
