-- Customer, vendor and supplier accounts (accounts.csv), typed; duplicate Account IDs resolved by
-- Date Modified; a Department ID that is not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Department ID', 'stg_departments.department_id', 'a department'),
] -%}
WITH {{ run_rows('accounts') }},
{{ parsed_once(datetimes=['Date Added', 'Date Modified']) }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Account ID") AS account_id,
        novo_text("Account Name") AS account_name,
        novo_text("Account Type") AS account_type,
        novo_id("Department ID") AS department_id,
        novo_text("Address") AS address,
        novo_text("City") AS city,
        novo_text("State") AS state,
        novo_text("Zip") AS zip,
        novo_text("Phone") AS phone,
        novo_email("Email") AS email,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified
        {{ udf_columns('Account') }},
        novo_issues(list_concat([
            novo_issue('Account Type', "Account Type", novo_choice_issue("Account Type", ['Customer', 'Vendor', 'Supplier', 'Internal'])),
            novo_issue('Email', "Email", novo_email_issue("Email")),
            novo_required_issue('Date Added', "Date Added", 'account'),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ], {{ udf_issues('Account') }})) AS _issues,
        {{ missing_required('Account ID', 'Account Name') }}
    FROM parsed
),
{{ staged_rows(links, 'Account ID', 'Date Modified', record='account') }}
