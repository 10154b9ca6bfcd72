"""Cron/rate schedules (AWS and five-field) and the scheduler thread that runs monitor jobs."""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aidlc.errors import UsageError
from aidlc.monitor.schedule import CronSchedule, Job, Scheduler, parse_cron


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def upcoming(expression: str, start: datetime, count: int = 3) -> list[datetime | None]:
    schedule = parse_cron(expression)
    times: list[datetime | None] = []
    moment: datetime | None = start
    for _ in range(count):
        assert moment is not None
        moment = schedule.next_after(moment)
        times.append(moment)
    return times


# --- fixed expected fire times -------------------------------------------------------------

FIVE_FIELD_CASES = [
    (
        "*/5 * * * *",
        at(2026, 3, 10, 10, 3, 27),
        [at(2026, 3, 10, 10, 5), at(2026, 3, 10, 10, 10), at(2026, 3, 10, 10, 15)],
    ),
    (
        "*/5 * * * *",
        at(2026, 3, 10, 10, 5),
        [at(2026, 3, 10, 10, 10), at(2026, 3, 10, 10, 15), at(2026, 3, 10, 10, 20)],
    ),
    (
        "*/5 * * * *",
        at(2026, 12, 31, 23, 58),
        [at(2027, 1, 1, 0, 0), at(2027, 1, 1, 0, 5), at(2027, 1, 1, 0, 10)],
    ),
    # 2026-01-02 is a Friday: the next weekday 09:00 is Monday the 5th.
    (
        "0 9 * * MON-FRI",
        at(2026, 1, 2, 9, 0),
        [at(2026, 1, 5, 9), at(2026, 1, 6, 9), at(2026, 1, 7, 9)],
    ),
    (
        "0 9 * * 1-5",
        at(2026, 1, 3, 12, 0),
        [at(2026, 1, 5, 9), at(2026, 1, 6, 9), at(2026, 1, 7, 9)],
    ),
    # Both day fields restricted: the 13th OR any Friday (2026-01-13 is a Tuesday).
    ("0 0 13 * 5", at(2026, 1, 1), [at(2026, 1, 2), at(2026, 1, 9), at(2026, 1, 13)]),
    ("0 0 13 * FRI", at(2026, 1, 13), [at(2026, 1, 16), at(2026, 1, 23), at(2026, 1, 30)]),
    # Vixie: a day field beginning with '*' is unrestricted, so both must match (odd Mondays).
    ("0 0 */2 * 1", at(2026, 1, 1), [at(2026, 1, 5), at(2026, 1, 19), at(2026, 2, 9)]),
    # First of the month that is a Sunday, Tuesday, Thursday or Saturday.
    ("0 0 1 * */2", at(2026, 1, 1), [at(2026, 2, 1), at(2026, 3, 1), at(2026, 8, 1)]),
    ("@monthly", at(2026, 1, 31, 12), [at(2026, 2, 1), at(2026, 3, 1), at(2026, 4, 1)]),
    ("@daily", at(2026, 2, 28, 0, 0, 1), [at(2026, 3, 1), at(2026, 3, 2), at(2026, 3, 3)]),
    ("@hourly", at(2026, 2, 28, 23, 0), [at(2026, 3, 1, 0), at(2026, 3, 1, 1), at(2026, 3, 1, 2)]),
    ("@weekly", at(2026, 1, 1), [at(2026, 1, 4), at(2026, 1, 11), at(2026, 1, 18)]),
    ("@yearly", at(2026, 1, 1), [at(2027, 1, 1), at(2028, 1, 1), at(2029, 1, 1)]),
    # Leap days, across the non-leap year 2100.
    ("0 0 29 2 *", at(2026, 1, 1), [at(2028, 2, 29), at(2032, 2, 29), at(2036, 2, 29)]),
    ("0 0 29 2 *", at(2096, 3, 1), [at(2104, 2, 29), at(2108, 2, 29), at(2112, 2, 29)]),
    # Month ends: months without the day are skipped.
    (
        "30 23 31 * *",
        at(2026, 1, 31, 23, 30),
        [at(2026, 3, 31, 23, 30), at(2026, 5, 31, 23, 30), at(2026, 7, 31, 23, 30)],
    ),
    (
        "0 12 30 * *",
        at(2026, 1, 30, 12),
        [at(2026, 3, 30, 12), at(2026, 4, 30, 12), at(2026, 5, 30, 12)],
    ),
    ("0 0 28-31 2 *", at(2027, 2, 27), [at(2027, 2, 28), at(2028, 2, 28), at(2028, 2, 29)]),
    # 7 and 0 are both Sunday; an open-ended step stops at Saturday (Mon, Wed, Fri here).
    ("0 0 * * 1/2", at(2000, 1, 1), [at(2000, 1, 3), at(2000, 1, 5), at(2000, 1, 7)]),
    ("0 0 * * 7", at(2026, 1, 1), [at(2026, 1, 4), at(2026, 1, 11), at(2026, 1, 18)]),
    ("0 0 * * 5-7", at(2026, 1, 1), [at(2026, 1, 2), at(2026, 1, 3), at(2026, 1, 4)]),
    (
        "15 14 1 1 *",
        at(2026, 6, 1),
        [at(2027, 1, 1, 14, 15), at(2028, 1, 1, 14, 15), at(2029, 1, 1, 14, 15)],
    ),
    (
        "5/15 * * * *",
        at(2026, 1, 1),
        [at(2026, 1, 1, 0, 5), at(2026, 1, 1, 0, 20), at(2026, 1, 1, 0, 35)],
    ),
    ("0 0 1 jan,Jul *", at(2026, 1, 1), [at(2026, 7, 1), at(2027, 1, 1), at(2027, 7, 1)]),
    (
        "0-10/5 8-9 * * *",
        at(2026, 1, 1, 8, 10),
        [at(2026, 1, 1, 9, 0), at(2026, 1, 1, 9, 5), at(2026, 1, 1, 9, 10)],
    ),
    (
        "59 23 * * *",
        at(2026, 1, 1, 23, 59, 59),
        [at(2026, 1, 2, 23, 59), at(2026, 1, 3, 23, 59), at(2026, 1, 4, 23, 59)],
    ),
]

AWS_CASES = [
    ("cron(0 0 * * ? *)", at(2026, 1, 1), [at(2026, 1, 2), at(2026, 1, 3), at(2026, 1, 4)]),
    # 6L: the last Friday of each month.
    (
        "cron(15 10 ? * 6L 2026-2027)",
        at(2026, 1, 1),
        [at(2026, 1, 30, 10, 15), at(2026, 2, 27, 10, 15), at(2026, 3, 27, 10, 15)],
    ),
    # 2#1: the first Monday.
    (
        "cron(0 12 ? * 2#1 *)",
        at(2026, 1, 1),
        [at(2026, 1, 5, 12), at(2026, 2, 2, 12), at(2026, 3, 2, 12)],
    ),
    (
        "cron(0 12 ? * MON#1 *)",
        at(2026, 1, 1),
        [at(2026, 1, 5, 12), at(2026, 2, 2, 12), at(2026, 3, 2, 12)],
    ),
    ("cron(0 0 ? * 3#2 *)", at(2026, 1, 1), [at(2026, 1, 13), at(2026, 2, 10), at(2026, 3, 10)]),
    # A fifth Thursday in February needs a leap year whose February starts on a Thursday.
    ("cron(0 0 ? 2 5#5 *)", at(2026, 1, 1), [at(2052, 2, 29), at(2080, 2, 29), at(2120, 2, 29)]),
    # LW: 2026-01-31 and 2026-02-28 are Saturdays, 2026-03-31 a Tuesday.
    (
        "cron(0 8 LW * ? *)",
        at(2026, 1, 1),
        [at(2026, 1, 30, 8), at(2026, 2, 27, 8), at(2026, 3, 31, 8)],
    ),
    ("cron(0 0 L * ? *)", at(2028, 1, 31), [at(2028, 2, 29), at(2028, 3, 31), at(2028, 4, 30)]),
    # 15W: 2026-02-15 and 2026-03-15 are Sundays -> Monday 16th; 2026-08-15 a Saturday -> Friday 14th.
    (
        "cron(0 8 15W * ? *)",
        at(2026, 1, 16),
        [at(2026, 2, 16, 8), at(2026, 3, 16, 8), at(2026, 4, 15, 8)],
    ),
    (
        "cron(0 8 15W * ? *)",
        at(2026, 7, 16),
        [at(2026, 8, 14, 8), at(2026, 9, 15, 8), at(2026, 10, 15, 8)],
    ),
    # 2026-08-01 is a Saturday: 1W stays in August, on Monday the 3rd.
    ("cron(0 8 1W 8 ? 2026)", at(2026, 1, 1), [at(2026, 8, 3, 8)]),
    # 2025-08-31 is a Sunday: 31W moves back to Friday the 29th; months without a 31st never fire.
    ("cron(0 0 31W * ? *)", at(2025, 8, 1), [at(2025, 8, 29), at(2025, 10, 31), at(2025, 12, 31)]),
    (
        "cron(0/15 * * * ? *)",
        at(2026, 1, 1),
        [at(2026, 1, 1, 0, 15), at(2026, 1, 1, 0, 30), at(2026, 1, 1, 0, 45)],
    ),
    # AWS numbers day-of-week 1-7 from Sunday; L alone is Saturday.
    ("cron(0 0 ? * 1 *)", at(2026, 1, 1), [at(2026, 1, 4), at(2026, 1, 11), at(2026, 1, 18)]),
    ("cron(0 0 ? * 7 *)", at(2026, 1, 1), [at(2026, 1, 3), at(2026, 1, 10), at(2026, 1, 17)]),
    ("cron(0 0 ? * L *)", at(2026, 1, 1), [at(2026, 1, 3), at(2026, 1, 10), at(2026, 1, 17)]),
    (
        "cron(0 9 ? * MON-FRI *)",
        at(2026, 1, 2, 9),
        [at(2026, 1, 5, 9), at(2026, 1, 6, 9), at(2026, 1, 7, 9)],
    ),
    (
        "cron(30 6 1,15 JAN-MAR ? 2027)",
        at(2026, 5, 1),
        [at(2027, 1, 1, 6, 30), at(2027, 1, 15, 6, 30), at(2027, 2, 1, 6, 30)],
    ),
    ("CRON(0 0 1 */6 ? *)", at(2026, 1, 1), [at(2026, 7, 1), at(2027, 1, 1), at(2027, 7, 1)]),
]

RATE_CASES = [
    (
        "rate(5 minutes)",
        at(2026, 3, 10, 10, 3, 27),
        [at(2026, 3, 10, 10, 5), at(2026, 3, 10, 10, 10), at(2026, 3, 10, 10, 15)],
    ),
    (
        "rate(1 minute)",
        at(2026, 3, 10, 10, 3),
        [at(2026, 3, 10, 10, 4), at(2026, 3, 10, 10, 5), at(2026, 3, 10, 10, 6)],
    ),
    (
        "rate(1 hour)",
        at(2026, 3, 10, 10, 0),
        [at(2026, 3, 10, 11), at(2026, 3, 10, 12), at(2026, 3, 10, 13)],
    ),
    (
        "rate(6 hours)",
        at(2026, 3, 10, 7),
        [at(2026, 3, 10, 12), at(2026, 3, 10, 18), at(2026, 3, 11, 0)],
    ),
    ("rate(1 day)", at(2026, 3, 10, 7), [at(2026, 3, 11), at(2026, 3, 12), at(2026, 3, 13)]),
    # Counted from the epoch (a Thursday): 2026-01-01 is day 20454 = 2922 weeks, also a Thursday.
    ("rate(7 days)", at(2026, 1, 1), [at(2026, 1, 8), at(2026, 1, 15), at(2026, 1, 22)]),
    (
        "rate(90 minutes)",
        at(2026, 1, 1),
        [at(2026, 1, 1, 1, 30), at(2026, 1, 1, 3), at(2026, 1, 1, 4, 30)],
    ),
    (
        "rate(10 minutes)",
        at(1969, 12, 31, 23, 55),
        [at(1970, 1, 1), at(1970, 1, 1, 0, 10), at(1970, 1, 1, 0, 20)],
    ),
]


@pytest.mark.parametrize(
    ("expression", "start", "expected"), FIVE_FIELD_CASES + AWS_CASES + RATE_CASES
)
def test_next_fire_times_are_the_expected_ones(
    expression: str, start: datetime, expected: list[datetime]
) -> None:
    schedule = parse_cron(expression)
    assert upcoming(expression, start, len(expected)) == expected
    assert all(schedule.matches(moment) for moment in expected)


def test_year_bounded_aws_schedule_ends_with_none() -> None:
    schedule = parse_cron("cron(15 10 ? * 6L 2026-2027)")
    last = at(2027, 12, 31, 10, 15)  # the last Friday of December 2027
    assert schedule.next_after(at(2027, 12, 1)) == last
    assert schedule.next_after(last) is None
    assert schedule.next_after(at(2031, 1, 1)) is None
    assert schedule.next_after(at(2025, 12, 31, 23, 59)) == at(2026, 1, 30, 10, 15)
    assert upcoming("cron(0 8 1W 8 ? 2026)", at(2026, 1, 1), 2) == [at(2026, 8, 3, 8), None]


def test_schedules_end_before_year_10000() -> None:
    assert parse_cron("* * * * *").next_after(datetime.max.replace(tzinfo=UTC)) is None
    assert parse_cron("0 0 29 2 *").next_after(at(9996, 3, 1)) is None
    assert parse_cron("rate(1000000 days)").next_after(at(9000, 1, 1)) is None
    assert parse_cron("* * * * *").next_after(at(9999, 12, 31, 23, 58)) == at(9999, 12, 31, 23, 59)


def test_day_fields_of_aws_cron_agree_with_plain_calendar_definitions() -> None:
    weekday_names = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]  # date.weekday() order

    def days(expression: str, year: int, month: int) -> set[int]:
        schedule = parse_cron(expression)
        length = calendar.monthrange(year, month)[1]
        return {day for day in range(1, length + 1) if schedule.matches(at(year, month, day, 7, 0))}

    for year in (2024, 2025, 2026, 2100):
        for month in range(1, 13):
            length = calendar.monthrange(year, month)[1]
            every = range(1, length + 1)
            weekdays = [day for day in every if date(year, month, day).weekday() < 5]
            assert days("cron(0 7 L * ? *)", year, month) == {length}
            assert days("cron(0 7 LW * ? *)", year, month) == {max(weekdays)}
            for target in (1, 2, 15, 28, 29, 30, 31):
                nearest = (
                    {min(weekdays, key=lambda day: abs(day - target))}
                    if target <= length
                    else set()
                )
                assert days(f"cron(0 7 {target}W * ? *)", year, month) == nearest, (
                    year,
                    month,
                    target,
                )
            for index, name in enumerate(weekday_names):
                same = [day for day in every if date(year, month, day).weekday() == index]
                assert days(f"cron(0 7 ? * {name}L *)", year, month) == {same[-1]}
                for nth in range(1, 6):
                    expected = {same[nth - 1]} if nth <= len(same) else set()
                    assert days(f"cron(0 7 ? * {name}#{nth} *)", year, month) == expected


def test_matches_uses_the_minute_containing_the_moment() -> None:
    schedule = parse_cron("0 9 * * MON-FRI")
    assert schedule.matches(at(2026, 1, 5, 9, 0, 59))
    assert not schedule.matches(at(2026, 1, 5, 9, 1))
    assert not schedule.matches(at(2026, 1, 3, 9, 0))  # a Saturday
    assert parse_cron("rate(1 day)").matches(at(2026, 1, 5, 0, 0, 30))
    assert not parse_cron("rate(1 day)").matches(at(2026, 1, 5, 0, 1))


def test_aware_non_utc_input_is_converted_and_output_is_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = parse_cron("*/5 * * * *").next_after(datetime(2026, 1, 1, 10, 3, tzinfo=plus_two))
    assert result == at(2026, 1, 1, 8, 5)
    assert result is not None and result.tzinfo is UTC
    assert parse_cron("0 8 * * *").matches(datetime(2026, 1, 1, 10, 0, tzinfo=plus_two))


def test_naive_datetimes_are_rejected() -> None:
    schedule = parse_cron("@daily")
    with pytest.raises(ValueError, match="moment must be a timezone-aware datetime"):
        schedule.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.matches(datetime(2026, 1, 1))


def test_describe_and_expression() -> None:
    assert parse_cron("  0 9 * * mon-fri ").expression == "  0 9 * * mon-fri "
    assert parse_cron("  0 9 * * mon-fri ").describe() == "0 9 * * MON-FRI (UTC)"
    assert parse_cron("cron(0  9 ? * mon-fri *)").describe() == "cron(0 9 ? * MON-FRI *) (UTC)"
    assert parse_cron("@weekly").describe() == "0 0 * * 0 (UTC)"
    assert parse_cron("rate(5 minutes)").describe() == "every 5 minutes from 1970-01-01T00:00Z"
    assert parse_cron("@daily") == CronSchedule("@daily")
    assert parse_cron("@daily") != parse_cron("0 0 * * *")


def test_leap_day_schedules_answer_in_milliseconds() -> None:
    for expression in ("0 0 29 2 *", "cron(0 0 29 2 ? *)", "cron(0 0 ? 2 5#5 *)", "0 0 31 12 1"):
        schedule = parse_cron(expression)
        moment: datetime | None = at(2000, 1, 1)
        began = time.perf_counter()
        for _ in range(100):
            assert moment is not None
            moment = schedule.next_after(moment)
        per_call = (time.perf_counter() - began) / 100
        assert per_call < 0.005, (expression, per_call)


# --- errors --------------------------------------------------------------------------------

BAD_EXPRESSIONS = [
    ("", "schedule expression is empty"),
    ("   ", "schedule expression is empty"),
    ("x" * 201, "schedule expression is 201 characters long; at most 200 are allowed"),
    ("* * * *", r"expected 5 fields \(m h dom mon dow\), got 4"),
    ("* * * * * *", r"expected 5 fields .*got 6.*use cron\("),
    ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
    ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
    ("* * 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
    ("* * * 13 *", "month field '13': 13 is out of range 1-12"),
    ("* * * * 8", "day-of-week field '8': 8 is out of range 0-7"),
    ("*/0 * * * *", "minute field '\\*/0': step 0 is not allowed"),
    ("5-1 * * * *", "minute field '5-1': range '5-1' is reversed"),
    ("* * * FEB-JAN *", "month field 'FEB-JAN': range 'FEB-JAN' is reversed"),
    ("1,,2 * * * *", "minute field '1,,2': has an empty list element"),
    ("*/x * * * *", "minute field '\\*/X': step 'X' is not a number"),
    ("* * * FOO *", "month field 'FOO': 'FOO' is not a number or a name"),
    ("* * * * FUN", "day-of-week field 'FUN': 'FUN' is not a number or a name"),
    ("-1 * * * *", "minute field '-1': '' is not a number"),
    (
        "0 0 30 2 *",
        "it never fires: day-of-month '30' with day-of-week '\\*' falls on no day of month '2'",
    ),
    ("0 0 L * *", "day-of-month field 'L': 'L', 'W' and '#' are only allowed in AWS cron"),
    ("0 0 ? * *", "day-of-month field '\\?': '\\?' is only allowed in AWS cron"),
    ("0 0 * * 5#2", "day-of-week field '5#2': 'L', 'W' and '#' are only allowed in AWS cron"),
    ("@reboot", "unknown alias '@reboot'"),
    ("é * * * *", "'é' is not an ASCII character"),
    ("cron(0 0 * * ? *", r"cron\(...\) is missing its closing '\)'"),
    ("cron(0 0 * * ?)", r"AWS cron\(...\) needs 6 fields .* got 5"),
    (
        "cron(0 0 * * * *)",
        "day-of-month '\\*' and day-of-week '\\*': exactly one of them must be '\\?'",
    ),
    ("cron(0 0 ? * ? *)", "day-of-month '\\?' and day-of-week '\\?': exactly one"),
    ("cron(0 0 ? * 0 *)", "day-of-week field '0': 0 is out of range 1-7"),
    ("cron(0 0 ? * 8 *)", "day-of-week field '8': 8 is out of range 1-7"),
    ("cron(0 0 * * ? 1969)", "year field '1969': 1969 is out of range 1970-2199"),
    ("cron(0 0 * * ? 2200)", "year field '2200': 2200 is out of range 1970-2199"),
    ("cron(0 0 ? * 5#6 *)", "day-of-week field '5#6': occurrence '6' after '#' must be 1-5"),
    ("cron(0 0 ? * 5#0 *)", "occurrence '0' after '#' must be 1-5"),
    ("cron(0 0 ? * 9L *)", "day-of-week field '9L': 9 is out of range 1-7"),
    ("cron(0 0 32W * ? *)", "day-of-month field '32W': 32 is out of range 1-31"),
    ("cron(0 0 L,1 * ? *)", "day-of-month field 'L,1': 'L', 'W' and '#' must stand alone"),
    (
        "cron(0 0 ?,1 * ? *)",
        "day-of-month field '\\?,1': '\\?' is only allowed alone in a day field",
    ),
    ("cron(0 0 * ? ? *)", "month field '\\?': '\\?' is not a number or a name"),
    ("cron(0 0 31 2 ? *)", "it never fires"),
    ("cron(0 0 ? 2 5#5 2026)", "it never fires: .* in year '2026'"),
    ("rate(0 minutes)", "rate value '0' must be a whole number from 1 to 1000000"),
    ("rate(1000001 days)", "rate value '1000001' must be a whole number"),
    ("rate(-5 minutes)", "rate value '-5' must be a whole number"),
    ("rate(1 minutes)", r"rate unit 'minutes': write rate\(1 minute\), as AWS requires"),
    ("rate(5 hour)", r"rate unit 'hour': write rate\(5 hours\), as AWS requires"),
    ("rate(5 weeks)", r"rate unit 'weeks' must be minute\(s\), hour\(s\) or day\(s\)"),
    ("rate(5)", r"rate\(5\) needs a value and a unit"),
    ("rate(5 minutes", r"rate\(...\) is missing its closing '\)'"),
]


@pytest.mark.parametrize(("expression", "message"), BAD_EXPRESSIONS)
def test_malformed_expressions_raise_value_error_naming_the_problem(
    expression: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_cron(expression)
    assert type(raised.value) is ValueError
    if len(expression) <= 200 and expression.strip():
        assert str(raised.value).startswith(f"invalid schedule {expression.strip()!r}: ")


def test_non_string_input_raises_value_error() -> None:
    with pytest.raises(ValueError, match="a schedule must be a string, not int"):
        parse_cron(5)  # type: ignore[arg-type]


def test_schedule_config_reports_a_bad_cron_through_pydantic() -> None:
    from pydantic import ValidationError

    from aidlc.core.config import ScheduleConfig

    assert ScheduleConfig(name="nightly", cron="cron(0 2 * * ? *)").cron == "cron(0 2 * * ? *)"
    with pytest.raises(ValidationError, match="minute field '61': 61 is out of range 0-59"):
        ScheduleConfig(name="nightly", cron="61 * * * *")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=250))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    _parse_and_use(text)


_CRON_ALPHABET = "0123456789 */,-?LW#()@ratecronminuteshoursdayMONFRISUNJANDEC\t"


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=_CRON_ALPHABET, max_size=60))
def test_cron_like_text_parses_or_raises_value_error(text: str) -> None:
    _parse_and_use(text)
    _parse_and_use(f"cron({text})")
    _parse_and_use(f"rate({text})")


def _parse_and_use(text: str) -> None:
    try:
        schedule = parse_cron(text)
    except ValueError as error:
        assert type(error) is ValueError and str(error)
        return
    moment = at(2026, 5, 17, 13, 41, 7)
    after = schedule.next_after(moment)
    assert after is None or (after > moment and schedule.matches(after))
    assert isinstance(schedule.describe(), str)


# --- properties against brute force and croniter -------------------------------------------


def _field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    token = value.map(str) | (st.sampled_from(names) if names else value.map(str))
    pair = st.tuples(value, value).map(sorted)
    step = st.integers(1, high - low + 1)
    item = st.one_of(
        token,
        pair.map(lambda p: f"{p[0]}-{p[1]}"),
        st.tuples(pair, step).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
        st.tuples(value, step).map(lambda t: f"{t[0]}/{t[1]}"),
        step.map(lambda s: f"*/{s}"),
    )
    return st.just("*") | st.lists(item, min_size=1, max_size=3).map(",".join)


_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
FIVE_FIELDS = st.tuples(
    _field(0, 59),
    _field(0, 23),
    _field(1, 31),
    _field(1, 12, _MONTH_NAMES),
    _field(0, 7, _DAY_NAMES),
).map(" ".join)
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _check_against_brute_force(schedule: CronSchedule, moment: datetime) -> None:
    after = schedule.next_after(moment)
    assert after is not None and after > moment and after.tzinfo is UTC
    assert after.second == 0 and after.microsecond == 0
    assert schedule.matches(after)
    if after - moment < timedelta(days=3):
        minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute < after:
            assert not schedule.matches(minute), (schedule.expression, moment, minute, after)
            minute += timedelta(minutes=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(FIVE_FIELDS, MOMENTS)
def test_five_field_next_time_is_the_first_matching_minute(
    expression: str, moment: datetime
) -> None:
    try:
        schedule = parse_cron(expression)
    except ValueError as error:
        assume("never fires" not in str(error))
        raise
    _check_against_brute_force(schedule, moment)


AWS_DAYS = st.one_of(
    st.tuples(_field(1, 31), st.just("?")),
    st.tuples(st.sampled_from(["L", "LW", "1W", "15W", "30W", "31W"]), st.just("?")),
    st.tuples(st.just("?"), _field(1, 7, _DAY_NAMES)),
    st.tuples(
        st.just("?"), st.builds(lambda d, n: f"{d}#{n}", st.integers(1, 7), st.integers(1, 5))
    ),
    st.tuples(st.just("?"), st.builds(lambda d: f"{d}L", st.sampled_from(_DAY_NAMES))),
)
AWS_FIELDS = st.builds(
    lambda m, h, days, mon, year: f"cron({m} {h} {days[0]} {mon} {days[1]} {year})",
    _field(0, 59),
    _field(0, 23),
    AWS_DAYS,
    _field(1, 12, _MONTH_NAMES),
    st.just("*") | st.just("1990-2150"),
)


@settings(max_examples=150, deadline=None)
@given(AWS_FIELDS, MOMENTS)
def test_aws_next_time_is_the_first_matching_minute(expression: str, moment: datetime) -> None:
    try:
        schedule = parse_cron(expression)
    except ValueError as error:
        assume("never fires" not in str(error))
        raise
    after = schedule.next_after(moment)
    if after is None:  # only past the last year of the schedule
        assert "1990-2150" in expression and moment.year >= 2100
        return
    _check_against_brute_force(schedule, moment)


# croniter treats '*/2' in a day field as restricted (day OR weekday); Vixie cron, and this module,
# as unrestricted (day AND weekday). Day fields here are '*' or do not begin with '*'.
_CRONITER_DAYS = st.sampled_from(["*", "1", "13", "1-7", "10-20/3", "31", "5", "1,15"])
_CRONITER_WEEKDAYS = st.sampled_from(
    ["*", "0", "7", "1-5", "MON-FRI", "5", "SAT,SUN", "1-7/2", "5-7"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(
        _field(0, 59),
        _field(0, 23),
        _CRONITER_DAYS,
        _field(1, 12, _MONTH_NAMES),
        _CRONITER_WEEKDAYS,
    ).map(" ".join),
    MOMENTS,
)
def test_five_field_next_times_agree_with_croniter(expression: str, moment: datetime) -> None:
    croniter = pytest.importorskip("croniter").croniter
    # croniter 7 reads a one-value range such as '5-5' as '*'.
    assume(not re.search(r"(?<![0-9])([0-9]+)-\1(?![0-9])", expression))
    try:
        schedule = parse_cron(expression)
    except ValueError as error:
        assume("never fires" not in str(error))
        raise
    expected = croniter(expression, moment).get_next(datetime)
    assert schedule.next_after(moment) == expected, expression


# --- scheduler -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def set(self, now: datetime) -> None:
        with self.lock:
            self.now = now


def recorder(calls: list[tuple[str, datetime]], name: str):
    return lambda fire: calls.append((name, fire))


def test_run_due_runs_exactly_the_due_jobs_once_and_coalesces_missed_times() -> None:
    calls: list[tuple[str, datetime]] = []
    clock = FakeClock(at(2026, 1, 1, 10, 2))
    scheduler = Scheduler(
        [
            Job("five", parse_cron("*/5 * * * *"), recorder(calls, "five")),
            Job("hourly", parse_cron("0 * * * *"), recorder(calls, "hourly")),
            Job("daily", parse_cron("rate(1 day)"), recorder(calls, "daily")),
        ],
        clock=clock,
    )
    assert scheduler.next_runs() == {
        "five": at(2026, 1, 1, 10, 5),
        "hourly": at(2026, 1, 1, 11),
        "daily": at(2026, 1, 2),
    }
    assert scheduler.run_due(at(2026, 1, 1, 10, 4, 59)) == []
    assert scheduler.run_due(at(2026, 1, 1, 10, 5)) == ["five"]
    assert scheduler.run_due(at(2026, 1, 1, 10, 5, 30)) == []
    # 10:10 ... 11:00 were all missed: one run, with the earliest missed fire time.
    assert scheduler.run_due(at(2026, 1, 1, 11, 0, 20)) == ["five", "hourly"]
    assert calls == [
        ("five", at(2026, 1, 1, 10, 5)),
        ("five", at(2026, 1, 1, 10, 10)),
        ("hourly", at(2026, 1, 1, 11)),
    ]
    assert scheduler.next_runs() == {
        "five": at(2026, 1, 1, 11, 5),
        "hourly": at(2026, 1, 1, 12),
        "daily": at(2026, 1, 2),
    }


def test_a_job_that_ran_long_runs_once_more_for_all_the_times_it_missed() -> None:
    clock = FakeClock(at(2026, 1, 1, 10, 2))
    fires: list[datetime] = []

    def slow(fire: datetime) -> None:
        fires.append(fire)
        clock.set(fire + timedelta(minutes=30))

    scheduler = Scheduler([Job("slow", parse_cron("*/5 * * * *"), slow)], clock=clock)
    assert scheduler.run_due(at(2026, 1, 1, 10, 5)) == ["slow"]
    assert scheduler.run_due(clock()) == ["slow"]  # 10:35: 10:10 ... 10:35 coalesced
    assert scheduler.run_due(at(2026, 1, 1, 10, 39)) == []
    assert fires == [at(2026, 1, 1, 10, 5), at(2026, 1, 1, 10, 10)]
    assert scheduler.next_runs() == {"slow": at(2026, 1, 1, 10, 40)}


def test_a_failing_job_is_logged_in_one_line_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, datetime]] = []

    def boom(fire: datetime) -> None:
        raise RuntimeError("disk full")

    scheduler = Scheduler(
        [
            Job("boom", parse_cron("* * * * *"), boom),
            Job("ok", parse_cron("* * * * *"), recorder(calls, "ok")),
        ],
        clock=lambda: at(2026, 1, 1, 10, 0),
    )
    with caplog.at_level(logging.ERROR, logger="aidlc.monitor.schedule"):
        assert scheduler.run_due(at(2026, 1, 1, 10, 1)) == ["boom", "ok"]
    assert calls == [("ok", at(2026, 1, 1, 10, 1))]
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "aidlc.monitor.schedule",
            logging.ERROR,
            "scheduled job 'boom' failed at 2026-01-01T10:01:00+00:00: RuntimeError: disk full",
        )
    ]
    assert caplog.records[0].exc_info is None
    assert scheduler.next_runs()["boom"] == at(2026, 1, 1, 10, 2)
    assert scheduler.run_due(at(2026, 1, 1, 10, 2)) == ["boom", "ok"]


def test_a_job_never_runs_twice_at_once() -> None:
    entered, release = threading.Event(), threading.Event()
    fires: list[datetime] = []

    def blocking(fire: datetime) -> None:
        fires.append(fire)
        entered.set()
        release.wait(5)

    scheduler = Scheduler(
        [Job("block", parse_cron("* * * * *"), blocking)], clock=lambda: at(2026, 1, 1)
    )
    results: list[list[str]] = []
    other = threading.Thread(target=lambda: results.append(scheduler.run_due(at(2026, 1, 1, 0, 1))))
    other.start()
    assert entered.wait(5)
    assert scheduler.run_due(at(2026, 1, 1, 0, 5)) == []
    release.set()
    other.join(5)
    assert results == [["block"]]
    assert fires == [at(2026, 1, 1, 0, 1)]


def test_an_ended_schedule_never_runs_again() -> None:
    calls: list[tuple[str, datetime]] = []
    scheduler = Scheduler(
        [Job("once", parse_cron("cron(0 0 1 1 ? 2027)"), recorder(calls, "once"))],
        clock=lambda: at(2026, 6, 1),
    )
    assert scheduler.run_due(at(2027, 1, 1)) == ["once"]
    assert scheduler.next_runs() == {"once": None}
    assert scheduler.run_due(at(2030, 1, 1)) == []
    assert calls == [("once", at(2027, 1, 1))]


def test_scheduler_rejects_misuse() -> None:
    job = Job("a", parse_cron("@daily"), lambda fire: None)
    with pytest.raises(UsageError, match=r"scheduled job names must be unique; repeated: \['a'\]"):
        Scheduler([job, job])
    with pytest.raises(UsageError, match=r"max_sleep must be in \(0, 1\] seconds, got 5"):
        Scheduler([job], max_sleep=5)
    with pytest.raises(ValueError, match="clock\\(\\) must be a timezone-aware datetime"):
        Scheduler([job], clock=lambda: datetime(2026, 1, 1))
    scheduler = Scheduler([job])
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        scheduler.run_due(datetime(2026, 1, 1))


def test_thread_runs_a_job_when_the_clock_passes_its_fire_time_and_stops_promptly() -> None:
    clock = FakeClock(at(2026, 1, 1, 10, 0, 30))
    ran = threading.Event()
    seen: list[tuple[datetime, str]] = []

    def job(fire: datetime) -> None:
        seen.append((fire, threading.current_thread().name))
        ran.set()

    scheduler = Scheduler(
        [Job("minutely", parse_cron("rate(1 minute)"), job)], clock=clock, max_sleep=0.05
    )
    scheduler.start()
    try:
        with pytest.raises(UsageError, match="scheduler 'aidlc-scheduler' is already running"):
            scheduler.start()
        assert not ran.wait(0.2)
        clock.set(at(2026, 1, 1, 10, 1, 0))
        assert ran.wait(1.0)
    finally:
        assert scheduler.stop(timeout=1.0)
    assert seen == [(at(2026, 1, 1, 10, 1), "aidlc-scheduler")]
    assert scheduler.next_runs() == {"minutely": at(2026, 1, 1, 10, 2)}


def test_stop_wakes_a_sleeping_thread_at_once() -> None:
    scheduler = Scheduler([Job("daily", parse_cron("@daily"), lambda fire: None)], name="probe")
    scheduler.start()
    time.sleep(0.05)
    began = time.perf_counter()
    assert scheduler.stop(timeout=2.0)
    assert time.perf_counter() - began < 0.5
    assert not any(thread.name == "probe" for thread in threading.enumerate())
    assert scheduler.stop() is True
