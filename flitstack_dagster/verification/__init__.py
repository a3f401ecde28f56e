"""Verification: prove what a migration run wrote, and hand people the documents they need.

No Dagster here (defs/verification.py wires it). Module map:
- `rebuild`      the rebuild reference: workflow/routing rules, PM recurrences and forms that do not
                 migrate, with the Pipedrive automation (or Zapier/Make) pattern that replaces each
- `audit_export` the run's audit rows as CSV and Parquet
- `verify`       the run's field-level diff (`verification.field_diff`), summary and duplicates
- `store`        verification tables
- `report_html`  the self-contained field-level diff report

Reading records back (`loading.readback`), comparing one field (`loading.compare`), the
reconciliation (`loading.reconcile`) and the verified samples (`loading.verified_samples`) live in
`loading`: rollback, repair and the load gate need them too, and imports point down the flow.
"""
