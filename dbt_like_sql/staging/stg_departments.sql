-- Departments (departments.csv), typed; duplicate Department IDs: the last row in the file wins.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH {{ run_rows('departments') }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Department ID") AS department_id,
        novo_text("Department Name") AS department_name,
        novo_text("Department Type") AS department_type,
        novo_yesno("Active") AS active,
        novo_issues([
            novo_issue('Department Type', "Department Type", novo_choice_issue("Department Type", ['Internal', 'Customer'])),
            novo_issue('Active', "Active", novo_yesno_issue("Active"))
        ]) AS _issues,
        {{ missing_required('Department ID', 'Department Name') }}
    FROM src
),
{{ staged_rows(id='Department ID') }}
