"""Verification: prove what a migration run wrote, and hand people the documents they need.

No Dagster here (defs/verification.py wires it). Module map:
- `rebuild`      the rebuild reference: workflow/routing rules, PM recurrences and forms that do not
                 migrate, with the Pipedrive automation (or Zapier/Make) pattern that replaces each
- `audit_export` the run's audit rows as CSV and Parquet
- `readback`     reads the run's records back from Pipedrive, in batches, token-aware
- `compare`      one field: expected (what shaping intended) vs actual, after Pipedrive's normalisation
- `verify`       the run's field-level diff (`verification.field_diff`), summary and duplicates
- `store`        verification tables and verified samples (`meta.verified_samples`)
- `report_html`  the self-contained field-level diff report
- `reconcile`    source = loaded + set aside + not migrated; id map = Pipedrive
"""
