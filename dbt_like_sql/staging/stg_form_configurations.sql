-- Custom request forms (form_configurations.json) that do not migrate, one row per form, kept for
-- the report; an element that is not a JSON object is quarantined (bad_json).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT _run_key, _row_number, json AS raw_json,
           CASE WHEN NOT coalesce(json_valid(json), false) THEN NULL
                WHEN json_type(json::JSON) = 'OBJECT' THEN json::JSON END AS j
    FROM {{ source('raw', 'form_configurations') }}
    WHERE _run_key = '{{ run_key }}'
)
SELECT
    _run_key,
    _row_number,
    novo_id(j ->> 'form_id') AS form_id,
    j ->> 'name' AS name,
    j ->> 'entity' AS entity,
    j -> 'fields' AS fields,
    novo_yesno(j ->> 'enabled') AS enabled,
    raw_json AS json,
    novo_issues([
        novo_issue('enabled', j ->> 'enabled', novo_yesno_issue(j ->> 'enabled'))
    ]) AS _issues,
    CASE WHEN j IS NULL THEN 'bad_json'
         WHEN novo_is_null(j ->> 'form_id') THEN 'missing_required' END AS _row_reason,
    CASE WHEN j IS NULL THEN 'json'
         WHEN novo_is_null(j ->> 'form_id') THEN 'form_id' END AS _row_column,
    CASE WHEN j IS NULL OR novo_is_null(j ->> 'form_id') THEN left(raw_json, 2000) END AS _row_raw_value,
    CASE WHEN j IS NULL THEN 'not a JSON object'
         WHEN novo_is_null(j ->> 'form_id') THEN 'required form_id is empty' END AS _row_message
FROM src
