-- Activity log: notes, calls, emails, meetings (notes.csv), typed; a row needs a WO Number or an
-- Asset ID; links to records not in the run are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('WO Number', 'stg_work_orders.wo_number', 'a work order'),
    link('Asset ID', 'stg_assets.asset_id', 'an asset'),
    link('Logged By ID', 'stg_contacts.contact_id', 'a contact'),
] -%}
WITH {{ run_rows('notes') }},
{{ parsed_once(datetimes=['Logged At']) }},
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
        {{ missing_required('Note ID', ['WO Number', 'Asset ID']) }}
    FROM parsed
),
{{ staged_rows(links, 'Note ID', 'Logged At', record='activity-log entry') }}
