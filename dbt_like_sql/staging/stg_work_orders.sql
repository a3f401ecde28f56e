-- Work orders / requests (work_orders.csv), typed; duplicate WO Numbers resolved by Date Modified;
-- links to records not in the run (asset, account, requester, assignee, department, PM schedule)
-- are dropped with a notice; statuses outside the standard list are kept and reported.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'work_orders') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates and amounts parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Date Requested", '{{ date_order }}', '{{ timezone }}') AS __p_date_requested,
        novo_date_parse("Date Scheduled", '{{ date_order }}') AS __p_date_scheduled,
        novo_date_parse("Due Date", '{{ date_order }}') AS __p_due_date,
        novo_ts_parse("Date Completed", '{{ date_order }}', '{{ timezone }}') AS __p_date_completed,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_ts_parse("Date Modified", '{{ date_order }}', '{{ timezone }}') AS __p_date_modified,
        novo_number_parse("Estimated Hours") AS __p_estimated_hours
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("WO Number") AS wo_number,
        novo_text("Title") AS title,
        novo_text("Description") AS description,
        novo_text("Status") AS status,
        novo_text("Priority") AS priority,
        novo_text("Request Type") AS request_type,
        novo_id("Requester ID") AS requester_id,
        novo_id("Assigned To ID") AS assigned_to_id,
        novo_id("Asset ID") AS asset_id,
        novo_id("Account ID") AS account_id,
        novo_id("Department ID") AS department_id,
        novo_datetime_checked(__p_date_requested, TIMESTAMPTZ '{{ exported_at }}') AS date_requested,
        novo_date_checked(__p_date_scheduled, TIMESTAMPTZ '{{ exported_at }}') AS date_scheduled,
        novo_date_checked(__p_due_date, TIMESTAMPTZ '{{ exported_at }}') AS due_date,
        novo_datetime_checked(__p_date_completed, TIMESTAMPTZ '{{ exported_at }}') AS date_completed,
        novo_number_of(__p_estimated_hours, lo := 0, hi := 1000) AS estimated_hours,
        novo_id("PM Schedule ID") AS pm_schedule_id,
        novo_text("Source") AS source,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified
        {{ udf_columns('Work Order') }},
        novo_issues(list_concat([
            novo_issue('Status', "Status", novo_choice_issue("Status", ['New', 'Open', 'Scheduled', 'In Progress', 'On Hold', 'Reassigned', 'Completed', 'Closed', 'Cancelled'])),
            novo_issue('Priority', "Priority", novo_choice_issue("Priority", ['Emergency', 'High', 'Medium', 'Low'])),
            novo_issue('Request Type', "Request Type", novo_choice_issue("Request Type", ['Corrective', 'Preventive', 'Service Request', 'Inspection'])),
            novo_required_issue('Date Requested', "Date Requested", 'work order'),
            novo_issue('Date Requested', "Date Requested", novo_datetime_issue_of("Date Requested", __p_date_requested, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Scheduled', "Date Scheduled", novo_date_issue_of("Date Scheduled", __p_date_scheduled, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Due Date', "Due Date", novo_date_issue_of("Due Date", __p_due_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Completed', "Date Completed", novo_datetime_issue_of("Date Completed", __p_date_completed, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Estimated Hours', "Estimated Hours", novo_number_issue_of("Estimated Hours", __p_estimated_hours, lo := 0, hi := 1000), CASE WHEN novo_number_issue_of("Estimated Hours", __p_estimated_hours, lo := 0, hi := 1000) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0 to 1000); staged as empty' END),
            novo_issue('Source', "Source", novo_choice_issue("Source", ['Web', 'Email', 'Phone', 'Walk-in'])),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ], {{ udf_issues('Work Order') }})) AS _issues,
        CASE WHEN novo_is_null("WO Number") THEN 'WO Number'
             WHEN novo_is_null("Title") THEN 'Title'
             WHEN novo_is_null("Status") THEN 'Status' END AS _missing_column,
        CASE WHEN novo_is_null("WO Number") THEN "WO Number"
             WHEN novo_is_null("Title") THEN "Title"
             WHEN novo_is_null("Status") THEN "Status" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY wo_number, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_requester_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
),
p_assigned_to_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
),
p_asset_id AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
),
p_account_id AS (
    SELECT DISTINCT account_id AS id FROM {{ ref('stg_accounts') }} WHERE _run_key IN {{ parent_runs }}
),
p_department_id AS (
    SELECT DISTINCT department_id AS id FROM {{ ref('stg_departments') }} WHERE _run_key IN {{ parent_runs }}
),
p_pm_schedule_id AS (
    SELECT DISTINCT pm_id AS id FROM {{ ref('stg_pm_schedules') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_requester_id.id IS NULL THEN NULL ELSE r.requester_id END AS requester_id,
        CASE WHEN p_assigned_to_id.id IS NULL THEN NULL ELSE r.assigned_to_id END AS assigned_to_id,
        CASE WHEN p_asset_id.id IS NULL THEN NULL ELSE r.asset_id END AS asset_id,
        CASE WHEN p_account_id.id IS NULL THEN NULL ELSE r.account_id END AS account_id,
        CASE WHEN p_department_id.id IS NULL THEN NULL ELSE r.department_id END AS department_id,
        CASE WHEN p_pm_schedule_id.id IS NULL THEN NULL ELSE r.pm_schedule_id END AS pm_schedule_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Requester ID', r.requester_id, CASE WHEN r.requester_id IS NOT NULL AND p_requester_id.id IS NULL THEN 'orphan_reference' END,
                       'Requester ID ' || r.requester_id || ' is not a contact of this export (or, for a delta, an earlier run); the work order loads without this link'),
            novo_issue('Assigned To ID', r.assigned_to_id, CASE WHEN r.assigned_to_id IS NOT NULL AND p_assigned_to_id.id IS NULL THEN 'orphan_reference' END,
                       'Assigned To ID ' || r.assigned_to_id || ' is not a contact of this export (or, for a delta, an earlier run); the work order loads without this link'),
            novo_issue('Asset ID', r.asset_id, CASE WHEN r.asset_id IS NOT NULL AND p_asset_id.id IS NULL THEN 'orphan_reference' END,
                       'Asset ID ' || r.asset_id || ' is not an asset of this export (or, for a delta, an earlier run); the work order loads without this link'),
            novo_issue('Account ID', r.account_id, CASE WHEN r.account_id IS NOT NULL AND p_account_id.id IS NULL THEN 'orphan_reference' END,
                       'Account ID ' || r.account_id || ' is not an account of this export (or, for a delta, an earlier run); the work order loads without this link'),
            novo_issue('Department ID', r.department_id, CASE WHEN r.department_id IS NOT NULL AND p_department_id.id IS NULL THEN 'orphan_reference' END,
                       'Department ID ' || r.department_id || ' is not a department of this export (or, for a delta, an earlier run); the work order loads without this link'),
            novo_issue('PM Schedule ID', r.pm_schedule_id, CASE WHEN r.pm_schedule_id IS NOT NULL AND p_pm_schedule_id.id IS NULL THEN 'orphan_reference' END,
                       'PM Schedule ID ' || r.pm_schedule_id || ' is not a PM schedule of this export (or, for a delta, an earlier run); the work order loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'WO Number' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.wo_number END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate WO Number ' || r.wo_number || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_requester_id ON p_requester_id.id = r.requester_id
LEFT JOIN p_assigned_to_id ON p_assigned_to_id.id = r.assigned_to_id
LEFT JOIN p_asset_id ON p_asset_id.id = r.asset_id
LEFT JOIN p_account_id ON p_account_id.id = r.account_id
LEFT JOIN p_department_id ON p_department_id.id = r.department_id
LEFT JOIN p_pm_schedule_id ON p_pm_schedule_id.id = r.pm_schedule_id
