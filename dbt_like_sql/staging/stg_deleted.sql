-- Deletions of a delta bundle (deleted.csv), typed; empty for full bundles.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH {{ run_rows('deleted') }},
{{ parsed_once(datetimes=['Deleted At']) }},
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
        {{ missing_required('Entity', 'ID') }}
    FROM parsed
),
{{ staged_rows() }}
