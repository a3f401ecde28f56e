-- Departments (departments.csv), typed; duplicate Department IDs: the last row in the file wins.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'departments') }}
    WHERE _run_key = '{{ run_key }}'
),
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
        CASE WHEN novo_is_null("Department ID") THEN 'Department ID'
             WHEN novo_is_null("Department Name") THEN 'Department Name' END AS _missing_column,
        CASE WHEN novo_is_null("Department ID") THEN "Department ID"
             WHEN novo_is_null("Department Name") THEN "Department Name" END AS _missing_raw
    FROM src
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY department_id, _missing_column IS NULL ORDER BY _row_number DESC) END AS _winner
    FROM typed
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Department ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.department_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Department ID ' || r.department_id || ': row ' || r._winner || ' wins (last row in the file)' END AS _row_message
FROM ranked r
