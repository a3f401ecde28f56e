"""Every parsing rule of dbt_like_sql/macros/novo_types.sql, through the real macros in DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flitstack_dagster.novo.columns import NULL_MARKERS
from flitstack_dagster.staging.runner import ensure_macros, load_macros

EXP = "TIMESTAMPTZ '2026-11-20 07:00:00+00'"
CHI = "America/Chicago"


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    load_macros(c)
    yield c
    c.close()


def one(con, sql: str, *params):
    return con.execute(f"SELECT {sql}", list(params)).fetchone()[0]


# ------------------------------------------------------------------------------------------- nulls


@pytest.mark.parametrize("v", [*NULL_MARKERS, "  ", " N/A ", "\tNULL\n", " - ", None])
def test_null_markers_become_null_for_every_type(con, v):
    row = con.execute(
        f"""SELECT novo_text($1), novo_id($1), novo_name($1), novo_date($1, 'MDY', {EXP}),
                   novo_datetime($1, 'MDY', '{CHI}', {EXP}), novo_money($1), novo_number($1),
                   novo_yesno($1), novo_email($1), novo_multi($1),
                   novo_date_issue($1, 'MDY', {EXP}), novo_datetime_issue($1, 'MDY', '{CHI}', {EXP}),
                   novo_money_issue($1), novo_number_issue($1), novo_yesno_issue($1), novo_email_issue($1),
                   novo_choice_issue($1, ['Open'])""",
        [v],
    ).fetchone()
    assert row == (None,) * 17


def test_text_is_kept_as_written(con):
    v = "  <b>Pump</b> leaks\n  second line  "
    assert one(con, "novo_text($1)", v) == v
    assert one(con, "novo_text($1)", "N/A-ish") == "N/A-ish"


def test_a_pasted_byte_order_mark_is_dropped_from_text_and_names(con):
    assert one(con, "novo_text($1)", "\ufeffPump room") == "Pump room"
    assert one(con, "novo_text($1)", "ï»¿Pump room") == "Pump room"  # the UTF-8 BOM read as cp1252
    assert one(con, "novo_text($1)", "Pump \ufeff room") == "Pump \ufeff room"  # only at the start
    assert one(con, "novo_name($1)", "\ufeffSMITH") == "Smith"


@pytest.mark.parametrize("raw, is_null, trimmed", [
    ("N/A", True, "N/A"),
    (" N/A", True, "N/A"),
    ("\xa0-\xa0", True, "-"),
    ("\r\nNULL\x0c", True, "NULL"),
    (" N/A\x0b", True, "N/A"),  # padded (a space first): the trim also drops the vertical tab
    ("\x0bN/A", False, "\x0bN/A"),  # a vertical tab alone is not padding
    ("x\u2003", False, "x\u2003"),  # nor an em space
    ("", True, ""),
    ("a b", False, "a b"),
    (" é\xa0", False, "é"),
])
def test_padding_is_looked_for_at_both_ends_only(con, raw, is_null, trimmed):
    """The fast padding test (first and last code point) decides exactly what the old regex did."""
    assert one(con, "novo_is_null($1)", raw) is is_null
    assert one(con, "novo_trim($1)", raw) == trimmed


def test_ids_keep_leading_zeros_and_are_trimmed(con):
    assert one(con, "novo_id($1)", " 00042 ") == "00042"
    assert one(con, "novo_id($1)", "42") == "42"


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("raw, want", [
    ("  JOHN   SMITH ", "John Smith"),
    ("mary-jane o'neil", "Mary-Jane O'Neil"),
    ("ÉLODIE", "Élodie"),
    ("McDonald", "McDonald"),  # mixed case is the user's choice
    ("van der Berg", "van der Berg"),
    ("Ann\t  Lee", "Ann Lee"),
])
def test_names(con, raw, want):
    assert one(con, "novo_name($1)", raw) == want


# ------------------------------------------------------------------------------------------- dates


@pytest.mark.parametrize("raw, order, want", [
    ("11/20/2026", "MDY", date(2026, 11, 20)),
    ("1/2/2026", "MDY", date(2026, 1, 2)),
    ("20/11/2026", "DMY", date(2026, 11, 20)),
    ("1/2/2026", "DMY", date(2026, 2, 1)),
    ("2026-11-20", "MDY", date(2026, 11, 20)),
    ("2026-11-20", "DMY", date(2026, 11, 20)),
    (" 11/20/2026 ", "MDY", date(2026, 11, 20)),
    ("11/20/2026 2:15 PM", "MDY", date(2026, 11, 20)),  # a date-time in a date column keeps its date
])
def test_dates(con, raw, order, want):
    assert one(con, f"novo_date($1, $2, {EXP})", raw, order) == want
    assert one(con, f"novo_date_issue($1, $2, {EXP})", raw, order) is None


@pytest.mark.parametrize("raw, order", [
    ("02/30/2026", "MDY"), ("30/02/2026", "DMY"), ("13/01/2026", "MDY"), ("2026-02-30", "MDY"),
    ("11/20/26", "MDY"), ("20/11/2026", "MDY"), ("tomorrow", "MDY"), ("2026/11/20", "MDY"),
])
def test_bad_dates(con, raw, order):
    assert one(con, f"novo_date($1, $2, {EXP})", raw, order) is None
    assert one(con, f"novo_date_issue($1, $2, {EXP})", raw, order) == "bad_date"


@pytest.mark.parametrize("raw, code", [
    ("12/31/1899", "date_out_of_range"),
    ("1/1/1900", "date_out_of_range"),  # placeholder
    ("6/15/1901", "date_out_of_range"),  # placeholder year
    ("1/1/1902", None),
    ("1/1/1970", "date_out_of_range"),  # Unix-epoch placeholder
    ("1/2/1970", None),
    ("0001-01-01", "date_out_of_range"),
    ("11/20/2031", None),  # exactly five years after exported_at
    ("11/21/2031", "date_out_of_range"),
    ("2099-01-01", "date_out_of_range"),
])
def test_date_range(con, raw, code):
    assert one(con, f"novo_date_issue($1, 'MDY', {EXP})", raw) == code
    assert (one(con, f"novo_date($1, 'MDY', {EXP})", raw) is None) == (code is not None)


# ------------------------------------------------------------------------------------------- date-times


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize("raw, order, want", [
    ("11/20/2026 2:15 PM", "MDY", utc(2026, 11, 20, 20, 15)),  # CST = UTC-6
    ("11/20/2026 2:15PM", "MDY", utc(2026, 11, 20, 20, 15)),
    ("11/20/2026 12:05 am", "MDY", utc(2026, 11, 20, 6, 5)),
    ("11/20/2026 14:15", "MDY", utc(2026, 11, 20, 20, 15)),
    ("11/20/2026 14:15:09", "MDY", utc(2026, 11, 20, 20, 15, 9)),
    ("20/11/2026 14:15:09", "DMY", utc(2026, 11, 20, 20, 15, 9)),
    ("2026-11-20 14:15", "MDY", utc(2026, 11, 20, 20, 15)),
    ("2026-11-20T14:15:00", "DMY", utc(2026, 11, 20, 20, 15)),
    ("2026-07-04T14:15:00", "MDY", utc(2026, 7, 4, 19, 15)),  # CDT = UTC-5
    ("2026-11-20T20:15:00Z", "MDY", utc(2026, 11, 20, 20, 15)),
    ("2026-11-20T22:15:00+02:00", "MDY", utc(2026, 11, 20, 20, 15)),
    ("2026-11-20 15:15:00-0500", "MDY", utc(2026, 11, 20, 20, 15)),
    ("11/20/2026", "MDY", utc(2026, 11, 20, 6, 0)),  # a date alone: midnight wall time
])
def test_datetimes(con, raw, order, want):
    assert one(con, f"novo_datetime($1, $2, '{CHI}', {EXP})", raw, order) == want
    assert one(con, f"novo_datetime_issue($1, $2, '{CHI}', {EXP})", raw, order) is None


@pytest.mark.parametrize("raw, want", [
    ("2026-11-20 2:15:09 pm", utc(2026, 11, 20, 20, 15, 9)),
    ("2026-11-20T2:15:09PM", utc(2026, 11, 20, 20, 15, 9)),
    ("2026-11-20   14:15:09.5", utc(2026, 11, 20, 20, 15, 9, 500000)),
    ("11/20/2026T14:15", None),  # a slash date takes a space, not T
    ("2026-11-20 14:15:09 PM", None),  # 14 is not a 12-hour clock hour
    ("2026-11-20 14:15 :09", None),
    ("2026-11-20 14:15:09.1234567", None),
    ("2026-11-20 1:5", None),
])
def test_each_wall_clock_shape_gets_its_one_format(con, raw, want):
    assert one(con, f"novo_datetime($1, 'MDY', '{CHI}', {EXP})", raw) == want


@pytest.mark.parametrize("plain, spelled_otherwise", [
    ("1/2/2026 7:05", "1/2/2026  7:05"),
    ("11/20/2026 14:15:09", "11/20/2026   14:15:09"),
    ("11/20/2026 14:15:09", "\u00a011/20/2026 14:15:09 "),  # padded: trimmed first
    ("2026-11-20T14:15", "2026-11-20  14:15"),
    ("2026-1-2 7:05:09", "2026-1-2   7:05:09"),
    ("02/30/2026 10:00", "02/30/2026  10:00"),  # impossible either way
    ("2026-11-20 24:00", "2026-11-20  24:00"),
    ("11/20/2026 14:60", "11/20/2026  14:60"),
])
@pytest.mark.parametrize("order", ["MDY", "DMY"])
def test_plain_values_read_as_their_normalized_spelling(con, plain, spelled_otherwise, order):
    """A plain value is read by its shape's format directly; the same value spelled with more spaces
    (the normalizing path) must read the same."""
    got = one(con, "novo_wall_ts($1, $2)", plain, order)
    assert got == one(con, "novo_wall_ts($1, $2)", spelled_otherwise, order)
    if "/" not in plain or order == "MDY":
        assert (got is None) == any(bad in plain for bad in ("02/30", "24:00", ":60"))


def test_datetime_type_is_timestamptz(con):
    assert one(con, f"typeof(novo_datetime('2026-11-20 14:15', 'MDY', '{CHI}', {EXP}))") == "TIMESTAMP WITH TIME ZONE"


@pytest.mark.parametrize("raw", ["11/20/2026 25:00", "11/20/2026 13:15 PM", "02/30/2026 10:00",
                                 "2026-11-20T14:15:00+25", "noon", "11/20/2026 14h15"])
def test_bad_datetimes(con, raw):
    assert one(con, f"novo_datetime($1, 'MDY', '{CHI}', {EXP})", raw) is None
    assert one(con, f"novo_datetime_issue($1, 'MDY', '{CHI}', {EXP})", raw) == "bad_datetime"


def test_datetime_range(con):
    assert one(con, f"novo_datetime_issue('1899-12-31 23:00', 'MDY', 'UTC', {EXP})") == "date_out_of_range"
    assert one(con, f"novo_datetime_issue('01/01/1970 23:30', 'MDY', 'America/Chicago', {EXP})") == "date_out_of_range"
    assert one(con, f"novo_datetime_issue('01/01/1970 00:10', 'MDY', 'Asia/Tokyo', {EXP})") == "date_out_of_range"
    assert one(con, f"novo_datetime_issue('01/02/1970 15:00', 'MDY', 'UTC', {EXP})") is None
    assert one(con, f"novo_datetime_issue('2032-01-01T00:00:00Z', 'MDY', 'UTC', {EXP})") == "date_out_of_range"
    assert one(con, f"novo_datetime('2032-01-01T00:00:00Z', 'MDY', 'UTC', {EXP})") is None
    assert one(con, f"novo_datetime_issue('2031-11-20T07:00:00Z', 'MDY', 'UTC', {EXP})") is None


@pytest.mark.parametrize("wall, want", [
    # spring forward, America/Chicago 2026-03-08: 02:00 CST -> 03:00 CDT
    ("2026-03-08 01:59", utc(2026, 3, 8, 7, 59)),
    ("2026-03-08 02:30", utc(2026, 3, 8, 8, 30)),  # does not exist: offset before the change (fold=0)
    ("2026-03-08 03:00", utc(2026, 3, 8, 8, 0)),
    # fall back, 2026-11-01: 02:00 CDT -> 01:00 CST
    ("2026-11-01 00:59", utc(2026, 11, 1, 5, 59)),
    ("2026-11-01 01:30", utc(2026, 11, 1, 6, 30)),  # twice: the earlier instant (fold=0)
    ("2026-11-01 02:00", utc(2026, 11, 1, 8, 0)),
])
def test_dst_edges_match_zoneinfo_fold0(con, wall, want):
    got = one(con, f"novo_datetime($1, 'MDY', '{CHI}', {EXP})", wall)
    assert got == want
    py = datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(CHI)).astimezone(UTC)
    assert got == py


FORMATS_MDY = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _fmt(dt: datetime, fmt: str, order: str) -> str:
    if order == "DMY":
        fmt = fmt.replace("%m/%d/%Y", "%d/%m/%Y")
    s = dt.strftime(fmt)
    if "%I" in fmt:  # Novo writes 2:15 PM, not 02:15 PM
        date_part, time_part, ampm = s.split(" ")
        s = f"{date_part} {time_part.lstrip('0') or '0'} {ampm}"
    return s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dt=st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2030, 12, 31)),
    fmt=st.sampled_from(FORMATS_MDY),
    order=st.sampled_from(["MDY", "DMY"]),
    tz=st.sampled_from(["America/Chicago", "Europe/Berlin", "Australia/Sydney", "UTC", "Asia/Kolkata"]),
)
@pytest.mark.slow
def test_property_every_format_both_orders_matches_zoneinfo(con, dt, fmt, order, tz):
    dt = dt.replace(microsecond=0)
    if "%S" not in fmt:
        dt = dt.replace(second=0)
    raw = _fmt(dt, fmt, order)
    want = dt.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)  # fold=0, as the macro documents
    got = one(con, "novo_ts_parse($1, $2, $3)", raw, order, tz)
    assert got == want, raw


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dt=st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2030, 12, 31),
                    timezones=st.just(UTC)),
    offset_min=st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15),
)
def test_property_offsets_are_instants(con, dt, offset_min):
    from datetime import timezone as tzmod

    local = dt.replace(microsecond=0).astimezone(tzmod(timedelta(minutes=offset_min)))
    raw = local.isoformat()
    assert one(con, "novo_ts_parse($1, 'MDY', 'America/Chicago')", raw) == dt.replace(microsecond=0)


# ------------------------------------------------------------------------------------------- money, numbers


@pytest.mark.parametrize("raw, want", [
    ("$1,234.56", Decimal("1234.56")), ("1234.56", Decimal("1234.56")), ("1,234.56", Decimal("1234.56")),
    ("-12.00", Decimal("-12.00")), ("(12.00)", Decimal("-12.00")), ("($1,200.50)", Decimal("-1200.50")),
    ("-$12", Decimal("-12.00")), ("$-12", Decimal("-12.00")), (" 7 ", Decimal("7.00")), ("$0.5", Decimal("0.50")),
    ("1234567890123456.78", Decimal("1234567890123456.78")),
])
def test_money(con, raw, want):
    assert one(con, "novo_money($1)", raw) == want
    assert one(con, "novo_money_issue($1)", raw) is None
    assert one(con, "typeof(novo_money($1))", raw) == "DECIMAL(18,2)"


@pytest.mark.parametrize("raw", ["12,34", "abc", "$", "1.2.3", "--5", "(-5)", "1e5", "12 USD", "99999999999999999.00"])
def test_bad_money(con, raw):
    assert one(con, "novo_money($1)", raw) is None
    assert one(con, "novo_money_issue($1)", raw) == "bad_money"


@pytest.mark.parametrize("raw, want", [("1,234.5", 1234.5), ("1234.5", 1234.5), ("-3", -3.0), (".5", 0.5), ("0", 0.0)])
def test_numbers(con, raw, want):
    assert one(con, "novo_number($1)", raw) == want
    assert one(con, "novo_number_issue($1)", raw) is None


@pytest.mark.parametrize("raw", ["1,23", "abc", "inf", "NaN", "1e5", "3 hours"])
def test_bad_numbers(con, raw):
    assert one(con, "novo_number($1)", raw) is None
    assert one(con, "novo_number_issue($1)", raw) == "bad_number"


@pytest.mark.parametrize("raw, lo, hi, code", [
    ("-3", 0, 24, "negative_number"), ("99999", 0, 24, "absurd_number"), ("24", 0, 24, None),
    ("0", 0, 24, None), ("1001", 0, 1000, "absurd_number"), ("-91", -90, 90, "absurd_number"),
])
def test_number_ranges(con, raw, lo, hi, code):
    assert one(con, "novo_number_issue($1, lo := $2, hi := $3)", raw, lo, hi) == code
    got = one(con, "novo_number($1, lo := $2, hi := $3)", raw, lo, hi)
    assert (got is None) == (code is not None)


# ------------------------------------------------------------------------------------------- yes/no, email, multi


@pytest.mark.parametrize("raw, want", [
    ("Yes", True), ("YES", True), ("y", True), ("True", True), ("1", True), (" true ", True),
    ("No", False), ("n", False), ("FALSE", False), ("0", False),
])
def test_yesno(con, raw, want):
    assert one(con, "novo_yesno($1)", raw) is want
    assert one(con, "novo_yesno_issue($1)", raw) is None


@pytest.mark.parametrize("raw", ["maybe", "2", "t", "oui"])
def test_bad_yesno(con, raw):
    assert one(con, "novo_yesno($1)", raw) is None
    assert one(con, "novo_yesno_issue($1)", raw) == "bad_yesno"


@pytest.mark.parametrize("raw, want", [
    (" John.Doe@Example.COM ", "john.doe@example.com"), ("a+b@x.co", "a+b@x.co"), ("o'neil@city.gov", "o'neil@city.gov"),
])
def test_email(con, raw, want):
    assert one(con, "novo_email($1)", raw) == want
    assert one(con, "novo_email_issue($1)", raw) is None


@pytest.mark.parametrize("raw", ["bad@", "@x.com", "a@b", "a b@x.com", "a..b@x.com", "a@x..com", "a@@x.com", "a@-x.com"])
def test_invalid_email(con, raw):
    assert one(con, "novo_email($1)", raw) is None
    assert one(con, "novo_email_issue($1)", raw) == "invalid_email"


def test_multi(con):
    assert one(con, "novo_multi($1)", "Red; Green;Blue; ; N/A") == ["Red", "Green;Blue"]
    assert one(con, "typeof(novo_multi($1))", "a") == "VARCHAR[]"


def test_choices(con):
    assert one(con, "novo_choice_issue($1, ['Open', 'Closed'])", "Open") is None
    assert one(con, "novo_choice_issue($1, ['Open', 'Closed'])", " Open ") is None
    assert one(con, "novo_choice_issue($1, ['Open', 'Closed'])", "Awaiting Parts") == "unknown_value"
    assert one(con, "novo_multi_choice_issue($1, ['A', 'B'])", "A; B") is None
    assert one(con, "novo_multi_choice_issue($1, ['A', 'B'])", "A; C") == "unknown_value"
    assert one(con, "novo_multi_choice_issue($1, []::VARCHAR[])", "anything") is None


def test_issue_struct_and_filter(con):
    got = one(con, "novo_issues([novo_issue('Hours', '-3', 'negative_number'), novo_issue('X', 'y', NULL)])")
    assert got == [{"column": "Hours", "raw_value": "-3", "reason_code": "negative_number",
                    "message": "negative where only zero or more makes sense; staged as empty"}]
    assert one(con, "novo_issue('a', 'b', 'bad_money', 'custom')")["message"] == "custom"


@pytest.mark.parametrize(("code", "message"), [
    ("bad_date", "not a date in a supported format; staged as empty"),
    ("bad_datetime", "not a date-time in a supported format; staged as empty"),
    ("date_out_of_range", "date before 1900 or more than 5 years after the export; staged as empty"),
    ("bad_money", "not a money amount; staged as empty"),
    ("bad_number", "not a number; staged as empty"),
    ("negative_number", "negative where only zero or more makes sense; staged as empty"),
    ("absurd_number", "outside the plausible range; staged as empty"),
    ("bad_yesno", "not Yes/No, Y/N, True/False or 1/0; staged as empty"),
    ("invalid_email", "not a valid email address; staged as empty"),
    ("unknown_value", "not one of the documented values; kept as is for the mapping step"),
    ("orphan_reference", "refers to a record that is not in this export; staged as empty"),
    ("hierarchy_cycle", "hierarchy_cycle"),  # a code without a default message is its own message
])
def test_issue_default_messages(con, code, message):
    assert one(con, "novo_issue('Col', 7, $1)", code) == {
        "column": "Col", "raw_value": "7", "reason_code": code, "message": message}
    # a message that turns out empty falls back to the default too
    assert one(con, "novo_issue('Col', 7, $1, CASE WHEN false THEN 'x' END)", code)["message"] == message


def test_ensure_macros_skips_when_current_and_reloads_when_changed(tmp_path):
    c = duckdb.connect()
    ensure_macros(c)
    v1 = c.execute("SELECT novo_macros_version()").fetchone()[0]
    c.execute("CREATE OR REPLACE MACRO novo_text(v) AS 'tampered'")
    ensure_macros(c)  # same version: not reloaded
    assert c.execute("SELECT novo_text('x')").fetchone()[0] == "tampered"
    f = tmp_path / "m.sql"
    f.write_text("CREATE OR REPLACE MACRO novo_text(v) AS v || '!';\n")
    ensure_macros(c, f)
    assert c.execute("SELECT novo_text('x')").fetchone()[0] == "x!"
    assert c.execute("SELECT novo_macros_version()").fetchone()[0] != v1
