from datetime import date, datetime, time, timedelta, timezone

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings, strategies as st

from flitstack_dagster.shaping.recurrence import (
    RecurrenceError, occurrences, parse_recurrence, phrase_to_rrule, window,
)

TZ = "America/Chicago"  # DST ends 2026-11-01
WS, WE = date(2026, 10, 20), date(2027, 1, 18)


@pytest.mark.parametrize("phrase,rule", [
    ("Every 2 weeks on Monday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"),
    ("Monthly on day 15", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("Every 3 months", "FREQ=MONTHLY;INTERVAL=3"),
    ("every other week on Tue and Thu", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH"),
    ("Every Monday, Wednesday and Friday", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("Monthly on the last Friday", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("Yearly on March 15", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15"),
    ("Quarterly", "FREQ=MONTHLY;INTERVAL=3"),
    ("Every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
])
def test_phrases(phrase, rule):
    assert phrase_to_rrule(phrase) == rule


@pytest.mark.parametrize("phrase", ["Every blue moon", "Every 2 weeks on Funday", "Monthly on day 45", "when needed"])
def test_unparseable_phrase_is_not_guessed(phrase):
    assert phrase_to_rrule(phrase) is None
    with pytest.raises(RecurrenceError, match=phrase):
        parse_recurrence(phrase, "Weekly", 1)


def test_rrule_wins_over_frequency_and_style():
    assert parse_recurrence("RRULE:FREQ=WEEKLY;BYDAY=MO", "Daily", 1).style == "rrule"
    assert parse_recurrence("Monthly on day 15", "Daily", 1).style == "phrase"
    r = parse_recurrence(None, "Weekly", 2)
    assert (r.style, r.rrule) == ("frequency", "FREQ=WEEKLY;INTERVAL=2")
    with pytest.raises(RecurrenceError):
        parse_recurrence(None, "Fortnightly", 1)
    with pytest.raises(RecurrenceError):
        parse_recurrence("FREQ=SOMETIMES", None, None)


def test_rrule_occurrences_known_dates():
    r = parse_recurrence("FREQ=MONTHLY;BYDAY=1MO", None, None)
    got = [o.local_date for o in occurrences(r, date(2019, 3, 1), WS, WE, TZ)]
    assert got == [date(2026, 11, 2), date(2026, 12, 7), date(2027, 1, 4)]


def test_phrase_occurrences_known_dates():
    r = parse_recurrence("Every 2 weeks on Monday", None, None)
    got = [o.local_date for o in occurrences(r, date(2026, 10, 5), WS, WE, TZ)]
    assert got == [date(2026, 11, 2), date(2026, 11, 16), date(2026, 11, 30), date(2026, 12, 14), date(2026, 12, 28), date(2027, 1, 11)]
    r = parse_recurrence("Monthly on day 15", None, None)
    assert [o.local_date for o in occurrences(r, date(2020, 1, 1), WS, WE, TZ)] == [date(2026, 11, 15), date(2026, 12, 15), date(2027, 1, 15)]
    r = parse_recurrence("Every 3 months", None, None)
    assert [o.local_date for o in occurrences(r, date(2026, 2, 10), WS, WE, TZ)] == [date(2026, 11, 10)]


def test_frequency_every_and_end_date():
    r = parse_recurrence(None, "Daily", 3)
    got = [o.local_date for o in occurrences(r, date(2026, 10, 18), WS, WE, TZ, end=date(2026, 10, 31))]
    assert got == [date(2026, 10, 21), date(2026, 10, 24), date(2026, 10, 27), date(2026, 10, 30)]
    r = parse_recurrence(None, "Monthly", None)  # Every empty = 1; 31st skips short months
    got = [o.local_date for o in occurrences(r, date(2016, 1, 31), WS, WE, TZ)]
    assert got == [date(2026, 10, 31), date(2026, 12, 31)]


def test_timed_occurrences_keep_wall_time_across_dst():
    r = parse_recurrence("FREQ=WEEKLY;BYDAY=TU;BYHOUR=9;BYMINUTE=0", None, None)
    occ = occurrences(r, date(2026, 10, 1), date(2026, 10, 25), date(2026, 11, 8), TZ)
    assert [o.local_date for o in occ] == [date(2026, 10, 27), date(2026, 11, 3)]
    assert all(o.local_time == time(9, 0) for o in occ)
    assert occ[0].utc == datetime(2026, 10, 27, 14, 0, tzinfo=timezone.utc)  # CDT, UTC-5
    assert occ[1].utc == datetime(2026, 11, 3, 15, 0, tzinfo=timezone.utc)  # CST, UTC-6


def test_dtstart_with_tzid():
    r = parse_recurrence("DTSTART;TZID=America/Chicago:20261001T083000\nRRULE:FREQ=WEEKLY;BYDAY=TH", None, None)
    occ = occurrences(r, date(2026, 10, 1), date(2026, 10, 28), date(2026, 11, 7), TZ)
    assert [(o.local_date, o.utc.hour) for o in occ] == [(date(2026, 10, 29), 13), (date(2026, 11, 5), 14)]


def test_all_day_occurrence_has_no_time_and_date_unchanged_across_dst():
    r = parse_recurrence(None, "Weekly", 1)
    occ = occurrences(r, date(2026, 10, 25), date(2026, 10, 25), date(2026, 11, 9), TZ)
    assert [o.local_date for o in occ] == [date(2026, 10, 25), date(2026, 11, 1), date(2026, 11, 8)]
    assert all(o.utc is None and o.utc_date == o.local_date for o in occ)


def test_window_is_local():
    # 2026-10-21 03:00 UTC is still Oct 20 in Chicago
    assert window(datetime(2026, 10, 21, 3, tzinfo=timezone.utc), TZ, 90) == (date(2026, 10, 20), date(2027, 1, 18))


RULES = ["FREQ=DAILY;INTERVAL=3", "FREQ=WEEKLY;INTERVAL=2", "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,FR", "FREQ=MONTHLY",
         "FREQ=MONTHLY;INTERVAL=5", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29",
         "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=31"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(RULES), st.dates(date(2000, 1, 1), date(2026, 12, 31)))
@pytest.mark.slow
def test_fast_forward_equals_plain_dateutil(rule, start):
    """The fast-forwarded DTSTART gives exactly the dates a plain dateutil expansion gives."""
    r = parse_recurrence(rule, None, None)
    got = [o.local_date for o in occurrences(r, start, WS, WE, TZ)]
    plain = rrulestr(f"DTSTART:{start.strftime('%Y%m%d')}T000000\nRRULE:{rule}")
    want = [d.date() for d in plain.between(datetime.combine(WS, time()), datetime.combine(WE - timedelta(days=1), time(23, 59)), inc=True)]
    assert got == want


@pytest.mark.parametrize("rule, part", [("FREQ=MONTHLY;BYMONTHDAY=40", "BYMONTHDAY=40"),
                                        ("RRULE:FREQ=DAILY;COUNT=0", "COUNT=0"),
                                        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH=13"),
                                        ("Every 0 weeks", "INTERVAL=0")])
def test_a_rule_that_can_never_occur_is_unreadable(rule, part):
    """Parsed but dateless, its schedule would silently yield nothing: it is set aside with its reason."""
    with pytest.raises(RecurrenceError, match=f"{part}: no date can come of it"):
        parse_recurrence(rule, None, None)
    assert parse_recurrence("FREQ=MONTHLY;BYMONTHDAY=-1", None, None).rrule == "FREQ=MONTHLY;BYMONTHDAY=-1"
