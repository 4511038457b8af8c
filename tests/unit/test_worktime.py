"""Unit tests of the working-time calendar (pure domain code, no database)."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gridpatrol.core.worktime import WorkCalendar

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def sh(y, mo, d, h=0, mi=0, s=0, us=0) -> datetime:
    """A Shanghai wall-clock instant."""
    return datetime(y, mo, d, h, mi, s, us, tzinfo=SH)


def berlin(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


NATIONAL_DAY = {
    "timezone": "Asia/Shanghai",
    "work_periods": {
        "mon": [["09:00", "12:00"], ["13:00", "18:00"]],
        "tue": [["09:00", "12:00"], ["13:00", "18:00"]],
        "wed": [["09:00", "12:00"], ["13:00", "18:00"]],
        "thu": [["09:00", "12:00"], ["13:00", "18:00"]],
        "fri": [["09:00", "12:00"], ["13:00", "18:00"]],
    },
    "days": [
        {"date": "2026-01-01", "workday": False, "name": "元旦"},
        {"date": "2026-01-02", "workday": False, "name": "元旦"},
        {"date": "2026-01-04", "workday": True, "name": "元旦调休"},
        *({"date": f"2026-10-0{i}", "workday": False, "name": "国庆节"} for i in range(1, 8)),
        {"date": "2026-10-10", "workday": True, "name": "国庆调休"},
    ],
}


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


@pytest.fixture(scope="module")
def cn() -> WorkCalendar:
    return WorkCalendar.from_dict(NATIONAL_DAY)


# --------------------------------------------------------------------------- references
# Slow, obviously-correct versions built only on periods_on(), used to check the fast paths.


def ref_between(c: WorkCalendar, a: datetime, b: datetime) -> timedelta:
    sign = 1
    if b < a:
        a, b, sign = b, a, -1
    d = a.astimezone(c.tz).date() - timedelta(days=1)
    last = b.astimezone(c.tz).date() + timedelta(days=1)
    total = timedelta(0)
    while d <= last:
        for s, e in c.periods_on(d):
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        d += timedelta(days=1)
    return total * sign


def ref_add(c: WorkCalendar, start: datetime, amount: timedelta) -> datetime:
    if amount == timedelta(0):
        return start
    d = start.astimezone(c.tz).date() - timedelta(days=1)
    while True:
        for s, e in c.periods_on(d):
            if e <= start:
                continue
            s = max(s, start)
            if amount <= e - s:
                return s + amount
            amount -= e - s
        d += timedelta(days=1)


# ------------------------------------------------------------------- add_working_hours


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(sh(2026, 3, 2, 9), 1, sh(2026, 3, 2, 10), id="simple"),
        pytest.param(sh(2026, 3, 2, 10, 15), 0.5, sh(2026, 3, 2, 10, 45), id="half-hour"),
        pytest.param(sh(2026, 3, 2, 17), 2, sh(2026, 3, 3, 10), id="across-night"),
        pytest.param(sh(2026, 3, 2, 19), 1, sh(2026, 3, 3, 10), id="start-in-evening"),
        pytest.param(sh(2026, 3, 2, 11), 2, sh(2026, 3, 2, 14), id="across-lunch"),
        pytest.param(sh(2026, 3, 2, 12, 30), 1, sh(2026, 3, 2, 14), id="start-in-lunch"),
        pytest.param(sh(2026, 3, 2, 7), 1, sh(2026, 3, 2, 10), id="start-before-opening"),
        pytest.param(sh(2026, 3, 2, 0, 0), 3, sh(2026, 3, 2, 12), id="start-at-midnight"),
        pytest.param(sh(2026, 3, 2, 9), 3, sh(2026, 3, 2, 12), id="ends-at-lunch-not-after"),
        pytest.param(sh(2026, 3, 2, 9), 8, sh(2026, 3, 2, 18), id="full-day-ends-at-closing"),
        pytest.param(sh(2026, 3, 2, 9), 8.25, sh(2026, 3, 3, 9, 15), id="just-over-a-day"),
        pytest.param(sh(2026, 3, 6, 17), 2, sh(2026, 3, 9, 10), id="across-weekend"),
        pytest.param(sh(2026, 3, 7, 10), 1, sh(2026, 3, 9, 10), id="start-on-saturday"),
        pytest.param(sh(2026, 3, 2, 9), 40, sh(2026, 3, 6, 18), id="one-week"),
        pytest.param(sh(2026, 3, 2, 9), 40.5, sh(2026, 3, 9, 9, 30), id="one-week-and-a-bit"),
        pytest.param(sh(2026, 3, 2, 9), 800, sh(2026, 7, 17, 18), id="twenty-weeks"),
        pytest.param(sh(2026, 3, 2, 9, 0, 0, 1), 1, sh(2026, 3, 2, 10, 0, 0, 1), id="microseconds"),
    ],
)
def test_add_working_hours_default_calendar(cal, start, hours, expected):
    result = cal.add_working_hours(start, hours)
    assert result == expected
    assert result.tzinfo is UTC


def test_add_working_hours_accepts_any_zone_and_returns_utc(cal):
    # 01:00 UTC is 09:00 in Shanghai
    result = cal.add_working_hours(datetime(2026, 3, 2, 1, tzinfo=UTC), 1)
    assert result == datetime(2026, 3, 2, 2, tzinfo=UTC)
    assert result.tzinfo is UTC and result.hour == 2


@pytest.mark.parametrize(
    "start", [sh(2026, 3, 7, 3), sh(2026, 3, 2, 10, 30, 0, 123), sh(2026, 3, 2, 12, 30), berlin(2026, 3, 29, 3)]
)
def test_zero_hours_returns_start_unchanged(cal, start):
    result = cal.add_working_hours(start, 0)
    assert result == start
    assert result.tzinfo is UTC


@pytest.mark.parametrize("hours", [-1, -0.001, math.nan, math.inf])
def test_add_working_hours_refuses_bad_amounts(cal, hours):
    with pytest.raises(ValueError):
        cal.add_working_hours(sh(2026, 3, 2, 9), hours)


# ------------------------------------------------------ holidays and swapped working days


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(sh(2026, 9, 30, 17), 2, sh(2026, 10, 8, 10), id="into-national-day"),
        pytest.param(sh(2026, 9, 30, 17), 1, sh(2026, 9, 30, 18), id="ends-before-holiday"),
        pytest.param(sh(2026, 10, 3, 10), 1, sh(2026, 10, 8, 10), id="start-on-holiday"),
        pytest.param(sh(2026, 10, 1, 9), 8, sh(2026, 10, 8, 18), id="whole-day-from-holiday"),
        pytest.param(sh(2026, 10, 9, 17), 2, sh(2026, 10, 10, 10), id="into-swapped-saturday"),
        pytest.param(sh(2026, 10, 10, 11, 30), 1, sh(2026, 10, 10, 13, 30), id="swapped-day-has-lunch"),
        pytest.param(sh(2026, 10, 10, 17), 2, sh(2026, 10, 12, 10), id="swapped-day-to-monday"),
        pytest.param(sh(2026, 10, 11, 9), 1, sh(2026, 10, 12, 10), id="sunday-after-swap-is-off"),
        pytest.param(sh(2025, 12, 31, 17), 2, sh(2026, 1, 4, 10), id="new-year-holidays-to-swapped-sunday"),
        pytest.param(sh(2025, 12, 31, 17), 10, sh(2026, 1, 5, 10), id="new-year-holidays-to-monday"),
        pytest.param(sh(2026, 1, 3, 9), 1, sh(2026, 1, 4, 10), id="swapped-sunday"),
    ],
)
def test_add_working_hours_with_holidays(cn, start, hours, expected):
    assert cn.add_working_hours(start, hours) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 9, 30), True),
        (date(2026, 10, 1), False),
        (date(2026, 10, 5), False),  # a Monday inside the holiday
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # swapped Saturday
        (date(2026, 10, 11), False),  # plain Sunday
        (date(2026, 10, 17), False),  # plain Saturday
        (date(2026, 1, 4), True),  # swapped Sunday
    ],
)
def test_is_workday(cn, day, expected):
    assert cn.is_workday(day) is expected


def test_is_workday_refuses_datetime(cn):
    with pytest.raises(TypeError):
        cn.is_workday(datetime(2026, 10, 10, 9, tzinfo=SH))


def test_periods_on_is_utc(cal, cn):
    assert cal.periods_on(date(2026, 3, 2)) == [
        (datetime(2026, 3, 2, 1, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC)),
        (datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)),
    ]
    assert all(p.tzinfo is UTC for pair in cal.periods_on(date(2026, 3, 2)) for p in pair)
    assert cal.periods_on(date(2026, 3, 7)) == []
    assert cn.periods_on(date(2026, 10, 1)) == []
    assert cn.periods_on(date(2026, 10, 10)) == [
        (datetime(2026, 10, 10, 1, tzinfo=UTC), datetime(2026, 10, 10, 4, tzinfo=UTC)),
        (datetime(2026, 10, 10, 5, tzinfo=UTC), datetime(2026, 10, 10, 10, tzinfo=UTC)),
    ]


def test_swapped_day_uses_mondays_periods():
    c = WorkCalendar(
        periods={0: [(time(8), time(12))], **{wd: [(time(9), time(17))] for wd in range(1, 5)}},
        workdays=[date(2026, 10, 10)],
    )
    assert c.periods_on(date(2026, 10, 10)) == [
        (datetime(2026, 10, 10, 0, tzinfo=UTC), datetime(2026, 10, 10, 4, tzinfo=UTC)),
    ]
    assert c.standard_day_hours == 4
    # a swapped day falling on a weekday with periods keeps that weekday's own periods
    c2 = WorkCalendar(periods={0: [(time(8), time(12))], 1: [(time(9), time(17))]}, workdays=[date(2026, 3, 3)])
    assert c2.periods_on(date(2026, 3, 3)) == [
        (datetime(2026, 3, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, 9, tzinfo=UTC)),
    ]


def test_swapped_day_without_monday_uses_first_weekday_with_periods():
    c = WorkCalendar(periods={2: [(time(10), time(16))], 3: [(time(8), time(9))]}, workdays=[date(2026, 3, 7)])
    assert c.periods_on(date(2026, 3, 7)) == [
        (datetime(2026, 3, 7, 2, tzinfo=UTC), datetime(2026, 3, 7, 8, tzinfo=UTC)),
    ]
    assert c.standard_day_hours == 6
    assert c.deadline(sh(2026, 3, 4, 10), 1, "day", clock=False) == sh(2026, 3, 4, 16)


# --------------------------------------------------------------------------- deadline


@pytest.mark.parametrize(
    ("start", "amount", "unit", "clock", "expected"),
    [
        pytest.param(sh(2026, 3, 2, 10), 1, "hour", False, sh(2026, 3, 2, 11), id="1-working-hour"),
        pytest.param(sh(2026, 3, 6, 16), 4, "hour", False, sh(2026, 3, 9, 11), id="4-working-hours-weekend"),
        pytest.param(sh(2026, 3, 2, 14), 1, "day", False, sh(2026, 3, 3, 14), id="1-working-day"),
        pytest.param(sh(2026, 3, 6, 14), 1, "day", False, sh(2026, 3, 9, 14), id="1-working-day-weekend"),
        pytest.param(sh(2026, 3, 2, 10), 5, "day", False, sh(2026, 3, 9, 10), id="5-working-days"),
        pytest.param(sh(2026, 3, 2, 10), 20, "day", False, sh(2026, 3, 30, 10), id="20-working-days"),
        pytest.param(sh(2026, 3, 2, 9), 20, "day", False, sh(2026, 3, 27, 18), id="20-days-from-opening"),
        pytest.param(sh(2026, 3, 2, 10), 0.5, "day", False, sh(2026, 3, 2, 15), id="half-day"),
        pytest.param(sh(2026, 3, 2, 17), 2, "hour", True, sh(2026, 3, 2, 19), id="2-clock-hours"),
        pytest.param(sh(2026, 3, 2, 23), 2, "hour", True, sh(2026, 3, 3, 1), id="clock-hours-through-night"),
        pytest.param(sh(2026, 3, 6, 23), 2, "hour", True, sh(2026, 3, 7, 1), id="clock-hours-into-saturday"),
        pytest.param(sh(2026, 3, 6, 17), 1, "day", True, sh(2026, 3, 7, 17), id="1-clock-day"),
        pytest.param(sh(2026, 3, 2, 17), 0, "hour", False, sh(2026, 3, 2, 17), id="zero"),
    ],
)
def test_deadline_default_calendar(cal, start, amount, unit, clock, expected):
    result = cal.deadline(start, amount, unit, clock)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        pytest.param(sh(2026, 9, 28, 9), 5, sh(2026, 10, 9, 18), id="5-days-over-national-day"),
        pytest.param(sh(2026, 9, 28, 9), 20, sh(2026, 10, 29, 18), id="20-days-over-national-day"),
        pytest.param(sh(2026, 9, 30, 10), 1, sh(2026, 10, 8, 10), id="1-day-over-national-day"),
        pytest.param(sh(2026, 10, 9, 10), 1, sh(2026, 10, 10, 10), id="1-day-into-swapped-saturday"),
    ],
)
def test_deadline_working_days_with_holidays(cn, start, days, expected):
    assert cn.deadline(start, days, "day", clock=False) == expected


def test_deadline_clock_hours_are_real_hours_across_dst():
    c = WorkCalendar(tz="Europe/Berlin")
    # spring forward: 22:00 CET + 6 h = 04:00 CET = 05:00 CEST (03:00 UTC)
    assert c.deadline(berlin(2026, 3, 28, 22), 6, "hour", clock=True) == datetime(2026, 3, 29, 3, tzinfo=UTC)
    assert c.deadline(berlin(2026, 3, 28, 22), 6, "hour", clock=True) == berlin(2026, 3, 29, 5)
    # fall back: 22:00 CEST + 6 h = 03:00 CET (02:00 UTC)
    assert c.deadline(berlin(2026, 10, 24, 22), 6, "hour", clock=True) == datetime(2026, 10, 25, 2, tzinfo=UTC)
    # a clock day is 24 real hours, 25 on the wall clock that night
    assert c.deadline(berlin(2026, 10, 24, 12), 1, "day", clock=True) == berlin(2026, 10, 25, 11)


@pytest.mark.parametrize(
    ("amount", "unit"), [(1, "week"), (1, "hours"), (-1, "hour"), (math.nan, "day"), (math.inf, "hour")]
)
def test_deadline_refuses_bad_input(cal, amount, unit):
    with pytest.raises(ValueError):
        cal.deadline(sh(2026, 3, 2, 9), amount, unit, clock=False)


def test_standard_day_hours(cal):
    assert cal.standard_day_hours == 8


# -------------------------------------------------------------- working_hours_between


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(sh(2026, 3, 2, 9), sh(2026, 3, 2, 18), 8, id="one-day"),
        pytest.param(sh(2026, 3, 2, 0), sh(2026, 3, 3, 0), 8, id="midnight-to-midnight"),
        pytest.param(sh(2026, 3, 2, 12), sh(2026, 3, 2, 13), 0, id="lunch"),
        pytest.param(sh(2026, 3, 2, 11, 30), sh(2026, 3, 2, 13, 30), 1, id="across-lunch"),
        pytest.param(sh(2026, 3, 2, 17), sh(2026, 3, 3, 10), 2, id="across-night"),
        pytest.param(sh(2026, 3, 6, 17), sh(2026, 3, 9, 10), 2, id="across-weekend"),
        pytest.param(sh(2026, 3, 7, 9), sh(2026, 3, 8, 18), 0, id="weekend"),
        pytest.param(sh(2026, 3, 9, 10), sh(2026, 3, 6, 17), -2, id="reversed"),
        pytest.param(sh(2026, 3, 2, 10), sh(2026, 3, 2, 10), 0, id="empty"),
        pytest.param(sh(2026, 3, 2, 9), sh(2026, 3, 9, 9), 40, id="one-week"),
        pytest.param(sh(2026, 1, 1), sh(2027, 1, 1), 261 * 8, id="year-2026"),
        pytest.param(sh(2026, 3, 2, 10, 15), sh(2026, 3, 2, 10, 45), 0.5, id="half-hour"),
    ],
)
def test_working_hours_between_default(cal, a, b, expected):
    assert cal.working_hours_between(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(sh(2026, 9, 30, 17), sh(2026, 10, 8, 10), 2, id="national-day"),
        pytest.param(sh(2026, 9, 28), sh(2026, 10, 12), 6 * 8, id="two-weeks-with-holidays"),
        pytest.param(sh(2026, 10, 9, 17), sh(2026, 10, 12, 10), 10, id="swapped-saturday"),
        pytest.param(sh(2026, 1, 1), sh(2027, 1, 1), (261 - 2 - 5 + 1 + 1) * 8, id="year-2026"),
    ],
)
def test_working_hours_between_with_holidays(cn, a, b, expected):
    assert cn.working_hours_between(a, b) == expected


def test_working_time_between_is_exact(cal):
    assert cal.working_time_between(sh(2026, 3, 2, 9), sh(2026, 3, 2, 9, 0, 0, 1)) == timedelta(microseconds=1)


def test_between_is_inverse_of_add(cn):
    rng = random.Random(20260930)
    base = sh(2025, 12, 1)
    for _ in range(400):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 500))
        hours = rng.randrange(0, 60 * 300) / 60
        end = cn.add_working_hours(start, hours)
        assert end >= start
        assert cn.working_hours_between(start, end) == pytest.approx(hours, abs=1e-9)
        # and the other way round: adding the hours between a and b lands on b, or on the
        # last working moment before b when b is outside working time
        b = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        back = cn.add_working_hours(start, cn.working_hours_between(start, b))
        assert back <= b
        assert cn.working_hours_between(back, b) == 0


def test_fast_paths_match_reference_across_dst_and_holidays():
    """Week/day skipping must agree with a slow walk over periods_on, in a zone with DST,
    with night periods that straddle the DST hour, many holidays and swapped days."""
    rng = random.Random(7)
    periods = {
        0: [(time(0), time(2, 30)), (time(8), time(12)), (time(13), time(17))],
        1: [(time(8), time(12)), (time(13), time(17))],
        2: [(time(8), time(17))],
        3: [(time(8), time(12)), (time(13), time(17))],
        4: [(time(8), time(14))],
        6: [(time(1), time(4)), (time(22), time(0))],
    }
    days = [date(2025, 1, 1) + timedelta(days=rng.randrange(0, 1100)) for _ in range(120)]
    holidays = {d for d in days[:80]}
    workdays = {d for d in days[80:] if d.weekday() == 5} - holidays
    c = WorkCalendar(tz="Europe/Berlin", periods=periods, holidays=holidays, workdays=workdays)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for _ in range(150):
        a = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 365 * 2))
        b = a + timedelta(minutes=rng.randrange(0, 60 * 24 * 400))
        assert c.working_time_between(a, b) == ref_between(c, a, b)
        assert c.working_time_between(b, a) == -ref_between(c, a, b)
        amount = timedelta(minutes=rng.randrange(0, 60 * 600))
        assert c.add_working_hours(a, amount.total_seconds() / 3600) == ref_add(c, a, amount)


# ------------------------------------------------------------------------------- DST


def test_periods_on_dst_days():
    all_sunday = WorkCalendar(tz="Europe/Berlin", periods={6: [(time(0), time(0))]})
    spring = all_sunday.periods_on(date(2026, 3, 29))
    autumn = all_sunday.periods_on(date(2026, 10, 25))
    assert spring == [(datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))]
    assert autumn == [(datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))]
    assert all_sunday.working_hours_between(berlin(2026, 3, 1), berlin(2026, 4, 1)) == 5 * 24 - 1
    assert all_sunday.working_hours_between(berlin(2026, 10, 1), berlin(2026, 11, 1)) == 4 * 24 + 1
    # 24 working hours from the start of DST Sunday end on the next Sunday at 01:00
    assert all_sunday.add_working_hours(berlin(2026, 3, 29), 24) == berlin(2026, 4, 5, 1)


def test_period_straddling_the_skipped_hour_is_shorter():
    c = WorkCalendar(tz="Europe/Berlin", periods={6: [(time(1), time(4))]})
    assert c.periods_on(date(2026, 3, 29)) == [
        (datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC)),
    ]
    assert c.periods_on(date(2026, 10, 25)) == [
        (datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC)),
    ]
    assert c.working_hours_between(berlin(2026, 3, 22), berlin(2026, 4, 6)) == 3 + 2 + 3


def test_period_ending_in_the_skipped_hour_does_not_overlap_the_next():
    c = WorkCalendar(tz="Europe/Berlin", periods={6: [(time(1), time(2, 30)), (time(3), time(5))]})
    # 02:30 does not exist that night: 01:00 CET -> 05:00 CEST is 3 real hours, counted once
    assert c.periods_on(date(2026, 3, 29)) == [
        (datetime(2026, 3, 29, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC)),
    ]
    assert c.working_hours_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 3
    assert c.add_working_hours(berlin(2026, 3, 29), 3) == berlin(2026, 3, 29, 5)


def test_working_hours_in_berlin_keep_local_office_hours():
    c = WorkCalendar(tz="Europe/Berlin")
    # Friday 17:00 CET + 2 h -> Monday 10:00 CEST (08:00 UTC), over the DST weekend
    assert c.add_working_hours(berlin(2026, 3, 27, 17), 2) == datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert c.add_working_hours(berlin(2026, 10, 23, 17), 2) == datetime(2026, 10, 26, 9, tzinfo=UTC)
    assert c.periods_on(date(2026, 3, 30))[0][0] == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert c.periods_on(date(2026, 3, 27))[0][0] == datetime(2026, 3, 27, 8, tzinfo=UTC)


# ------------------------------------------------------------------------- performance


def test_long_spans(cal, cn):
    """A century of working time, and spans that add up across years (the code skips whole weeks;
    how fast is for the benchmarks, not for a test)."""
    assert cal.working_hours_between(sh(2026, 1, 1), sh(2126, 1, 1)) == 26088 * 8
    assert cal.add_working_hours(sh(2026, 1, 1), 26088 * 8) == sh(2125, 12, 31, 18)
    assert cn.working_hours_between(sh(2024, 1, 1), sh(2028, 1, 1)) == cn.working_hours_between(
        sh(2024, 1, 1), sh(2026, 1, 1)
    ) + cn.working_hours_between(sh(2026, 1, 1), sh(2028, 1, 1))


# ------------------------------------------------------------- fraction_used and colour

# working time: Monday 09:00 + 10 working hours = Tuesday 11:00
W_START, W_DEADLINE = sh(2026, 3, 2, 9), sh(2026, 3, 3, 11)


@pytest.mark.parametrize(
    ("now", "fraction", "colour"),
    [
        pytest.param(sh(2026, 3, 2, 8), 0.0, "green", id="before-start"),
        pytest.param(W_START, 0.0, "green", id="at-start"),
        pytest.param(sh(2026, 3, 2, 14), 0.4, "green", id="40pct"),
        pytest.param(sh(2026, 3, 2, 17, 59, 24), 0.799, "green", id="79.9pct"),
        pytest.param(sh(2026, 3, 2, 17, 59, 59, 999999), 28799999999 / 36000000000, "green", id="just-below-80"),
        pytest.param(sh(2026, 3, 2, 18), 0.8, "yellow", id="80pct"),
        pytest.param(sh(2026, 3, 2, 22), 0.8, "yellow", id="80pct-overnight"),
        pytest.param(sh(2026, 3, 3, 10), 0.9, "yellow", id="90pct"),
        pytest.param(W_DEADLINE, 1.0, "yellow", id="100pct"),
        pytest.param(sh(2026, 3, 3, 13), 1.1, "red", id="110pct"),
        pytest.param(sh(2026, 3, 3, 14), 1.2, "red", id="120pct"),
    ],
)
def test_fraction_and_colour_working_time(cal, now, fraction, colour):
    assert cal.deadline(W_START, 10, "hour", clock=False) == W_DEADLINE
    assert cal.fraction_used(W_START, W_DEADLINE, now, clock=False) == fraction
    assert cal.timer_colour(W_START, W_DEADLINE, now, clock=False) == colour


@pytest.mark.parametrize(
    "now", [sh(2026, 3, 3, 11, 0, 0, 1), sh(2026, 3, 3, 12, 30)], ids=["1us-late", "late-in-lunch"]
)
def test_overdue_is_red_and_above_one_even_without_working_time_since(cal, now):
    assert cal.fraction_used(W_START, W_DEADLINE, now, clock=False) > 1
    assert cal.timer_colour(W_START, W_DEADLINE, now, clock=False) == "red"


def test_overdue_over_weekend_is_red(cal):
    start, dl = sh(2026, 3, 6, 9), sh(2026, 3, 6, 18)
    assert cal.fraction_used(start, dl, sh(2026, 3, 7, 10), clock=False) > 1
    assert cal.timer_colour(start, dl, sh(2026, 3, 7, 10), clock=False) == "red"
    assert cal.timer_colour(start, dl, sh(2026, 3, 6, 18), clock=False) == "yellow"


C_START = sh(2026, 3, 2, 23)
C_DEADLINE = sh(2026, 3, 3, 1)  # 2 clock hours, through midnight


@pytest.mark.parametrize(
    ("now", "fraction", "colour"),
    [
        pytest.param(sh(2026, 3, 2, 22), 0.0, "green", id="before-start"),
        pytest.param(sh(2026, 3, 3, 0), 0.5, "green", id="50pct"),
        pytest.param(C_START + timedelta(minutes=95.88), 0.799, "green", id="79.9pct"),
        pytest.param(C_START + timedelta(minutes=96), 0.8, "yellow", id="80pct"),
        pytest.param(C_START + timedelta(minutes=108), 0.9, "yellow", id="90pct"),
        pytest.param(C_DEADLINE, 1.0, "yellow", id="100pct"),
        pytest.param(sh(2026, 3, 3, 1, 30), 1.25, "red", id="125pct"),
    ],
)
def test_fraction_and_colour_clock(cal, now, fraction, colour):
    assert cal.fraction_used(C_START, C_DEADLINE, now, clock=True) == fraction
    assert cal.timer_colour(C_START, C_DEADLINE, now, clock=True) == colour


def test_clock_mode_ignores_working_time(cal):
    # over a weekend: clock counts real hours, working mode would count none
    start, dl = sh(2026, 3, 7, 10), sh(2026, 3, 7, 20)
    assert cal.fraction_used(start, dl, sh(2026, 3, 7, 18), clock=True) == 0.8
    assert cal.fraction_used(start, dl, sh(2026, 3, 7, 18), clock=False) == 0.0


@pytest.mark.parametrize("clock", [True, False])
@pytest.mark.parametrize(
    ("now", "fraction", "colour"),
    [(sh(2026, 3, 7, 9), 0.0, "green"), (sh(2026, 3, 7, 10), 1.0, "yellow"), (sh(2026, 3, 7, 11), None, "red")],
)
def test_zero_limit(cal, clock, now, fraction, colour):
    start = dl = sh(2026, 3, 7, 10)
    got = cal.fraction_used(start, dl, now, clock)
    if fraction is None:
        assert got > 1
    else:
        assert got == fraction
    assert cal.timer_colour(start, dl, now, clock) == colour


def test_zero_working_limit_with_later_wall_clock_deadline(cal):
    start, dl = sh(2026, 3, 7, 10), sh(2026, 3, 7, 12)  # Saturday: no working time in between
    assert cal.fraction_used(start, dl, sh(2026, 3, 7, 11), clock=False) == 0.0
    assert cal.timer_colour(start, dl, sh(2026, 3, 7, 11), clock=False) == "green"
    assert cal.timer_colour(start, dl, sh(2026, 3, 7, 12, 1), clock=False) == "red"


def test_deadline_before_start_is_refused(cal):
    with pytest.raises(ValueError):
        cal.fraction_used(sh(2026, 3, 2, 10), sh(2026, 3, 2, 9), sh(2026, 3, 2, 9), clock=True)
    with pytest.raises(ValueError):
        cal.timer_colour(sh(2026, 3, 2, 10), sh(2026, 3, 2, 9), sh(2026, 3, 2, 9), clock=False)
    with pytest.raises(ValueError):  # also once past both
        cal.timer_colour(sh(2026, 3, 2, 10), sh(2026, 3, 2, 9), sh(2026, 3, 9, 9), clock=False)


def test_a_stage_overdue_for_years_is_red(cal):
    start = sh(2024, 3, 4, 9)
    deadline = cal.deadline(start, 3, "day", clock=False)
    assert cal.timer_colour(start, deadline, sh(2026, 3, 3, 11), clock=False) == "red"
    assert cal.fraction_used(start, deadline, sh(2026, 3, 3, 11), clock=False) > 100


# ------------------------------------------------------------------ naive datetimes

NAIVE = datetime(2026, 3, 2, 10)
AWARE = sh(2026, 3, 2, 10)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.add_working_hours(NAIVE, 1), id="add_working_hours"),
        pytest.param(lambda c: c.add_working_hours(NAIVE, 0), id="add_working_hours-zero"),
        pytest.param(lambda c: c.working_hours_between(NAIVE, AWARE), id="between-a"),
        pytest.param(lambda c: c.working_hours_between(AWARE, NAIVE), id="between-b"),
        pytest.param(lambda c: c.deadline(NAIVE, 1, "hour", True), id="deadline-clock"),
        pytest.param(lambda c: c.deadline(NAIVE, 1, "day", False), id="deadline-working"),
        pytest.param(lambda c: c.fraction_used(NAIVE, AWARE, AWARE, True), id="fraction-start"),
        pytest.param(lambda c: c.fraction_used(AWARE, NAIVE, AWARE, False), id="fraction-deadline"),
        pytest.param(lambda c: c.fraction_used(AWARE, AWARE, NAIVE, False), id="fraction-now"),
        pytest.param(lambda c: c.timer_colour(AWARE, AWARE, NAIVE, True), id="colour-now"),
    ],
)
def test_naive_datetimes_are_refused(cal, call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call(cal)


# ------------------------------------------------------------------------- from_dict


def test_from_dict_example():
    c = WorkCalendar.from_dict(
        {
            "timezone": "Asia/Shanghai",
            "work_periods": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]},
            "days": [
                {"date": "2026-01-05", "workday": False, "name": "test holiday"},
                {"date": "2026-01-04", "workday": True},
            ],
        }
    )
    assert c.tz == SH
    assert c.holidays == {date(2026, 1, 5)}
    assert c.workdays == {date(2026, 1, 4)}
    assert not c.is_workday(date(2026, 1, 5))
    assert c.is_workday(date(2026, 1, 4))  # Sunday, swapped, uses Monday's periods
    assert not c.is_workday(date(2026, 1, 6))  # Tuesday: not in work_periods
    assert c.is_workday(date(2026, 1, 12))
    assert c.add_working_hours(sh(2026, 1, 4, 17), 2) == sh(2026, 1, 12, 10)


def test_from_dict_defaults_and_round_trip(cn):
    c = WorkCalendar.from_dict({})
    assert c.tz == SH
    assert c.working_hours_between(sh(2026, 3, 2), sh(2026, 3, 9)) == 40
    data = cn.to_dict()
    assert data["timezone"] == "Asia/Shanghai"
    assert data["work_periods"] == NATIONAL_DAY["work_periods"]
    assert data["days"][0] == {"date": "2026-01-01", "workday": False, "name": "元旦"}
    assert sorted(data["days"], key=lambda e: e["date"]) == sorted(NATIONAL_DAY["days"], key=lambda e: e["date"])
    assert WorkCalendar.from_dict(data).to_dict() == data


def test_from_dict_other_zone_and_24h_end():
    c = WorkCalendar.from_dict(
        {"timezone": "Europe/Berlin", "work_periods": {"sat": [["20:00", "24:00"]], "6": [["0:00", "06:30"]]}}
    )
    assert c.tz == BERLIN
    assert c.working_hours_between(berlin(2026, 3, 7, 21), berlin(2026, 3, 8, 7)) == 3 + 6.5
    assert c.to_dict()["work_periods"] == {"sat": [["20:00", "24:00"]], "sun": [["00:00", "06:30"]]}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"timezone": "Mars/Olympus_Mons"}, id="unknown-zone"),
        pytest.param({"work_periods": {"mon": [["09:00", "25:00"]]}}, id="bad-time"),
        pytest.param({"work_periods": {"mon": [["9h", "12:00"]]}}, id="bad-format"),
        pytest.param({"work_periods": {"mon": [["12:00", "09:00"]]}}, id="end-before-start"),
        pytest.param({"work_periods": {"mon": [["24:00", "09:00"]]}}, id="24-as-start"),
        pytest.param({"work_periods": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, id="overlap"),
        pytest.param({"work_periods": {"funday": [["09:00", "12:00"]]}}, id="bad-weekday"),
        pytest.param({"work_periods": {"mon": [["09:00"]]}}, id="half-period"),
        pytest.param({"work_periods": {"mon": [], "monday": []}}, id="weekday-twice"),
        pytest.param({"days": [{"date": "2026-02-30", "workday": False}]}, id="bad-date"),
        pytest.param({"days": [{"workday": False}]}, id="missing-date"),
        pytest.param({"days": [{"date": "2026-10-10", "workday": "yes"}]}, id="workday-not-bool"),
        pytest.param(
            {"days": [{"date": "2026-10-10", "workday": True}, {"date": "2026-10-10", "workday": False}]},
            id="date-twice",
        ),
    ],
)
def test_from_dict_rejects_invalid(data):
    with pytest.raises(ValueError):
        WorkCalendar.from_dict(data)


def test_constructor_validation():
    with pytest.raises(ValueError):
        WorkCalendar(holidays=[date(2026, 10, 10)], workdays=[date(2026, 10, 10)])
    with pytest.raises(ValueError):
        WorkCalendar(periods={0: [(time(9), time(12)), (time(11), time(13))]})
    with pytest.raises(ValueError):
        WorkCalendar(periods={7: [(time(9), time(12))]})
    with pytest.raises(ValueError):
        WorkCalendar(tz="Nowhere/Else")


def test_calendar_without_working_time():
    c = WorkCalendar(periods={}, workdays=[date(2026, 3, 7)])
    assert c.standard_day_hours == 0
    assert not c.is_workday(date(2026, 3, 7))
    assert c.working_hours_between(sh(2026, 1, 1), sh(2027, 1, 1)) == 0
    assert c.add_working_hours(sh(2026, 3, 2, 9), 0) == sh(2026, 3, 2, 9)
    with pytest.raises(ValueError):
        c.add_working_hours(sh(2026, 3, 2, 9), 1)
