-- Status changes of work orders (status_log.csv), typed; a change whose WO Number is not a work
-- order of the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('WO Number', 'stg_work_orders.wo_number', 'a work order', required=True),
    link('Changed By ID', 'stg_contacts.contact_id', 'a contact'),
] -%}
WITH {{ run_rows('status_log') }},
{{ parsed_once(datetimes=['Changed At']) }},
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
        {{ missing_required('Log ID', 'WO Number') }}
    FROM parsed
),
{{ staged_rows(links, 'Log ID', 'Changed At', record='status change') }}
