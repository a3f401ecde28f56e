-- Status changes of work orders (status_log.csv), typed; a change whose WO Number is not a work
-- order of the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'status_log') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Changed At", '{{ date_order }}', '{{ timezone }}') AS __p_changed_at
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Log ID") AS log_id,
        novo_id("WO Number") AS wo_number,
        novo_text("From Status") AS from_status,
        novo_text("To Status") AS to_status,
        novo_datetime_checked(__p_changed_at, TIMESTAMPTZ '{{ exported_at }}') AS changed_at,
        novo_id("Changed By ID") AS changed_by_id,
        novo_text("Comment") AS comment,
        novo_issues([
            novo_required_issue('Changed At', "Changed At", 'status change'),
            novo_issue('Changed At', "Changed At", novo_datetime_issue_of("Changed At", __p_changed_at, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Log ID") THEN 'Log ID'
             WHEN novo_is_null("WO Number") THEN 'WO Number' END AS _missing_column,
        CASE WHEN novo_is_null("Log ID") THEN "Log ID"
             WHEN novo_is_null("WO Number") THEN "WO Number" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY log_id, _missing_column IS NULL ORDER BY changed_at DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_wo_number AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_changed_by_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_changed_by_id.id IS NULL THEN NULL ELSE r.changed_by_id END AS changed_by_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Changed By ID', r.changed_by_id, CASE WHEN r.changed_by_id IS NOT NULL AND p_changed_by_id.id IS NULL THEN 'orphan_reference' END,
                       'Changed By ID ' || r.changed_by_id || ' is not a contact of this export (or, for a delta, an earlier run); the status change loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Log ID'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.log_id
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN r.wo_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Log ID ' || r.log_id || ': row ' || r._winner || ' wins (latest Changed At, ties: last row in the file)'
         WHEN p_wo_number.id IS NULL AND r.wo_number IS NOT NULL THEN 'WO Number ' || r.wo_number || ' is not a work order of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_wo_number ON p_wo_number.id = r.wo_number
LEFT JOIN p_changed_by_id ON p_changed_by_id.id = r.changed_by_id
