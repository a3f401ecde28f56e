"""The landing checks reuse the bundle reader's header and UDF rules on what landed."""

from flitstack_dagster.novo.columns import BY_ENTITY
from flitstack_dagster.novo.landing import LandedFile
from flitstack_dagster.novo.raw_checks import missing_headers


def _landed(entity: str, columns: list[str]) -> LandedFile:
    nf = BY_ENTITY[entity]
    return LandedFile(file=nf.file, entity=entity, table=f"raw.{entity}", rows=0, columns=columns, udf_columns=[])


def test_complete_headers_have_no_problem():
    assert missing_headers([_landed("labor", BY_ENTITY["labor"].headers)]) == []


def test_a_missing_standard_column_is_named():
    headers = [h for h in BY_ENTITY["labor"].headers if h != "Hours"]
    problems = missing_headers([_landed("labor", headers)])
    assert len(problems) == 1 and "labor.csv" in problems[0] and "'Hours'" in problems[0]
