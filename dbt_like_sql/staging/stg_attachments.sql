-- Attachment rows (attachments.csv), typed; an attachment whose parent (Parent Type + Parent ID)
-- is not a work order / asset of the run is quarantined.
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH src AS (
    SELECT * FROM {{ source('raw', 'attachments') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_ts_parse("Uploaded At", '{{ date_order }}', '{{ timezone }}') AS __p_uploaded_at
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Attachment ID") AS attachment_id,
        novo_text("Parent Type") AS parent_type,
        novo_id("Parent ID") AS parent_id,
        novo_text("File Name") AS file_name,
        novo_text("Bundle Path") AS bundle_path,
        novo_number("Size", lo := 0) AS size,
        novo_text("Content Type") AS content_type,
        novo_text("SHA-256") AS sha_256,
        novo_datetime_checked(__p_uploaded_at, TIMESTAMPTZ '{{ exported_at }}') AS uploaded_at,
        novo_id("Uploaded By ID") AS uploaded_by_id,
        novo_text("Description") AS description,
        novo_issues([
            novo_issue('Parent Type', "Parent Type", novo_choice_issue("Parent Type", ['Work Order', 'Asset'])),
            novo_issue('Size', "Size", novo_number_issue("Size", lo := 0), CASE WHEN novo_number_issue("Size", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_required_issue('Uploaded At', "Uploaded At", 'attachment'),
            novo_issue('Uploaded At', "Uploaded At", novo_datetime_issue_of("Uploaded At", __p_uploaded_at, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        CASE WHEN novo_is_null("Attachment ID") THEN 'Attachment ID'
             WHEN novo_is_null("Parent Type") THEN 'Parent Type'
             WHEN novo_is_null("Parent ID") THEN 'Parent ID' END AS _missing_column,
        CASE WHEN novo_is_null("Attachment ID") THEN "Attachment ID"
             WHEN novo_is_null("Parent Type") THEN "Parent Type"
             WHEN novo_is_null("Parent ID") THEN "Parent ID" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY attachment_id, _missing_column IS NULL ORDER BY uploaded_at DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_uploaded_by_id AS (
    SELECT DISTINCT contact_id AS id FROM {{ ref('stg_contacts') }} WHERE _run_key IN {{ parent_runs }}
),
p_work_order AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_asset AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_uploaded_by_id.id IS NULL THEN NULL ELSE r.uploaded_by_id END AS uploaded_by_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Uploaded By ID', r.uploaded_by_id, CASE WHEN r.uploaded_by_id IS NOT NULL AND p_uploaded_by_id.id IS NULL THEN 'orphan_reference' END,
                       'Uploaded By ID ' || r.uploaded_by_id || ' is not a contact of this export (or, for a delta, an earlier run); the attachment loads without this link')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'orphan_reference' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Attachment ID'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'Parent ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.attachment_id
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN r.parent_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Attachment ID ' || r.attachment_id || ': row ' || r._winner || ' wins (latest Uploaded At, ties: last row in the file)'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'parent ' || coalesce(r.parent_type, '?') || ' ' || r.parent_id || ' is not a work order or asset of this export (or, for a delta, an earlier run)' END AS _row_message
FROM ranked r
LEFT JOIN p_uploaded_by_id ON p_uploaded_by_id.id = r.uploaded_by_id
LEFT JOIN p_work_order ON novo_trim(r.parent_type) = 'Work Order' AND p_work_order.id = r.parent_id
LEFT JOIN p_asset ON novo_trim(r.parent_type) = 'Asset' AND p_asset.id = r.parent_id
