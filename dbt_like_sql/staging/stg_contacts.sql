-- Technicians and requesters (contacts.csv), typed; names tidied (trim, one space, ALL-CAPS/all-
-- lower -> Title Case), emails lower-cased and validated; a row needs First or Last Name; missing
-- Account/Department links are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Account ID', 'stg_accounts.account_id', 'an account'),
    link('Department ID', 'stg_departments.department_id', 'a department'),
] -%}
WITH {{ run_rows('contacts') }},
{{ parsed_once(datetimes=['Date Added', 'Date Modified']) }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Contact ID") AS contact_id,
        novo_name("First Name") AS first_name,
        novo_name("Last Name") AS last_name,
        novo_email("Email") AS email,
        novo_text("Phone") AS phone,
        novo_text("Mobile") AS mobile,
        novo_text("Role") AS role,
        novo_id("Department ID") AS department_id,
        novo_id("Account ID") AS account_id,
        novo_text("Job Title") AS job_title,
        novo_money("Hourly Rate", lo := 0, hi := 1000) AS hourly_rate,
        novo_yesno("Active") AS active,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified
        {{ udf_columns('Contact') }},
        novo_issues(list_concat([
            novo_issue('Email', "Email", novo_email_issue("Email")),
            novo_issue('Role', "Role", novo_choice_issue("Role", ['Technician', 'Requester', 'Technician/Requester'])),
            novo_issue('Hourly Rate', "Hourly Rate", novo_money_issue("Hourly Rate", lo := 0, hi := 1000), CASE WHEN novo_money_issue("Hourly Rate", lo := 0, hi := 1000) = 'bad_money' THEN NULL ELSE 'outside the plausible range (from 0 to 1000); staged as empty' END),
            novo_issue('Active', "Active", novo_yesno_issue("Active")),
            novo_required_issue('Date Added', "Date Added", 'contact'),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ], {{ udf_issues('Contact') }})) AS _issues,
        {{ missing_required('Contact ID', ['First Name', 'Last Name']) }}
    FROM parsed
),
{{ staged_rows(links, 'Contact ID', 'Date Modified', record='contact') }}
