-- Locations and equipment (assets.csv), typed; duplicate Asset IDs resolved by Date Modified; an
-- Account ID or Parent Asset ID that is not in the run is dropped with a notice; every asset on a
-- cycle of Parent Asset IDs is reported (kept as exported: shaping breaks the cycle).
-- Output contract: flitstack_dagster.staging.runner (rows with _row_reason go to staging.quarantine).
{% set links = [
    link('Account ID', 'stg_accounts.account_id', 'an account'),
    link('Department ID', 'stg_departments.department_id', 'a department'),
    link('Parent Asset ID', none, 'an asset'),
] -%}
WITH RECURSIVE {{ run_rows('assets') }},
{{ parsed_once(dates=['Install Date', 'Last Service Date'], datetimes=['Date Added', 'Date Modified']) }},
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
        {{ missing_required('Asset ID', 'Asset Name') }}
    FROM parsed
),
{{ latest_wins('Asset ID', 'Date Modified') }}{{ link_ids(links) }},
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
    r.* EXCLUDE (_missing_column, _missing_raw, _winner) {% call unlinked_as_null(links, 'asset') -%}
            novo_issue('Parent Asset ID', r.parent_asset_id, CASE WHEN in_cycle.id IS NOT NULL THEN 'hierarchy_cycle' END,
                       'Parent Asset ID ' || r.parent_asset_id || ' closes a cycle of ' || in_cycle.size || ' asset(s) (an asset is its own ancestor); kept as exported — '
                       || 'shaping breaks each cycle at its smallest Asset ID, which goes to the top of the hierarchy (warning hierarchy_cycle_broken)')
    {%- endcall %},
    {{ row_verdict(links, 'Asset ID', 'Date Modified') }}
FROM ranked r{{ link_joins(links) }}
LEFT JOIN in_cycle ON in_cycle.id = r.asset_id AND r._winner = r._row_number
