"""The tenant's user defined fields: every Data Type for each UDF entity, and their values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flitstack_dagster.novo.generator import pools
from flitstack_dagster.novo.generator.fmt import Fmt


@dataclass(frozen=True)
class Udf:
    entity: str
    label: str
    data_type: str
    choices: tuple[str, ...] = ()
    required: bool = False

    @property
    def column(self) -> str:
        return f"UDF: {self.label}"


DISTRICTS = tuple(f"District {i}" for i in range(1, 8))
WARDS = tuple(f"Ward {i}" for i in range(1, 11))

UDFS: tuple[Udf, ...] = (
    Udf("Work Order", "Budget Code", "Text", required=True),
    Udf("Work Order", "Resolution Notes", "Long Text"),
    Udf("Work Order", "Crew Size", "Number"),
    Udf("Work Order", "Not To Exceed", "Currency"),
    Udf("Work Order", "Permit Expires", "Date"),
    Udf("Work Order", "Grant Funded", "Yes/No"),
    Udf("Work Order", "Council District", "Pick List", DISTRICTS, True),
    Udf("Work Order", "Ward", "Multi Pick List", WARDS),
    Udf("Asset", "Asset Tag Number", "Text"),
    Udf("Asset", "Inspection Notes", "Long Text"),
    Udf("Asset", "Square Footage", "Number"),
    Udf("Asset", "Replacement Cost", "Currency"),
    Udf("Asset", "Warranty Expires", "Date"),
    Udf("Asset", "ADA Compliant", "Yes/No"),
    Udf("Asset", "Condition Rating", "Pick List", ("Excellent", "Good", "Fair", "Poor", "Critical")),
    Udf("Asset", "Service Zones", "Multi Pick List", ("North", "South", "East", "West", "Central")),
    Udf("Contact", "Employee Number", "Text"),
    Udf("Contact", "Certifications", "Long Text"),
    Udf("Contact", "Years of Service", "Number"),
    Udf("Contact", "Overtime Rate", "Currency"),
    Udf("Contact", "License Expires", "Date"),
    Udf("Contact", "CDL Licensed", "Yes/No"),
    Udf("Contact", "Shift", "Pick List", ("Day", "Swing", "Night", "On Call")),
    Udf("Contact", "Skills", "Multi Pick List", ("Electrical", "Plumbing", "HVAC", "Carpentry", "Welding",
                                                  "Mechanical", "Irrigation")),
    Udf("Account", "Tax ID", "Text"),
    Udf("Account", "Contract Notes", "Long Text"),
    Udf("Account", "Payment Terms Days", "Number"),
    Udf("Account", "Credit Limit", "Currency"),
    Udf("Account", "Contract Expires", "Date"),
    Udf("Account", "Tax Exempt", "Yes/No", required=True),
    Udf("Account", "Council District", "Pick List", DISTRICTS),
    Udf("Account", "Service Categories", "Multi Pick List", ("Plumbing", "Electrical", "HVAC", "Landscaping",
                                                               "Paving", "Janitorial", "Towing")),
)


def for_entity(entity: str) -> tuple[Udf, ...]:
    return tuple(u for u in UDFS if u.entity == entity)


def udf_rows(fmt: Fmt) -> list[dict]:
    return [{"Entity": u.entity, "Label": u.label, "Column": u.column, "Data Type": u.data_type,
             "Choices": "|".join(u.choices), "Required": fmt.yesno(u.required)} for u in UDFS]


def fill(row: dict, udfs: tuple[Udf, ...], fmt: Fmt, today: date) -> None:
    """Set a value for each UDF column of `row` (optional ones are blank about a third of the time)."""
    r = fmt.r
    for u in udfs:
        if not u.required and r() < 0.33:
            row[u.column] = ""
            continue
        t = u.data_type
        if t == "Text":
            row[u.column] = f"{u.label[:3].upper()}-{int(r() * 90000) + 10000}"
        elif t == "Long Text":
            lines = [pools.DESCRIPTION_SENTENCES[int(r() * len(pools.DESCRIPTION_SENTENCES))]
                     for _ in range(1 + int(r() * 3))]
            row[u.column] = "\n".join(lines)
        elif t == "Number":
            row[u.column] = fmt.num(int(r() * 5000) if r() < 0.7 else round(r() * 40, 1))
        elif t == "Currency":
            row[u.column] = fmt.money(round(r() * 250000, 2))
        elif t == "Date":
            row[u.column] = fmt.date(today + timedelta(days=int(r() * 2000) - 700))
        elif t == "Yes/No":
            row[u.column] = fmt.yesno(r() < 0.4)
        elif t == "Pick List":
            row[u.column] = u.choices[int(r() * len(u.choices))]
        else:
            k = 1 + int(r() * 3)
            picked = sorted({int(r() * len(u.choices)) for _ in range(k)})
            row[u.column] = "; ".join(u.choices[i] for i in picked)
