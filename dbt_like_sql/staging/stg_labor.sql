-- Labor entries (labor.csv), typed; an entry whose WO Number is not a work order of the run is
-- quarantined; hours below 0 or above 24 are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'labor') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates and amounts parsed once; checked and reported below
    SELECT *,
        novo_date_parse("Work Date", '{{ date_order }}') AS __p_work_date,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_number_parse("Hours") AS __p_hours,
        novo_money_parse("Rate") AS __p_rate
    FROM src
),
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
        CASE WHEN novo_is_null("Labor ID") THEN 'Labor ID'
             WHEN novo_is_null("WO Number") THEN 'WO Number' END AS _missing_column,
        CASE WHEN novo_is_null("Labor ID") THEN "Labor ID"
             WHEN novo_is_null("WO Number") THEN "WO Number" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY labor_id, _missing_column IS NULL ORDER BY date_added DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_wo_number AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_technician_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_technician_id.id IS NULL THEN NULL ELSE r.technician_id END AS technician_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Technician ID', r.technician_id, CASE WHEN r.technician_id IS NOT NULL AND p_technician_id.id IS NULL THEN 'orphan_reference' END,
                       'Technician ID ' || r.technician_id || ' is not a contact of this export (or, for a delta, an earlier run); the labor entry loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Labor ID'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.labor_id
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN r.wo_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Labor ID ' || r.labor_id || ': row ' || r._winner || ' wins (latest Date Added, ties: last row in the file)'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number ' || r.wo_number || ' is not a work order of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_wo_number ON p_wo_number.id = r.wo_number
LEFT JOIN p_technician_id ON p_technician_id.id = r.technician_id
