-- Activity log: notes, calls, emails, meetings (notes.csv), typed; a row needs a WO Number or an
-- Asset ID; links to records not in the run are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'notes') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Logged At", '{{ date_order }}', '{{ timezone }}') AS __p_logged_at
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Note ID") AS note_id,
        novo_id("WO Number") AS wo_number,
        novo_id("Asset ID") AS asset_id,
        novo_text("Entry Type") AS entry_type,
        novo_text("Subject") AS subject,
        novo_text("Body") AS body,
        novo_yesno("Internal") AS internal,
        novo_datetime_checked(__p_logged_at, TIMESTAMPTZ '{{ exported_at }}') AS logged_at,
        novo_id("Logged By ID") AS logged_by_id,
        novo_issues([
            novo_issue('Entry Type', "Entry Type", novo_choice_issue("Entry Type", ['Note', 'Call', 'Email', 'Meeting'])),
            novo_issue('Internal', "Internal", novo_yesno_issue("Internal")),
            novo_required_issue('Logged At', "Logged At", 'activity-log entry'),
            novo_issue('Logged At', "Logged At", novo_datetime_issue_of("Logged At", __p_logged_at, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Note ID") THEN 'Note ID'
             WHEN novo_is_null("WO Number") AND novo_is_null("Asset ID") THEN 'WO Number' END AS _missing_column,
        CASE WHEN novo_is_null("Note ID") THEN "Note ID"
             WHEN novo_is_null("WO Number") AND novo_is_null("Asset ID") THEN "WO Number" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY note_id, _missing_column IS NULL ORDER BY logged_at DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_wo_number AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_asset_id AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
),
p_logged_by_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_wo_number.id IS NULL THEN NULL ELSE r.wo_number END AS wo_number,
        CASE WHEN p_asset_id.id IS NULL THEN NULL ELSE r.asset_id END AS asset_id,
        CASE WHEN p_logged_by_id.id IS NULL THEN NULL ELSE r.logged_by_id END AS logged_by_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('WO Number', r.wo_number, CASE WHEN r.wo_number IS NOT NULL AND p_wo_number.id IS NULL THEN 'orphan_reference' END,
                       'WO Number ' || r.wo_number || ' is not a work order of this export (or, for a delta, an earlier run); the activity-log entry loads without this link'),
            novo_issue('Asset ID', r.asset_id, CASE WHEN r.asset_id IS NOT NULL AND p_asset_id.id IS NULL THEN 'orphan_reference' END,
                       'Asset ID ' || r.asset_id || ' is not an asset of this export (or, for a delta, an earlier run); the activity-log entry loads without this link'),
            novo_issue('Logged By ID', r.logged_by_id, CASE WHEN r.logged_by_id IS NOT NULL AND p_logged_by_id.id IS NULL THEN 'orphan_reference' END,
                       'Logged By ID ' || r.logged_by_id || ' is not a contact of this export (or, for a delta, an earlier run); the activity-log entry loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Note ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.note_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Note ID ' || r.note_id || ': row ' || r._winner || ' wins (latest Logged At, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_wo_number ON p_wo_number.id = r.wo_number
LEFT JOIN p_asset_id ON p_asset_id.id = r.asset_id
LEFT JOIN p_logged_by_id ON p_logged_by_id.id = r.logged_by_id
