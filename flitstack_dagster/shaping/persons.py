"""Contacts (technicians, requesters) -> Pipedrive persons (pd_persons).

- source id `contact:<Contact ID>`, kind = `technician` / `requester` / `technician_requester` /
  `contact` (by Role).
- name = First + Last, whitespace collapsed (case kept as exported). No name at all -> set aside
  (`required_missing`).
- emails = [{value, primary, label "work"}] from the staged (trimmed, lower-cased, valid) Email;
  an email staging nulled as invalid raises an `invalid_email` warning (from staging.quarantine),
  so does a value that still does not look like an email.
- phones = work Phone (primary) and Mobile (label `mobile`).
- organization = the contact's account (`org_ref` = `account:<Account ID>`); an account that is not
  shaped nor already loaded is dropped with a `reference_dropped` warning — the person still loads.
- `Novo_Role__c` = Role (value map `contacts.Role`); `Novo_Department__c` = the department's name
  (value map `contacts.Department ID`, keyed by department name); `Novo Contact ID`; `Novo Source ID`.
- owner = the contact's own Pipedrive user when owner resolution matched one, else the fallback.
- add_time = Date Added (original creation time; settable on v2 persons).
"""

from __future__ import annotations

import polars as pl

from flitstack_dagster.mapping.model import Mapping
from flitstack_dagster.novo.ids import in_set, sid
from flitstack_dagster.shaping.common import (
    WARNING_SCHEMA,
    Owners,
    ShapeContext,
    Shaped,
    clean_name,
    concat,
    dropped_reference,
    finish,
    map_values,
    mapped_extras,
    owner_lookup,
    record_columns,
    set_aside,
    target_name,
    utc_iso,
    warnings,
)
from flitstack_dagster.shaping.organizations import SOURCE_ID_FIELD

EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DEFAULTS = {"Contact ID": "Novo Contact ID", "Role": "Novo_Role__c", "Department ID": "Novo_Department__c"}


def shape_persons(
    contacts: pl.DataFrame,
    departments: pl.DataFrame,
    quarantine: pl.DataFrame,
    org_ids: set[str] | frozenset[str],
    mapping: Mapping,
    owners: Owners,
    ctx: ShapeContext,
) -> Shaped:
    e = "contacts"
    df = contacts.with_columns(
        sid("contact", "contact_id").alias("source_id"),
        clean_name(pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True)).alias(
            "_name"
        ),
        sid("account", "account_id").alias("_acc"),
    )
    dept = departments.select("department_id", pl.col("department_name").alias("_dept")).unique("department_id", keep="last")
    df = df.join(dept, on="department_id", how="left", maintain_order="left")
    df = owner_lookup(df, "contact_id", owners)
    bad = df.filter(pl.col("_name").is_null())
    df = df.filter(pl.col("_name").is_not_null())
    df = df.with_columns(
        pl.when(in_set(pl.col("_acc"), org_ids)).then(pl.col("_acc")).otherwise(None).alias("org_ref"),
    )
    email = pl.col("email").cast(pl.String).str.strip_chars()
    phone_work = pl.when(pl.col("phone").is_not_null()).then(
        pl.struct(value=clean_name(pl.col("phone")), label=pl.lit("work"), primary=pl.lit(True))
    )
    phone_mobile = pl.when(pl.col("mobile").is_not_null()).then(
        pl.struct(value=clean_name(pl.col("mobile")), label=pl.lit("mobile"), primary=pl.col("phone").is_null())
    )
    fields: dict[str, pl.Expr] = {
        "name": pl.col("_name"),
        "emails": pl.when(email.is_not_null() & (email != ""))
        .then(pl.concat_list([pl.struct(value=email, label=pl.lit("work"), primary=pl.lit(True))]))
        .otherwise(None),
        "phones": pl.concat_list([phone_work, phone_mobile]).list.drop_nulls(),
        "add_time": utc_iso(pl.col("date_added")),
        SOURCE_ID_FIELD: pl.col("source_id"),
    }
    if (n := target_name(mapping, e, "Contact ID", DEFAULTS["Contact ID"])) :
        fields[n] = pl.col("contact_id")
    if (n := target_name(mapping, e, "Role", DEFAULTS["Role"])) :
        fields[n] = map_values(pl.col("role"), mapping, "contacts.Role")
    if (n := target_name(mapping, e, "Department ID", DEFAULTS["Department ID"])) :
        # the approved value map is keyed by Department ID (-> option label); without one, the name
        fields[n] = (
            map_values(pl.col("department_id"), mapping, "contacts.Department ID")
            if "contacts.Department ID" in mapping.value_maps
            else pl.col("_dept")
        )
    handled = ["Contact ID", "First Name", "Last Name", "Email", "Phone", "Mobile", "Role", "Department ID", "Account ID", "Date Added"]
    fields.update(mapped_extras(mapping, e, "person", df, handled))
    kind = (
        pl.col("role")
        .replace_strict(
            {"Technician": "technician", "Requester": "requester", "Technician/Requester": "technician_requester"},
            default="contact",
            return_dtype=pl.String,
        )
        .fill_null("contact")
    )
    frame = df.select(
        *record_columns("contact", kind, fields),
        "org_ref",
        "owner_id",
    )
    # warnings
    q = quarantine.filter(
        (pl.col("file") == "contacts.csv") & (pl.col("column") == "Email")
    ).select("row_number", "raw_value")
    bad_email = df.join(q, left_on="_row_number", right_on="row_number", how="inner")
    odd_email = df.filter(email.is_not_null() & ~email.str.contains(EMAIL_RE))
    warn = concat(
        [
            warnings(bad_email, ctx, "invalid_email", "contact", pl.format("invalid email '{}' not migrated", pl.col("raw_value"))),
            warnings(odd_email, ctx, "invalid_email", "contact", pl.format("email '{}' does not look valid", email)),
            dropped_reference(df, ctx, "contact", "account_id", "org_ref",
                              "account {} not found: person loads without organization"),
        ],
        WARNING_SCHEMA,
    )
    sa = set_aside(bad, ctx, "contact", "contacts.csv", "required_missing", "contact has neither first nor last name")
    return Shaped(finish(frame, ctx), sa, warn)
