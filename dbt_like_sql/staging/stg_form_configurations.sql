-- Custom request forms (form_configurations.json) that do not migrate, one row per form, kept for
-- the report; an element that is not a JSON object is quarantined (bad_json).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH {{ json_objects('form_configurations') }}
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
    {{ json_verdict('form_id') }}
FROM src
