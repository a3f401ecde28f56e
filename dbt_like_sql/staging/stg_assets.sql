-- Locations and equipment (assets.csv), typed; duplicate Asset IDs resolved by Date Modified; an
-- Account ID or Parent Asset ID that is not in the run is dropped with a notice; every asset on a
-- cycle of Parent Asset IDs is reported (kept as exported: shaping breaks the cycle).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
WITH RECURSIVE src AS (
    SELECT * FROM {{ source('raw', 'assets') }}
    WHERE _run_key = '{{ run_key }}'
),
parsed AS (  -- dates parsed once; checked and reported below
    SELECT *,
        novo_date_parse("Install Date", '{{ date_order }}') AS __p_install_date,
        novo_date_parse("Last Service Date", '{{ date_order }}') AS __p_last_service_date,
        novo_ts_parse("Date Added", '{{ date_order }}', '{{ timezone }}') AS __p_date_added,
        novo_ts_parse("Date Modified", '{{ date_order }}', '{{ timezone }}') AS __p_date_modified
    FROM src
),
typed AS (
    SELECT
        _run_key,
        _row_number,
        novo_id("Asset ID") AS asset_id,
        novo_text("Asset Name") AS asset_name,
        novo_text("Asset Class") AS asset_class,
        novo_id("Parent Asset ID") AS parent_asset_id,
        novo_id("Account ID") AS account_id,
        novo_id("Department ID") AS department_id,
        novo_text("Serial Number") AS serial_number,
        novo_text("Manufacturer") AS manufacturer,
        novo_text("Model") AS model,
        novo_date_checked(__p_install_date, TIMESTAMPTZ '{{ exported_at }}') AS install_date,
        novo_date_checked(__p_last_service_date, TIMESTAMPTZ '{{ exported_at }}') AS last_service_date,
        novo_text("Status") AS status,
        novo_text("Address") AS address,
        novo_number("Latitude", lo := -90, hi := 90) AS latitude,
        novo_number("Longitude", lo := -180, hi := 180) AS longitude,
        novo_datetime_checked(__p_date_added, TIMESTAMPTZ '{{ exported_at }}') AS date_added,
        novo_datetime_checked(__p_date_modified, TIMESTAMPTZ '{{ exported_at }}') AS date_modified
        {{ udf_columns('Asset') }},
        novo_issues(list_concat([
            novo_issue('Asset Class', "Asset Class", novo_choice_issue("Asset Class", ['Location', 'Facility', 'Equipment', 'Vehicle', 'Infrastructure'])),
            novo_issue('Install Date', "Install Date", novo_date_issue_of("Install Date", __p_install_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Last Service Date', "Last Service Date", novo_date_issue_of("Last Service Date", __p_last_service_date, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Status', "Status", novo_choice_issue("Status", ['Active', 'Inactive', 'Retired'])),
            novo_issue('Latitude', "Latitude", novo_number_issue("Latitude", lo := -90, hi := 90), CASE WHEN novo_number_issue("Latitude", lo := -90, hi := 90) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from -90 to 90); staged as empty' END),
            novo_issue('Longitude', "Longitude", novo_number_issue("Longitude", lo := -180, hi := 180), CASE WHEN novo_number_issue("Longitude", lo := -180, hi := 180) = 'bad_number' THEN NULL ELSE 'outside the plausible range (from -180 to 180); staged as empty' END),
            novo_required_issue('Date Added', "Date Added", 'asset'),
            novo_issue('Date Added', "Date Added", novo_datetime_issue_of("Date Added", __p_date_added, TIMESTAMPTZ '{{ exported_at }}')),
            novo_issue('Date Modified', "Date Modified", novo_datetime_issue_of("Date Modified", __p_date_modified, TIMESTAMPTZ '{{ exported_at }}'))
        ], {{ udf_issues('Asset') }})) AS _issues,
        CASE WHEN novo_is_null("Asset ID") THEN 'Asset ID'
             WHEN novo_is_null("Asset Name") THEN 'Asset Name' END AS _missing_column,
        CASE WHEN novo_is_null("Asset ID") THEN "Asset ID"
             WHEN novo_is_null("Asset Name") THEN "Asset Name" END AS _missing_raw
    FROM parsed
),
ranked AS (
    SELECT *,
        CASE WHEN _missing_column IS NULL THEN first_value(_row_number) OVER (
            PARTITION BY asset_id, _missing_column IS NULL ORDER BY date_modified DESC NULLS LAST, _row_number DESC) END AS _winner
    FROM typed
),
p_account_id AS (
    SELECT DISTINCT account_id AS id FROM {{ ref('stg_accounts') }} WHERE _run_key IN {{ parent_runs }}
),
p_department_id AS (
    SELECT DISTINCT department_id AS id FROM {{ ref('stg_departments') }} WHERE _run_key IN {{ parent_runs }}
),
p_parent_asset_id AS (  -- the assets staged by this model
    SELECT DISTINCT asset_id AS id FROM ranked WHERE _missing_column IS NULL AND _winner = _row_number
    UNION SELECT id FROM {{ earlier_ids('stg_assets', 'asset_id') }}
),
hierarchy AS (  -- the staged assets and the parent each keeps (an orphan parent is dropped above)
    SELECT r.asset_id, r.parent_asset_id AS parent FROM ranked r
    JOIN p_parent_asset_id p ON p.id = r.parent_asset_id
    WHERE r._missing_column IS NULL AND r._winner = r._row_number
),
walk(start, cur) AS (  -- every ancestor of every asset; UNION keeps it finite on a cycle
    SELECT asset_id, parent FROM hierarchy
    UNION
    SELECT w.start, h.parent FROM walk w JOIN hierarchy h ON h.asset_id = w.cur WHERE w.cur <> w.start
),
in_cycle AS (  -- an asset that is its own ancestor; the cycle's size = the ancestors it reaches
    SELECT start AS id, count(DISTINCT cur) AS size FROM walk
    GROUP BY start HAVING bool_or(cur = start)
)
SELECT
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) REPLACE (
        CASE WHEN p_account_id.id IS NULL THEN NULL ELSE r.account_id END AS account_id,
        CASE WHEN p_department_id.id IS NULL THEN NULL ELSE r.department_id END AS department_id,
        CASE WHEN p_parent_asset_id.id IS NULL THEN NULL ELSE r.parent_asset_id END AS parent_asset_id,
        novo_issues(list_concat(r._issues, [
            novo_issue('Account ID', r.account_id, CASE WHEN r.account_id IS NOT NULL AND p_account_id.id IS NULL THEN 'orphan_reference' END,
                       'Account ID ' || r.account_id || ' is not an account of this export (or, for a delta, an earlier run); the asset loads without this link'),
            novo_issue('Department ID', r.department_id, CASE WHEN r.department_id IS NOT NULL AND p_department_id.id IS NULL THEN 'orphan_reference' END,
                       'Department ID ' || r.department_id || ' is not a department of this export (or, for a delta, an earlier run); the asset loads without this link'),
            novo_issue('Parent Asset ID', r.parent_asset_id, CASE WHEN r.parent_asset_id IS NOT NULL AND p_parent_asset_id.id IS NULL THEN 'orphan_reference' END,
                       'Parent Asset ID ' || r.parent_asset_id || ' is not an asset of this export (or, for a delta, an earlier run); the asset loads without this link'),
            novo_issue('Parent Asset ID', r.parent_asset_id, CASE WHEN in_cycle.id IS NOT NULL THEN 'hierarchy_cycle' END,
                       'Parent Asset ID ' || r.parent_asset_id || ' closes a cycle of ' || in_cycle.size || ' asset(s) (an asset is its own ancestor); kept as exported — '
                       || 'shaping breaks each cycle at its smallest Asset ID, which goes to the top of the hierarchy (warning hierarchy_cycle_broken)')
        ])) AS _issues
    ),
    CASE WHEN r._missing_column IS NOT NULL THEN 'missing_required'
         WHEN r._winner <> r._row_number THEN 'duplicate_id' END AS _row_reason,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_column
         WHEN r._winner <> r._row_number THEN 'Asset ID' END AS _row_column,
    CASE WHEN r._missing_column IS NOT NULL THEN r._missing_raw
         WHEN r._winner <> r._row_number THEN r.asset_id END AS _row_raw_value,
    CASE WHEN r._missing_column IS NOT NULL THEN 'required ' || r._missing_column || ' is empty'
         WHEN r._winner <> r._row_number THEN 'duplicate Asset ID ' || r.asset_id || ': row ' || r._winner || ' wins (latest Date Modified, ties: last row in the file)' END AS _row_message
FROM ranked r
LEFT JOIN p_account_id ON p_account_id.id = r.account_id
LEFT JOIN p_department_id ON p_department_id.id = r.department_id
LEFT JOIN p_parent_asset_id ON p_parent_asset_id.id = r.parent_asset_id
LEFT JOIN in_cycle ON in_cycle.id = r.asset_id AND r._winner = r._row_number
