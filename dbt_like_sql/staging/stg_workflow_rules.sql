-- Workflow rules (workflow_rules.json), automation that does not migrate: one row per rule, kept
-- for the report; an element that is not a JSON object is quarantined (bad_json).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH {{ json_objects('workflow_rules') }}
SELECT
    _run_key,
    _row_number,
    novo_id(j ->> 'rule_id') AS rule_id,
    j ->> 'name' AS name,
    j ->> 'entity' AS entity,
    j ->> 'trigger' AS trigger,
    j -> 'conditions' AS conditions,
    j -> 'actions' AS actions,
    novo_yesno(j ->> 'enabled') AS enabled,
    raw_json AS json,
    novo_issues([
        novo_issue('enabled', j ->> 'enabled', novo_yesno_issue(j ->> 'enabled'))
    ]) AS _issues,
    {{ json_verdict('rule_id') }}
FROM src
