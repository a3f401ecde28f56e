-- Work orders / requests (work_orders.csv), typed; duplicate WO Numbers resolved by Date Modified;
-- links to records not in the run (asset, account, requester, assignee, department, PM schedule)
-- are dropped with a notice; statuses outside the standard list are kept and reported.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Requester ID', 'stg_contacts.contact_id', 'a contact'),
    link('Assigned To ID', 'stg_contacts.contact_id', 'a contact'),
    link('Asset ID', 'stg_assets.asset_id', 'an asset'),
    link('Account ID', 'stg_accounts.account_id', 'an account'),
    link('Department ID', 'stg_departments.department_id', 'a department'),
    link('PM Schedule ID', 'stg_pm_schedules.pm_id', 'a PM schedule'),
] -%}
WITH {{ run_rows('work_orders') }},
{{ parsed_once(datetimes=['Date Requested', 'Date Completed', 'Date Added', 'Date Modified'], dates=['Date Scheduled', 'Due Date'], numbers=['Estimated Hours']) }},
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
        {{ missing_required('WO Number', 'Title', 'Status') }}
    FROM parsed
),
{{ staged_rows(links, 'WO Number', 'Date Modified', record='work order') }}
