-- Attachment rows (attachments.csv), typed; an attachment whose parent (Parent Type + Parent ID)
-- is not a work order / asset of the run is quarantined, and so is one whose body landing found
-- missing, outside the bundle, or not the Size / SHA-256 of its row (raw `_body*` columns).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [link('Uploaded By ID', 'stg_contacts.contact_id', 'a contact')] -%}
WITH {{ run_rows('attachments') }},
{{ parsed_once(datetimes=['Uploaded At']) }},
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
        "_body" AS __body,  -- landing's facts (novo/attachment_bodies.py); NULL = not checked
        TRY_CAST("_body_bytes" AS BIGINT) AS __body_bytes,
        "_body_sha256" AS __body_sha256,
        "Bundle Path" AS __raw_path,
        "Size" AS __raw_size,
        "SHA-256" AS __raw_sha,
        novo_issues([
            novo_issue('Parent Type', "Parent Type", novo_choice_issue("Parent Type", ['Work Order', 'Asset'])),
            novo_issue('Size', "Size", novo_number_issue("Size", lo := 0), CASE WHEN novo_number_issue("Size", lo := 0) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from 0); staged as empty' END),
            novo_required_issue('Uploaded At', "Uploaded At", 'attachment'),
            novo_issue('Uploaded At', "Uploaded At", novo_datetime_issue_of("Uploaded At", __p_uploaded_at, TIMESTAMPTZ '{{ exported_at }}'))
        ]) AS _issues,
        {{ missing_required('Attachment ID', 'Parent Type', 'Parent ID') }}
    FROM parsed
),
{% call latest_wins('Attachment ID', 'Uploaded At') -%}
        CASE WHEN __body IS NULL THEN NULL  -- not checked: shaping still checks the body
             WHEN __body = 'outside' THEN 'hostile_path'
             WHEN bundle_path IS NULL OR __body <> 'found' THEN 'body_missing'
             WHEN size IS NOT NULL AND size <> __body_bytes THEN 'size_mismatch'
             WHEN sha_256 IS NOT NULL AND lower(novo_trim(sha_256)) <> __body_sha256 THEN 'hash_mismatch' END AS _body_problem
    {%- endcall %}{{ link_ids(links) }},
p_work_order AS (
    SELECT DISTINCT wo_number AS id FROM {{ ref('stg_work_orders') }} WHERE _run_key IN {{ parent_runs }}
),
p_asset AS (
    SELECT DISTINCT asset_id AS id FROM {{ ref('stg_assets') }} WHERE _run_key IN {{ parent_runs }}
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner, _body_problem, __body, __body_bytes, __body_sha256,
                 __raw_path, __raw_size, __raw_sha) {{ unlinked_as_null(links, 'attachment') }},
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'orphan_reference'
         ELSE r._body_problem END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Attachment ID'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'Parent ID'
         WHEN r._body_problem IN ('hostile_path', 'body_missing') THEN 'Bundle Path'
         WHEN r._body_problem = 'size_mismatch' THEN 'Size'
         WHEN r._body_problem = 'hash_mismatch' THEN 'SHA-256' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.attachment_id
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN r.parent_id
         WHEN r._body_problem IN ('hostile_path', 'body_missing') THEN r.__raw_path
         WHEN r._body_problem = 'size_mismatch' THEN r.__raw_size
         WHEN r._body_problem = 'hash_mismatch' THEN r.__raw_sha END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Attachment ID ' || r.attachment_id || ': row ' || r._winner || ' wins (latest Uploaded At, ties: last row in the file)'
         WHEN p_work_order.id IS NULL AND p_asset.id IS NULL THEN 'parent ' || coalesce(r.parent_type, '?') || ' ' || r.parent_id || ' is not a work order or asset of this export (or, for a delta, an earlier run)'
         WHEN r._body_problem = 'hostile_path' THEN 'Bundle Path ' || r.bundle_path || ' leaves the bundle (''..'' or an absolute path); the body is never read and the attachment is not loaded'
         WHEN r._body_problem = 'body_missing' AND r.bundle_path IS NULL THEN 'Bundle Path is empty, so there is no body; the attachment is not loaded'
         WHEN r._body_problem = 'body_missing' THEN 'no body at ' || r.bundle_path || ' in the bundle; the attachment is not loaded — re-export it with its files'
         WHEN r._body_problem = 'size_mismatch' THEN 'the body at ' || r.bundle_path || ' is ' || r.__body_bytes || ' bytes, the row says ' || r.__raw_size || '; the attachment is not loaded — re-export it'
         WHEN r._body_problem = 'hash_mismatch' THEN 'the body at ' || r.bundle_path || ' has SHA-256 ' || left(r.__body_sha256, 12) || '…, the row says ' || left(lower(novo_trim(r.sha_256)), 12) || '…; the attachment is not loaded — re-export it' END AS _row_message,
    -- the body size landing measured for a body it found and that matched its row; NULL = not checked
    -- (shaping then checks the body itself)
    CASE WHEN r.__body = 'found' THEN r.__body_bytes END AS _body_bytes
FROM ranked r{{ link_joins(links) }}
LEFT JOIN p_work_order ON novo_trim(r.parent_type) = 'Work Order' AND p_work_order.id = r.parent_id
LEFT JOIN p_asset ON novo_trim(r.parent_type) = 'Asset' AND p_asset.id = r.parent_id
