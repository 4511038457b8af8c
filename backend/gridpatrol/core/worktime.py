"""Working time: the calendar that stage deadlines and timers are counted in.

Pure domain code (standard library only).  All instants are timezone-aware; results are
aware UTC datetimes.  The calendar's own time zone decides where the working periods of a
local date fall, so the same calendar is correct across daylight-saving changes.

Vocabulary:

* *working periods* -- per weekday, a list of local ``(start, end)`` times, e.g. the default
  Mon-Fri 09:00-12:00 and 13:00-18:00 (8 h a day).  An end of ``time(0, 0)`` (written
  ``"24:00"`` in data) means the end of the day.
* *holidays* -- dates that are not working days although their weekday has periods.
* *swapped working days* (调休) -- dates, normally a Saturday or Sunday, that are working
  days; they use the periods of the standard working day (Monday's, or the first weekday
  that has periods).

Working time is measured as real elapsed time inside the periods, so a period spanning a
daylight-saving change lasts one hour more or less than its wall-clock length.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WorkCalendar", "TIMER_YELLOW_FROM", "WEEKDAY_KEYS"]

UTC = timezone.utc
_ZERO = timedelta(0)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_MIDNIGHT = time(0, 0)

#: share of a stage's limit from which its timer is yellow (domain: green below 80 %)
TIMER_YELLOW_FROM = 0.8
_YELLOW_NUM, _YELLOW_DEN = 4, 5  # the same 80 %, for exact integer comparison

#: weekday keys used in calendar data, index = ``date.weekday()``
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_ALIASES = {name: i for i, name in enumerate(WEEKDAY_KEYS)} | {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}

_DEFAULT_DAY = ((time(9, 0), time(12, 0)), (time(13, 0), time(18, 0)))
DEFAULT_PERIODS: dict[int, list[tuple[time, time]]] = {wd: list(_DEFAULT_DAY) for wd in range(5)}

_Span = tuple[timedelta, timedelta]  # offsets from local midnight, end may be 24 h


def _offset_of(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _to_utc(dt: datetime, name: str = "datetime") -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def _as_date(value: object, name: str = "date") -> date:
    if isinstance(value, datetime):
        raise TypeError(f"{name} must be a date, not a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{name}: invalid ISO date {value!r}") from exc
    raise TypeError(f"{name} must be a date or ISO string, got {type(value).__name__}")


def _us(td: timedelta) -> int:
    """Exact length of a timedelta in microseconds."""
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def _hours(td: timedelta) -> float:
    return _us(td) / 3_600_000_000


def _check_amount(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return value


def _parse_time(text: object, *, is_end: bool) -> time:
    if isinstance(text, time):
        return text
    if not isinstance(text, str):
        raise ValueError(f"invalid time {text!r}: expected 'HH:MM'")
    if text in ("24:00", "24:00:00"):
        if not is_end:
            raise ValueError("24:00 is only allowed as the end of a period")
        return _MIDNIGHT
    raw = text.strip().split(":")
    try:
        if (
            len(raw) not in (2, 3)
            or not all(p.isdigit() and p.isascii() for p in raw)
            or not 1 <= len(raw[0]) <= 2
            or any(len(p) != 2 for p in raw[1:])
        ):
            raise ValueError
        return time(*(int(p) for p in raw))
    except ValueError as exc:
        raise ValueError(f"invalid time {text!r}: expected 'HH:MM' or 'HH:MM:SS'") from exc


def _format_offset(off: timedelta) -> str:
    total = int(off.total_seconds())
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _weekday_index(key: object) -> int:
    if isinstance(key, bool):
        raise ValueError(f"invalid weekday {key!r}")
    if isinstance(key, int):
        idx = key
    elif isinstance(key, str) and key.strip().isdigit():
        idx = int(key)
    elif isinstance(key, str) and key.strip().lower() in _WEEKDAY_ALIASES:
        return _WEEKDAY_ALIASES[key.strip().lower()]
    else:
        raise ValueError(f"invalid weekday {key!r}: use mon..sun or 0..6")
    if not 0 <= idx <= 6:
        raise ValueError(f"invalid weekday {key!r}: use mon..sun or 0..6")
    return idx


class WorkCalendar:
    """Working time of one deployment: weekly working periods in local time, public holidays,
    and swapped working days (调休)."""

    def __init__(
        self,
        tz: str = "Asia/Shanghai",
        periods: Mapping[int, Iterable[tuple[time, time]]] | None = None,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        *,
        names: Mapping[date, str] | None = None,
    ) -> None:
        try:
            self._tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        self._tz_name = tz

        if periods is None:
            periods = DEFAULT_PERIODS
        spans: list[tuple[_Span, ...]] = [()] * 7
        for key, plist in periods.items():
            wd = _weekday_index(key)
            spans[wd] = self._validate_periods(wd, plist)
        self._spans: tuple[tuple[_Span, ...], ...] = tuple(spans)
        self._weekday_nominal = tuple(sum((e - s for s, e in day), _ZERO) for day in self._spans)
        self._weekly_nominal = sum(self._weekday_nominal, _ZERO)
        std = next((wd for wd in range(7) if self._spans[wd]), None)
        self._standard_spans: tuple[_Span, ...] = self._spans[std] if std is not None else ()
        self._standard_nominal = self._weekday_nominal[std] if std is not None else _ZERO

        self._holidays = frozenset(_as_date(d, "holiday") for d in holidays)
        self._workdays = frozenset(_as_date(d, "workday") for d in workdays)
        both = self._holidays & self._workdays
        if both:
            raise ValueError(
                "dates both holiday and working day: " + ", ".join(sorted(d.isoformat() for d in both))
            )
        self._special = sorted(self._holidays | self._workdays)
        self._names = {_as_date(d): str(n) for d, n in (names or {}).items()}

    @staticmethod
    def _validate_periods(wd: int, plist: Iterable[tuple[time, time]]) -> tuple[_Span, ...]:
        out: list[_Span] = []
        for item in plist:
            try:
                start, end = item
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{WEEKDAY_KEYS[wd]}: a period is a (start, end) pair, got {item!r}"
                ) from exc
            if not isinstance(start, time) or not isinstance(end, time):
                raise TypeError(f"{WEEKDAY_KEYS[wd]}: period bounds must be datetime.time")
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"{WEEKDAY_KEYS[wd]}: period times are local, without tzinfo")
            s = _offset_of(start)
            e = _DAY if end == _MIDNIGHT else _offset_of(end)
            if e <= s:
                raise ValueError(f"{WEEKDAY_KEYS[wd]}: period {start}-{end} ends before it starts")
            out.append((s, e))
        out.sort()
        for (_, e1), (s2, _) in zip(out, out[1:]):
            if s2 < e1:
                raise ValueError(f"{WEEKDAY_KEYS[wd]}: working periods overlap")
        return tuple(out)

    # ------------------------------------------------------------------ data

    @classmethod
    def from_dict(cls, data: Mapping) -> "WorkCalendar":
        """Build a calendar from its stored form::

            {"timezone": "Asia/Shanghai",
             "work_periods": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], ...},
             "days": [{"date": "2026-01-01", "workday": false, "name": "元旦"},
                      {"date": "2026-01-04", "workday": true}]}

        A missing ``work_periods`` means the default (Mon-Fri 09-12, 13-18); a weekday absent
        from it has no working time.  ``"24:00"`` may end a period.
        """
        if not isinstance(data, Mapping):
            raise ValueError("calendar data must be a mapping")
        tz = data.get("timezone") or "Asia/Shanghai"
        periods: dict[int, list[tuple[time, time]]] | None = None
        raw_periods = data.get("work_periods")
        if raw_periods is not None:
            if not isinstance(raw_periods, Mapping):
                raise ValueError("work_periods must map weekdays to lists of [start, end]")
            periods = {}
            for key, plist in raw_periods.items():
                wd = _weekday_index(key)
                if wd in periods:
                    raise ValueError(f"weekday {key!r} given twice")
                if plist is None:
                    plist = []
                if isinstance(plist, (str, bytes)) or not isinstance(plist, Iterable):
                    raise ValueError(f"{key}: expected a list of [start, end] pairs")
                parsed = []
                for pair in plist:
                    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                        raise ValueError(f"{key}: invalid period {pair!r}, expected [start, end]")
                    parsed.append((_parse_time(pair[0], is_end=False), _parse_time(pair[1], is_end=True)))
                periods[wd] = parsed
        holidays: list[date] = []
        workdays: list[date] = []
        names: dict[date, str] = {}
        seen: set[date] = set()
        for entry in data.get("days") or ():
            if not isinstance(entry, Mapping) or "date" not in entry:
                raise ValueError(f"invalid day entry {entry!r}: needs a 'date'")
            d = _as_date(entry["date"], "days[].date")
            if d in seen:
                raise ValueError(f"date {d.isoformat()} listed twice")
            seen.add(d)
            workday = entry.get("workday", False)
            if not isinstance(workday, bool):
                raise ValueError(f"{d.isoformat()}: 'workday' must be true or false")
            (workdays if workday else holidays).append(d)
            if entry.get("name"):
                names[d] = str(entry["name"])
        return cls(tz=tz, periods=periods, holidays=holidays, workdays=workdays, names=names)

    def to_dict(self) -> dict:
        """The stored form read by :meth:`from_dict` (round-trips)."""
        work_periods = {
            WEEKDAY_KEYS[wd]: [[_format_offset(s), _format_offset(e)] for s, e in self._spans[wd]]
            for wd in range(7)
            if self._spans[wd]
        }
        days = []
        for d in self._special:
            entry: dict = {"date": d.isoformat(), "workday": d in self._workdays}
            if d in self._names:
                entry["name"] = self._names[d]
            days.append(entry)
        return {"timezone": self._tz_name, "work_periods": work_periods, "days": days}

    # ------------------------------------------------------------ properties

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def holidays(self) -> frozenset[date]:
        return self._holidays

    @property
    def workdays(self) -> frozenset[date]:
        return self._workdays

    @property
    def standard_day_hours(self) -> float:
        """Length of a standard working day (Monday's periods, or the first weekday with any)."""
        return _hours(self._standard_nominal)

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(tz={self._tz_name!r}, weekly_hours={_hours(self._weekly_nominal):g}, "
            f"holidays={len(self._holidays)}, workdays={len(self._workdays)})"
        )

    # ------------------------------------------------------------- days

    def _spans_on(self, d: date) -> tuple[_Span, ...]:
        if d in self._holidays:
            return ()
        own = self._spans[d.weekday()]
        if own:
            return own
        if d in self._workdays:
            return self._standard_spans
        return ()

    def _nominal_on(self, d: date) -> timedelta:
        if d in self._holidays:
            return _ZERO
        own = self._weekday_nominal[d.weekday()]
        if own:
            return own
        if d in self._workdays:
            return self._standard_nominal
        return _ZERO

    def is_workday(self, d: date) -> bool:
        """True when the local date has working periods (holidays off, swapped days on)."""
        return bool(self._spans_on(_as_date(d)))

    def _local_to_utc(self, d: date, off: timedelta) -> datetime:
        # fold=0: an ambiguous wall time is its first occurrence, a skipped one uses the old offset
        return (datetime.combine(d, _MIDNIGHT) + off).replace(tzinfo=self._tz).astimezone(UTC)

    def periods_on(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working periods of local date ``d`` as aware UTC ``(start, end)`` pairs, ordered
        and non-overlapping (a period that falls into a skipped DST hour shrinks or vanishes)."""
        d = _as_date(d)
        out: list[tuple[datetime, datetime]] = []
        prev_end: datetime | None = None
        for s, e in self._spans_on(d):
            su = self._local_to_utc(d, s)
            eu = self._local_to_utc(d, e)
            if prev_end is not None and su < prev_end:
                su = prev_end
            if eu > su:
                out.append((su, eu))
                prev_end = eu
        return out

    def _utcoffset(self, d: date) -> timedelta:
        return datetime.combine(d, _MIDNIGHT, tzinfo=self._tz).utcoffset()

    def _day_length(self, d: date) -> timedelta:
        """Working time of a whole local date (exact across DST changes)."""
        nominal = self._nominal_on(d)
        if not nominal:
            return _ZERO
        if self._utcoffset(d) == self._utcoffset(d + _DAY):
            return nominal
        return sum((e - s for s, e in self.periods_on(d)), _ZERO)

    def _week_length(self, d: date) -> timedelta | None:
        """Working time of the 7 local dates from ``d``, or None when the UTC offset changes in
        that week (callers then go day by day).  Uses only the sparse holiday/workday lists."""
        if self._utcoffset(d) != self._utcoffset(d + _WEEK):
            return None
        total = self._weekly_nominal
        lo = bisect_left(self._special, d)
        hi = bisect_left(self._special, d + _WEEK)
        for sd in self._special[lo:hi]:
            total += self._nominal_on(sd) - self._weekday_nominal[sd.weekday()]
        return total

    def _local_date(self, instant_utc: datetime) -> date:
        return instant_utc.astimezone(self._tz).date()

    # ------------------------------------------------------------- arithmetic

    def _add(self, start: datetime, amount: timedelta) -> datetime:
        """``start`` (aware UTC) plus ``amount`` of working time."""
        if amount < _ZERO:
            raise ValueError("working time to add must not be negative")
        if amount == _ZERO:
            return start
        if not self._weekly_nominal:
            raise ValueError("the calendar has no working periods: working time never elapses")
        remaining = amount
        d = self._local_date(start)
        for s, e in self.periods_on(d):
            if e <= start:
                continue
            s = max(s, start)
            if remaining <= e - s:
                return s + remaining
            remaining -= e - s
        d += _DAY
        while True:
            week = self._week_length(d)
            if week is not None and week < remaining:
                remaining -= week
                d += _WEEK
                continue
            day = self._day_length(d)
            if day < remaining:
                remaining -= day
                d += _DAY
                continue
            for s, e in self.periods_on(d):
                if remaining <= e - s:
                    return s + remaining
                remaining -= e - s
            raise AssertionError("inconsistent day length")  # pragma: no cover

    def _between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in ``[a, b)`` for aware UTC instants; negative if ``b < a``."""
        if b < a:
            return -self._between(b, a)
        if a == b:
            return _ZERO

        def overlap(d: date) -> timedelta:
            total = _ZERO
            for s, e in self.periods_on(d):
                lo, hi = max(s, a), min(e, b)
                if hi > lo:
                    total += hi - lo
            return total

        da, db = self._local_date(a), self._local_date(b)
        if da == db:
            return overlap(da)
        total = overlap(da) + overlap(db)
        d = da + _DAY
        while d < db:
            if d + _WEEK <= db:
                week = self._week_length(d)
                if week is not None:
                    total += week
                    d += _WEEK
                    continue
            total += self._day_length(d)
            d += _DAY
        return total

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant when ``hours`` of working time have elapsed from ``start``.

        From outside working time counting begins at the next period start; a result that
        falls exactly at a period end is that end (Mon 09:00 + 8 h = Mon 18:00).  ``hours == 0``
        returns ``start`` itself (as UTC).  Negative hours are refused."""
        start_utc = _to_utc(start, "start")
        _check_amount(hours, "hours")
        return self._add(start_utc, timedelta(hours=hours))

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Working hours in ``[a, b)``; negative if ``b < a``."""
        return _hours(self._between(_to_utc(a, "a"), _to_utc(b, "b")))

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Like :meth:`working_hours_between`, as an exact timedelta."""
        return self._between(_to_utc(a, "a"), _to_utc(b, "b"))

    def deadline(self, start: datetime, amount: float, unit: str, clock: bool) -> datetime:
        """Deadline of a limit of ``amount`` ``unit`` ("hour" or "day") from ``start``.

        ``clock`` limits run 24x7 in real time (a day is 24 h); otherwise hours are working
        hours and a day is a standard working day (:attr:`standard_day_hours`)."""
        start_utc = _to_utc(start, "start")
        _check_amount(amount, "amount")
        if unit == "hour":
            span = timedelta(hours=amount)
            return start_utc + span if clock else self._add(start_utc, span)
        if unit == "day":
            if clock:
                return start_utc + timedelta(hours=24 * amount)
            return self._add(start_utc, self._standard_nominal * amount)
        raise ValueError(f"unknown time-limit unit {unit!r}: expected 'hour' or 'day'")

    # ----------------------------------------------------------------- timers

    @staticmethod
    def _stage(start: datetime, deadline: datetime, now: datetime) -> tuple[datetime, datetime, datetime]:
        """A stage's start, deadline and the moment asked, as aware UTC instants; a deadline before the
        start is refused."""
        s, dl, n = _to_utc(start, "start"), _to_utc(deadline, "deadline"), _to_utc(now, "now")
        if dl < s:
            raise ValueError("deadline is before start")
        return s, dl, n

    def _usage(self, s: datetime, dl: datetime, n: datetime, clock: bool) -> tuple[int, int]:
        """(used µs, limit µs) of a stage given as UTC instants (``_stage``)."""
        if clock:
            used, limit = n - s, dl - s
        else:
            used, limit = self._between(s, n), self._between(s, dl)
        return max(0, _us(used)), _us(limit)

    def fraction_used(self, start: datetime, deadline: datetime, now: datetime, clock: bool) -> float:
        """Share of the stage's limit used at ``now`` (working time unless ``clock``).

        Before ``start`` it is 0.  With a zero limit it is 0 before the deadline and 1.0 at it.
        After the deadline it is always > 1: the ratio, or -- when no working time has passed
        since the deadline (e.g. overdue over a weekend) -- the smallest float above 1.0."""
        s, dl, n = self._stage(start, deadline, now)
        used, limit = self._usage(s, dl, n, clock)
        if limit <= 0:
            ratio = 1.0 if n == dl else 0.0
        else:
            ratio = used / limit  # exact integers: correctly rounded
        if n > dl and ratio <= 1.0:
            ratio = math.nextafter(1.0, math.inf)
        return ratio

    def timer_colour(self, start: datetime, deadline: datetime, now: datetime, clock: bool) -> str:
        """"green" below 80 % of the limit, "yellow" from 80 % up to the deadline (inclusive),
        "red" once ``now`` is past the deadline."""
        s, dl, n = self._stage(start, deadline, now)
        if n > dl:
            return "red"  # whatever was used: nothing to count (a case open for months would walk every week)
        used, limit = self._usage(s, dl, n, clock)
        if limit <= 0:
            return "yellow" if n == dl else "green"
        return "yellow" if used * _YELLOW_DEN >= limit * _YELLOW_NUM else "green"
