-- Technicians and requesters (contacts.csv), typed; names tidied (trim, one space, ALL-CAPS/all-
-- lower -> Title Case), emails lower-cased and validated; a row needs First or Last Name; missing
-- Account/Department links are dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'contacts') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_ts_parse("Date Modified", '{{ date_order }}', '{{ timezone }}') AS __p_date_modified
    FROM src
),
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
        CASE WHEN novo_is_null("Contact ID") THEN 'Contact ID'
             WHEN novo_is_null("First Name") AND novo_is_null("Last Name") THEN 'First Name' END AS _missing_column,
        CASE WHEN novo_is_null("Contact ID") THEN "Contact ID"
             WHEN novo_is_null("First Name") AND novo_is_null("Last Name") THEN "First Name" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY contact_id, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_account_id AS (
    SELECT DISTINCT account_id AS id FROM {{ ref('stg_accounts') }} WHERE _run_key IN {{ parent_runs }}
),
p_department_id AS (
    SELECT DISTINCT department_id AS id FROM {{ ref('stg_departments') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_account_id.id IS NULL THEN NULL ELSE r.account_id END AS account_id,
        CASE WHEN p_department_id.id IS NULL THEN NULL ELSE r.department_id END AS department_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Account ID', r.account_id, CASE WHEN r.account_id IS NOT NULL AND p_account_id.id IS NULL THEN 'orphan_reference' END,
                       'Account ID ' || r.account_id || ' is not an account of this export (or, for a delta, an earlier run); the contact loads without this link'),
            novo_issue('Department ID', r.department_id, CASE WHEN r.department_id IS NOT NULL AND p_department_id.id IS NULL THEN 'orphan_reference' END,
                       'Department ID ' || r.department_id || ' is not a department of this export (or, for a delta, an earlier run); the contact loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Contact ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.contact_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Contact ID ' || r.contact_id || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_account_id ON p_account_id.id = r.account_id
LEFT JOIN p_department_id ON p_department_id.id = r.department_id
