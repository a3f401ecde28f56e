-- The tenant's custom field declarations (user_defined_fields.csv), typed; Data Types outside the
-- documented list are kept and reported.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH {{ run_rows('user_defined_fields') }},
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_text("Entity") AS entity,
        novo_text("Label") AS label,
        novo_text("Column") AS column,
        novo_text("Data Type") AS data_type,
        novo_text("Choices") AS choices,
        novo_yesno("Required") AS required,
        novo_issues([
            novo_issue('Entity', "Entity", novo_choice_issue("Entity", ['Work Order', 'Asset', 'Contact', 'Account'])),
            novo_issue('Data Type', "Data Type", novo_choice_issue("Data Type", ['Text', 'Long Text', 'Number', 'Currency', 'Date', 'Yes/No', 'Pick List', 'Multi Pick List'])),
            novo_issue('Required', "Required", novo_yesno_issue("Required"))
        ]) AS _issues,
        {{ missing_required('Entity', 'Label', 'Column', 'Data Type') }}
    FROM src
),
{{ staged_rows() }}
