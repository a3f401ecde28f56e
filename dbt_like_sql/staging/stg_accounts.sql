-- Customer, vendor and supplier accounts (accounts.csv), typed; duplicate Account IDs resolved by
-- Date Modified; a Department ID that is not in the run is dropped with a notice.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'accounts') }}
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
        CASE WHEN novo_is_null("Account ID") THEN 'Account ID'
             WHEN novo_is_null("Account Name") THEN 'Account Name' END AS _missing_column,
        CASE WHEN novo_is_null("Account ID") THEN "Account ID"
             WHEN novo_is_null("Account Name") THEN "Account Name" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY account_id, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_department_id AS (
    SELECT DISTINCT department_id AS id FROM {{ ref('stg_departments') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_department_id.id IS NULL THEN NULL ELSE r.department_id END AS department_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Department ID', r.department_id, CASE WHEN r.department_id IS NOT NULL AND p_department_id.id IS NULL THEN 'orphan_reference' END,
                       'Department ID ' || r.department_id || ' is not a department of this export (or, for a delta, an earlier run); the account loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Account ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.account_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Account ID ' || r.account_id || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_department_id ON p_department_id.id = r.department_id
