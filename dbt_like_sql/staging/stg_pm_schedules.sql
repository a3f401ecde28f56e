-- Preventive maintenance schedules (pm_schedules.csv), typed; duplicate PM IDs resolved by Date
-- Modified; an asset or assignee not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'pm_schedules') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_date_parse("Start Date", '{{ date_order }}') AS __p_start_date,
        novo_date_parse("End Date", '{{ date_order }}') AS __p_end_date,
        novo_date_parse("Next Due", '{{ date_order }}') AS __p_next_due,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_ts_parse("Date Modified", '{{ date_order }}', '{{ timezone }}') AS __p_date_modified
    FROM src
),
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
        CASE WHEN novo_is_null("PM ID") THEN 'PM ID'
             WHEN novo_is_null("PM Name") THEN 'PM Name' END AS _missing_column,
        CASE WHEN novo_is_null("PM ID") THEN "PM ID"
             WHEN novo_is_null("PM Name") THEN "PM Name" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY pm_id, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_asset_id AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
),
p_assigned_to_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_asset_id.id IS NULL THEN NULL ELSE r.asset_id END AS asset_id,
        CASE WHEN p_assigned_to_id.id IS NULL THEN NULL ELSE r.assigned_to_id END AS assigned_to_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Asset ID', r.asset_id, CASE WHEN r.asset_id IS NOT NULL AND p_asset_id.id IS NULL THEN 'orphan_reference' END,
                       'Asset ID ' || r.asset_id || ' is not an asset of this export (or, for a delta, an earlier run); the PM schedule loads without this link'),
            novo_issue('Assigned To ID', r.assigned_to_id, CASE WHEN r.assigned_to_id IS NOT NULL AND p_assigned_to_id.id IS NULL THEN 'orphan_reference' END,
                       'Assigned To ID ' || r.assigned_to_id || ' is not a contact of this export (or, for a delta, an earlier run); the PM schedule loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'PM ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.pm_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate PM ID ' || r.pm_id || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_asset_id ON p_asset_id.id = r.asset_id
LEFT JOIN p_assigned_to_id ON p_assigned_to_id.id = r.assigned_to_id
