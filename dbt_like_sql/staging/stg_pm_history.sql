-- Completed PM occurrences (pm_history.csv), typed; an occurrence whose PM ID is not a PM schedule
-- of the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'pm_history') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_date_parse("Due Date", '{{ date_order }}') AS __p_due_date,
        novo_ts_parse("Completed Date", '{{ date_order }}', '{{ timezone }}') AS __p_completed_date
    FROM src
),
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
        CASE WHEN novo_is_null("PM Event ID") THEN 'PM Event ID'
             WHEN novo_is_null("PM ID") THEN 'PM ID' END AS _missing_column,
        CASE WHEN novo_is_null("PM Event ID") THEN "PM Event ID"
             WHEN novo_is_null("PM ID") THEN "PM ID" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY pm_event_id, _missing_column IS NULL ORDER BY completed_date DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_pm_id AS (
    SELECT DISTINCT pm_id AS id FROM {{ ref('stg_pm_schedules') }} WHERE _run_key IN {{ parent_runs }}
),
p_wo_number AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_completed_by_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_wo_number.id IS NULL THEN NULL ELSE r.wo_number END AS wo_number,
        CASE WHEN p_completed_by_id.id IS NULL THEN NULL ELSE r.completed_by_id END AS completed_by_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('WO Number', r.wo_number, CASE WHEN r.wo_number IS NOT NULL AND p_wo_number.id IS NULL THEN 'orphan_reference' END,
                       'WO Number ' || r.wo_number || ' is not a work order of this export (or, for a delta, an earlier run); the PM history entry loads without this link'),
            novo_issue('Completed By ID', r.completed_by_id, CASE WHEN r.completed_by_id IS NOT NULL AND p_completed_by_id.id IS NULL THEN 'orphan_reference' END,
                       'Completed By ID ' || r.completed_by_id || ' is not a contact of this export (or, for a delta, an earlier run); the PM history entry loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_pm_id.id IS NULL AND r.pm_id IS NOT NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'PM Event ID'
         WHEN p_pm_id.id IS NULL AND r.pm_id IS NOT NULL THEN 'PM ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.pm_event_id
         WHEN p_pm_id.id IS NULL AND r.pm_id IS NOT NULL THEN r.pm_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate PM Event ID ' || r.pm_event_id || ': row ' || r._winner || ' wins (latest Completed Date, ties: last row in the file)'
         WHEN p_pm_id.id IS NULL AND r.pm_id IS NOT NULL THEN 'PM ID ' || r.pm_id || ' is not a PM schedule of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_pm_id ON p_pm_id.id = r.pm_id
LEFT JOIN p_wo_number ON p_wo_number.id = r.wo_number
LEFT JOIN p_completed_by_id ON p_completed_by_id.id = r.completed_by_id
