"""The category catalog and the working calendar, held as data.

Every change to the catalog makes a new catalog version; a category is never deleted but retired
in a version, so old cases stay readable and a report made against an older catalog is still
taken (`Category.accepts_reports_from`).
"""
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app, g
from sqlalchemy import delete, extract, func, select, text
from sqlalchemy.dialects.postgresql import insert

from ..core.errors import Conflict, Invalid, NotFound, invalid
from ..core.worktime import WEEKDAY_KEYS, WorkCalendar
from ..extensions import db
from .models import CalendarDay, CatalogVersion, Category, Setting

WORK_PERIODS_KEY = "work_periods"
CALENDAR_STAMP_KEY = "calendar_stamp"
# the fields of a category an administrator sets (all but its code and its versions)
CATEGORY_FIELDS = ("kind", "name_zh", "name_en", "major_name_zh", "major_name_en", "team_kind", "filing_condition",
                   "closure_condition", "limits", "public")


def current_version() -> int:
    return db.session.execute(select(func.coalesce(func.max(CatalogVersion.version), 0))).scalar_one()


def _take_turn() -> None:
    """Catalog changes take turns (a transaction-scoped lock): two administrators saving at once make
    two versions one after the other, not a clash on the number or a lost change."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridpatrol:catalog_versions'))"))


def _new_version(note: str | None, at_least: int = 0) -> int:
    """The next catalog version."""
    _take_turn()
    version = max(at_least, current_version() + 1)
    db.session.add(CatalogVersion(version=version, note=note))
    db.session.flush()
    return version


def _locked_category(code: str) -> Category | None:
    if not (len(code) == 4 and code.isascii() and code.isdigit()):
        return None
    return db.session.execute(select(Category).where(Category.code == code).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one_or_none()


def create_category(actor, *, code: str, **values) -> Category:
    """A new category in a new catalog version. The code of a retired category brings it back, with
    these values; the code of an active one is taken (409)."""
    version = _new_version(f"category {code} added by {actor.username}")
    category = _locked_category(code)
    if category is not None and category.active:
        raise Conflict(f"Category {code} exists; change it with PATCH", {"code": ["taken"]})
    if category is None:
        category = Category(code=code)
        db.session.add(category)
    for field in CATEGORY_FIELDS:
        setattr(category, field, values.get(field))
    category.public = values.get("public", True)
    category.since_version, category.retired_in_version = version, None
    db.session.flush()
    return category


def update_category(actor, code: str, changes: dict) -> Category:
    """Change an active category; a change that changes something makes a new catalog version.
    Limits apply to the stages that start from now on."""
    _take_turn()
    category = _locked_category(code)
    if category is None:
        raise NotFound(f"No category {code}")
    if not category.active:
        raise Conflict(f"Category {code} was retired in catalog version {category.retired_in_version}; "
                       "POST it again to bring it back", {"code": ["retired"]})
    changed = {k: v for k, v in changes.items() if getattr(category, k) != v}
    if changed:
        _new_version(f"category {code} changed by {actor.username}: {', '.join(sorted(changed))}")
        for field, value in changed.items():
            setattr(category, field, value)
        db.session.flush()
    return category


def retire_category(actor, code: str) -> None:
    """Retire a category in a new catalog version: it stays readable, and reports made against an
    older catalog are still taken. Retiring a retired category changes nothing."""
    _take_turn()
    category = _locked_category(code)
    if category is None:
        raise NotFound(f"No category {code}")
    if category.active:
        category.retired_in_version = _new_version(f"category {code} retired by {actor.username}")
        db.session.flush()


def categories(include_retired: bool = True) -> list[Category]:
    q = select(Category).order_by(Category.code)
    if not include_retired:
        q = q.where(Category.retired_in_version.is_(None))
    return list(db.session.execute(q).scalars())


def category_for_report(code: str, catalog_version: int | None) -> Category:
    category = db.session.get(Category, code)
    if category is None:
        raise invalid("category_code", f"unknown category {code}")
    if not category.accepts_reports_from(catalog_version):
        raise invalid("category_code", f"category {code} was retired in catalog version {category.retired_in_version}")
    return category


def load_catalog(doc: dict) -> int:
    """Load a catalog document (geodata/catalog.json): a new version; categories missing from it
    are retired, not deleted, so old cases stay readable."""
    version = _new_version(doc.get("note"), at_least=int(doc.get("version", 1)))
    seen = set()
    for item in doc["items"]:
        seen.add(item["code"])
        row = db.session.get(Category, item["code"]) or Category(code=item["code"], since_version=version)
        row.kind, row.name_zh, row.name_en = item["kind"], item["name_zh"], item["name_en"]
        row.major_name_zh, row.major_name_en = item.get("major_name_zh"), item.get("major_name_en")
        row.team_kind, row.limits = item["team_kind"], item["limits"]
        row.filing_condition = item.get("filing_condition", "")
        row.closure_condition = item.get("closure_condition", "")
        row.public = item.get("public", True)
        row.retired_in_version = None
        db.session.add(row)
    for row in categories():
        if row.code not in seen and row.retired_in_version is None:
            row.retired_in_version = version
    db.session.flush()
    return version


def load_calendar(doc: dict) -> None:
    """Load working periods and the year's holidays and swapped working days (geodata/calendar.json)."""
    week = checked_week(doc.get("work_periods")).to_dict()["work_periods"]
    WorkCalendar.from_dict(doc)  # refuse a malformed calendar before writing any of it
    for day in doc.get("days") or []:
        if not isinstance(day.get("name", ""), str) or len(day.get("name", "")) > 100:
            raise invalid("days", f"{day['date']}: a name is a text of at most 100 characters")
    setting = db.session.get(Setting, WORK_PERIODS_KEY) or Setting(key=WORK_PERIODS_KEY)
    setting.value = {"timezone": doc.get("timezone"), "work_periods": week}
    db.session.add(setting)
    for day in doc.get("days", []):
        d = date.fromisoformat(day["date"])
        row = db.session.get(CalendarDay, d) or CalendarDay(day=d)
        row.workday, row.name = bool(day.get("workday", False)), day.get("name", "")  # as from_dict reads it
        db.session.add(row)
    db.session.flush()
    _calendar_changed()


# The calendar is kept per process, with the stamp it was read under (and the time zone it was
# read in); each request compares the stamp (one primary-key read) and rereads the calendar only
# after a change, by any process. (Kept in the module: measured, keeping it in the app's
# `extensions` halved the HTTP report rate of the benchmark.)
_cached: list[tuple] = [(None, None)]
# the stamp as a scalar subquery, for a statement every request makes anyway (the caller read of
# auth.services) to carry, so that the kept calendar is checked without a round trip of its own
CALENDAR_STAMP_SQL = f"(SELECT s.value->>'stamp' FROM settings s WHERE s.key = '{CALENDAR_STAMP_KEY}')"


def work_calendar() -> WorkCalendar:
    """The deployment's calendar as committed (or as changed by this transaction)."""
    if "work_calendar" not in g:
        stamp = db.session.execute(select(Setting.value).where(Setting.key == CALENDAR_STAMP_KEY)).scalar()
        key = ((stamp or {}).get("stamp"), current_app.config["TIMEZONE"])
        cached_key, calendar = _cached[0]
        if cached_key != key or calendar is None:
            calendar = _read_calendar()
            _cached[0] = (key, calendar)
        g.work_calendar = calendar
    return g.work_calendar


def calendar_stamp_read(stamp: str | None) -> None:
    """The calendar stamp as a statement of this request read it (CALENDAR_STAMP_SQL): the kept
    calendar serves the request when it was read under that stamp, with no read of the stamp.
    Otherwise nothing is taken, and `work_calendar()` reads the stamp and the calendar itself: only
    it caches, so a calendar changed by this transaction is never kept under a stamp read before
    (and `_calendar_changed` drops what is taken here, as it drops what work_calendar() took)."""
    if "work_calendar" not in g:
        cached_key, calendar = _cached[0]
        if calendar is not None and cached_key == (stamp, current_app.config["TIMEZONE"]):
            g.work_calendar = calendar


def _read_calendar(conn=None) -> WorkCalendar:
    """The calendar in the database, read through `conn` (default: the session); the default working
    periods until some are loaded."""
    conn = conn or db.session
    periods = conn.execute(select(Setting.value).where(Setting.key == WORK_PERIODS_KEY)).scalar()
    days = conn.execute(select(CalendarDay.day, CalendarDay.workday)).all()
    doc = {"timezone": current_app.config["TIMEZONE"],
           "days": [{"date": day.isoformat(), "workday": workday} for day, workday in days]}
    if periods is not None:
        doc["work_periods"] = periods["work_periods"]
    return WorkCalendar.from_dict(doc)


# the local days whose working time SQL can count (work_clock, migration 0009)
CLOCK_DAYS = (date(2015, 1, 1), date(2041, 1, 1))
# what the clock in `work_clock` was written with, beside the days themselves: a single day is written
# again on its own only while these are unchanged
WORK_CLOCK_KEY = "work_clock"
# rows of the clock given as JSON (s: day start, e: day end, b: working µs before it, p: its periods)
CLOCK_ROWS = """
    SELECT r.s, r.e, r.b, ARRAY(SELECT tstzrange((x.v->>0)::timestamptz, (x.v->>1)::timestamptz)
                                FROM jsonb_array_elements(r.p) WITH ORDINALITY AS x(v, n) ORDER BY x.n) AS periods
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(s timestamptz, e timestamptz, b bigint, p jsonb)"""


def _put_setting(conn, key: str, value: dict) -> None:
    conn.execute(insert(Setting).values(key=key, value=value)
                 .on_conflict_do_update(index_elements=[Setting.key], set_={"value": value}))


def _day_bounds(cal: WorkCalendar, day: date) -> tuple[datetime, datetime]:
    """The local day's start and end (its next midnight)."""
    return (datetime.combine(day, time(0), tzinfo=cal.tz),
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.tz))


def _us(periods) -> int:
    return sum((b - a) // timedelta(microseconds=1) for a, b in periods)


def _clock_row(start: datetime, end: datetime, before: int, periods) -> dict:
    return {"s": start.isoformat(), "e": end.isoformat(), "b": before,
            "p": [[a.isoformat(), b.isoformat()] for a, b in periods]}


def _clock_basis(cal: WorkCalendar) -> dict:
    doc = cal.to_dict()
    return {"timezone": doc["timezone"], "work_periods": doc["work_periods"]}


def _write_whole_clock(conn, cal: WorkCalendar) -> int:
    """Every day of CLOCK_DAYS written again. The days written."""
    rows, before, day = [], 0, CLOCK_DAYS[0]
    start = datetime.combine(day, time(0), tzinfo=cal.tz).astimezone(UTC)
    while day < CLOCK_DAYS[1]:
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.tz).astimezone(UTC)
        periods = cal.periods_on(day)
        rows.append(_clock_row(start, end, before, periods))
        before += _us(periods)
        day, start = day + timedelta(days=1), end
    conn.execute(text("DELETE FROM work_clock"))
    conn.execute(text("INSERT INTO work_clock (day_start, day_end, before_us, periods)" + CLOCK_ROWS),
                 {"rows": json.dumps(rows)})
    _put_setting(conn, WORK_CLOCK_KEY, _clock_basis(cal))
    return len(rows)


def _write_clock_day(conn, cal: WorkCalendar, day: date) -> int | None:
    """Only `day` written again: its periods, and the working time before every later day shifted by what
    the day gained or lost. None when the clock was not written with this calendar's time zone and week
    (first written, or since changed), so it must be written whole. The days written."""
    basis = conn.execute(select(Setting.value).where(Setting.key == WORK_CLOCK_KEY)).scalar()
    if basis != _clock_basis(cal):
        return None
    if not CLOCK_DAYS[0] <= day < CLOCK_DAYS[1]:
        return 0
    start, end = _day_bounds(cal, day)
    old = conn.execute(text("SELECT day_end, periods FROM work_clock WHERE day_start = :s"), {"s": start}).first()
    if old is None or old.day_end != end:
        return None
    periods = cal.periods_on(day)
    gained = _us(periods) - _us((p.lower, p.upper) for p in old.periods)
    # the row itself always (its periods may move), later days only when the day's working time changed.
    # A range on the key, not a join: estimated as the few rows it is (a join with the JSON was planned at
    # 300,000 rows and compiled by JIT, 0.6 s a save).
    return conn.execute(text(f"""
        UPDATE work_clock
        SET periods = CASE WHEN day_start = :s THEN (SELECT n.periods FROM ({CLOCK_ROWS}) n) ELSE periods END,
            before_us = before_us + CASE WHEN day_start > :s THEN :gained ELSE 0 END
        WHERE day_start >= :s AND (day_start = :s OR :gained <> 0)
    """), {"s": start, "rows": json.dumps([_clock_row(start, end, 0, periods)]), "gained": gained}).rowcount


def write_work_clock(conn=None, day: date | None = None) -> int:
    """Write the calendar's working periods of every day in CLOCK_DAYS to `work_clock`, with the working
    time before each day, so SQL counts working hours (`work_hours(a, b)`) exactly as the calendar does;
    then the handling hours of the kept KPI facts follow. When only `day` changed, only its row and the
    working time before later days are written, and the facts whose span covers part of that day are
    counted again at once (a span wholly before or after it keeps its hours). Otherwise, or when the clock
    was written with another time zone or week, all of it is written, and every kept span is counted again
    afterwards in batches (`recount_handling_hours`, run by the KPI compaction): at 1,000,000 cases that
    recount takes tens of seconds, and done here it would hold every report's commit that long. The KPI
    facts are locked while the clock is written (a fact kept by a transaction committing now would count
    with the old clock; those kept after this commits count with the new one). Calendar changes take
    turns on the calendar stamp (`_calendar_changed`), so the day's old periods read here are the
    committed ones. Spans outside CLOCK_DAYS have no handling hours. The days written."""
    conn = conn or db.session
    cal = _read_calendar(conn)
    conn.execute(text("LOCK TABLE kpi_facts IN SHARE MODE"))
    written = None if day is None else _write_clock_day(conn, cal, day)
    if written is None:
        written = _write_whole_clock(conn, cal)
        # every span kept so far, from the first case on (a recount under way starts again)
        if conn.execute(text("SELECT EXISTS (SELECT 1 FROM kpi_facts WHERE dispatch_at IS NOT NULL"
                             " AND handle_at IS NOT NULL)")).scalar():
            _put_setting(conn, HOURS_RECOUNT_KEY, {"next_case": 0})
        return written
    if written == 0:
        return 0  # a day outside the clock: no working time SQL counts changed
    # either end inside the day, or one before it and one after (a span may run backwards): the span's
    # range meets the day's (the form of the index ix_kpi_facts_handling_span)
    _count_hours_again(conn, "tstzrange(least(dispatch_at, handle_at), greatest(dispatch_at, handle_at), '[]')"
                             " && tstzrange(:day_start, :day_end, '()')",
                       dict(zip(("day_start", "day_end"), _day_bounds(cal, day))))
    return written


def _count_hours_again(conn, where: str, params: dict) -> int:
    """The handling hours of the kept facts meeting `where` counted with the clock as it is now, writing
    only those that changed (the facts' log takes them to the daily sums); the facts changed."""
    return conn.execute(text(f"""
        UPDATE kpi_facts SET handling_hours = h.hours
        FROM (SELECT ctid AS row, work_hours(dispatch_at, handle_at) AS hours FROM kpi_facts
              WHERE dispatch_at IS NOT NULL AND handle_at IS NOT NULL AND {where}) h
        WHERE kpi_facts.ctid = h.row AND kpi_facts.handling_hours IS DISTINCT FROM h.hours
    """), params).rowcount


# A recount of every kept span under way (after a change of the working week or the time zone): the
# setting holds the first case whose facts are still to count; none when nothing is to count.
HOURS_RECOUNT_KEY = "kpi_hours_recount"
HOURS_RECOUNT_BATCH = 10_000


# recount batches take turns on this lock (a process that finds it taken leaves the batch to the one
# that holds it, holding nothing); `gridpatrol kpis rebuild` holds it while it works every fact out again
HOURS_RECOUNT_LOCK = "hashtext('gridpatrol:kpi_hours_recount')"


def end_hours_recount() -> None:
    """No recount of handling hours under way any more."""
    db.session.execute(delete(Setting).where(Setting.key == HOURS_RECOUNT_KEY))


def hours_recount_next() -> int | None:
    """The first case whose handling hours a recount under way has still to count; None when none is."""
    state = db.session.execute(select(Setting.value).where(Setting.key == HOURS_RECOUNT_KEY)).scalar()
    return None if state is None else int(state["next_case"])


def recount_handling_hours(batch: int = HOURS_RECOUNT_BATCH) -> int | None:
    """One batch of the recount under way, in a transaction of its own: the facts of `batch` cases by id
    counted with the clock as it is now; the facts whose hours changed, or None when there is nothing to
    do now (no recount under way, or another process doing a batch or rebuilding the facts). Only rows
    of those cases are locked, briefly: reports and case actions go on. Facts kept after the clock
    changed count with it already, so the recount ends at the last case there is when it gets there."""
    try:
        if not db.session.execute(text(f"SELECT pg_try_advisory_xact_lock({HOURS_RECOUNT_LOCK})")).scalar():
            db.session.rollback()
            return None
        # the facts' table, then the setting's row, as a change of the clock takes them
        db.session.execute(text("LOCK TABLE kpi_facts IN ROW EXCLUSIVE MODE"))
        lo = hours_recount_next()
        if lo is None:
            db.session.rollback()
            return None
        hi = lo + batch
        changed = _count_hours_again(db.session, "case_id >= :lo AND case_id < :hi", {"lo": lo, "hi": hi})
        after = db.session.execute(text("SELECT min(case_id) FROM kpi_facts WHERE case_id >= :hi"), {"hi": hi}).scalar()
        if after is not None:  # the next case that has facts (ids need not be dense)
            _put_setting(db.session, HOURS_RECOUNT_KEY, {"next_case": after})
        else:
            end_hours_recount()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return changed


def _calendar_changed(day: date | None = None) -> None:
    """A new stamp: every process rereads the calendar once this transaction commits; SQL's work clock
    written again (`day`: the one day that changed)."""
    _put_setting(db.session, CALENDAR_STAMP_KEY, {"stamp": uuid.uuid4().hex})
    g.pop("work_calendar", None)
    db.session.flush()
    write_work_clock(day=day)


def calendar(year: int | None) -> dict:
    """The working calendar as it is in force: the time zone, the working periods of each weekday,
    and the listed days (holidays and swapped working days), of one year or all."""
    doc = work_calendar().to_dict()
    q = select(CalendarDay).order_by(CalendarDay.day)
    if year is not None:
        q = q.where(extract("year", CalendarDay.day) == year)
    days = [{"date": d.day, "workday": d.workday, "name": d.name} for d in db.session.execute(q).scalars()]
    return {"timezone": doc["timezone"], "work_periods": _week(doc["work_periods"]), "days": days}


def _week(work_periods: dict) -> dict:
    return {day: work_periods.get(day, []) for day in WEEKDAY_KEYS}


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid("date", f"not a date (YYYY-MM-DD): {value[:20]!r}")


def set_day(value: str, workday: bool, name: str) -> CalendarDay:
    """List a day: a holiday (workday false) or a swapped working day (workday true). Deadlines set
    from now on count with it; deadlines already set stay."""
    day = _day(value)
    row = db.session.get(CalendarDay, day) or CalendarDay(day=day)
    row.workday, row.name = workday, name
    db.session.add(row)
    db.session.flush()
    _calendar_changed(day)
    return row


def delete_day(value: str) -> None:
    """Unlist a day: it follows the weekly working periods again."""
    row = db.session.get(CalendarDay, _day(value))
    if row is None:
        raise NotFound(f"{value} is not listed in the calendar")
    db.session.delete(row)
    db.session.flush()
    _calendar_changed(row.day)


def checked_week(periods) -> WorkCalendar:
    """The calendar of these working periods of the week, or Invalid naming each weekday at fault (and
    a week with no working time at all: deadlines count working time)."""
    if not isinstance(periods, dict):
        raise invalid("work_periods", "must map weekdays to lists of [start, end], e.g. "
                                      '{"mon": [["09:00", "12:00"], ["13:00", "18:00"]]}')
    errors = {}
    for day, value in periods.items():
        try:
            WorkCalendar.from_dict({"work_periods": {day: value}})
        except (ValueError, TypeError) as exc:
            errors[day] = [str(exc)]
    if errors:
        raise Invalid("Some working periods are not valid: " + "; ".join(m for ms in errors.values() for m in ms),
                      errors)
    checked = WorkCalendar.from_dict({"timezone": current_app.config["TIMEZONE"], "work_periods": periods})
    if checked.standard_day_hours == 0:
        raise invalid("work_periods", "the week needs at least one working period: deadlines count working time")
    return checked


def set_work_periods(periods: dict) -> dict:
    """Replace the working periods of the week (a weekday left out has no working time)."""
    checked = checked_week(periods)
    work_periods = checked.to_dict()["work_periods"]
    setting = db.session.get(Setting, WORK_PERIODS_KEY) or Setting(key=WORK_PERIODS_KEY)
    setting.value = {**(setting.value or {}), "work_periods": work_periods}
    db.session.add(setting)
    db.session.flush()
    _calendar_changed()
    return {"timezone": checked.to_dict()["timezone"], "work_periods": _week(work_periods)}
