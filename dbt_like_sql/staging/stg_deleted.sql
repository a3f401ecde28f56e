-- Deletions of a delta bundle (deleted.csv), typed; empty for full bundles.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'deleted') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Deleted At", '{{ date_order }}', '{{ timezone }}') AS __p_deleted_at
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_text("Entity") AS entity,
        novo_id("ID") AS id,
        novo_datetime_checked(__p_deleted_at, TIMESTAMPTZ '{{ exported_at }}') AS deleted_at,
        novo_issues([
            novo_issue('Entity', "Entity", novo_choice_issue("Entity", ['Work Order', 'Asset', 'Contact', 'Account', 'PM Schedule', 'Attachment'])),
            novo_issue('Deleted At', "Deleted At", novo_datetime_issue_of("Deleted At", __p_deleted_at, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Entity") THEN 'Entity'
             WHEN novo_is_null("ID") THEN 'ID' END AS _missing_column,
        CASE WHEN novo_is_null("Entity") THEN "Entity"
             WHEN novo_is_null("ID") THEN "ID" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        _row_number AS _winner
    FROM typed
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty' END AS _row_message
FROM ranked r
