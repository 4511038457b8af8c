"""Working time counted in SQL (`work_hours(a, b)` over `work_clock`, for the KPIs' handling hours) is the
work calendar's own count, to the microsecond, and follows a change of the calendar at once."""
import io
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gridpatrol.kpis.services import recount_hours
from helpers import libpq


def _sql_hours(pairs):
    from gridpatrol.extensions import db
    return db.session.execute(text("""
        SELECT work_hours(t.a, t.b) FROM unnest(CAST(:a AS timestamptz[]), CAST(:b AS timestamptz[]))
                                         WITH ORDINALITY AS t(a, b, n) ORDER BY t.n
    """), {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}).scalars().all()


def test_sql_counts_working_hours_as_the_calendar_does(app):
    from gridpatrol.catalog import services as catalog
    rng = random.Random(2026)
    with app.app_context():
        cal = catalog.work_calendar()
        pairs = []
        base = datetime(2025, 1, 1, tzinfo=UTC)
        for _ in range(500):
            a = base + timedelta(seconds=rng.randrange(3 * 365 * 86400), microseconds=rng.randrange(10 ** 6))
            span = rng.choice([rng.randrange(600 * 60), rng.randrange(40 * 86400)])
            pairs.append((a, a + timedelta(seconds=span, microseconds=rng.randrange(10 ** 6))))
        # the edges of working periods, an empty span and a span backwards
        day = datetime(2025, 10, 9).date()  # a working day just after the National Day holiday
        periods = cal.periods_on(day)
        assert periods
        pairs += [(periods[0][0], periods[-1][1]), (periods[0][1], periods[-1][0]),
                  (periods[0][0] - timedelta(days=10), periods[0][0]), (periods[0][0], periods[0][0]),
                  (periods[-1][1], periods[0][0])]
        assert _sql_hours(pairs) == [cal.working_hours_between(a, b) for a, b in pairs]


def test_a_listed_day_changes_the_sql_count_at_once(app):
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db
    with app.app_context():
        day = datetime(2040, 6, 13).date()  # a Wednesday
        periods = catalog.work_calendar().periods_on(day)
        whole = [(periods[0][0], periods[-1][1])]
        before = _sql_hours(whole)[0]
        assert before > 0
        catalog.set_day(day.isoformat(), False, "a holiday for the test")
        assert _sql_hours(whole) == [0.0]
        db.session.commit()
        catalog.delete_day(day.isoformat())
        db.session.commit()
        assert _sql_hours(whole) == [before] == [catalog.work_calendar().working_hours_between(*whole[0])]


def _clock_rows():
    from gridpatrol.extensions import db
    return db.session.execute(text("SELECT day_start, day_end, before_us, periods FROM work_clock "
                                   "ORDER BY day_start")).all()


def _differences(rows, others):
    """The first few rows that differ (compared one by one: a failure names them, not 9,500 rows)."""
    if len(rows) != len(others):
        return [("rows", len(rows), len(others))]
    return [(a, b) for a, b in zip(rows, others) if a != b][:3]


def _row_versions():
    """Each day's row version (xmin): a row written again gets a new one."""
    from gridpatrol.extensions import db
    return dict(db.session.execute(text("SELECT day_start, xmin::text FROM work_clock")).all())


def _spans(case_ids):
    from gridpatrol.extensions import db
    return db.session.execute(text("""
        SELECT dispatch_at, handle_at, handling_hours FROM kpi_facts WHERE case_id = ANY(:ids)
        ORDER BY case_id, kind
    """), {"ids": case_ids}).all()


@pytest.fixture
def set_span(app):
    """set_span(case_id, kind, a, b): a kept KPI fact given the span dispatched a, handled b (and its hours
    counted); the cases' facts are worked out from their logs again afterwards (and the daily sums told), as
    every other test expects."""
    from gridpatrol.extensions import db
    cases = set()

    def put(case_id, kind, a, b):
        cases.add(case_id)
        db.session.execute(text("""
            UPDATE kpi_facts SET dispatch_at = :a, handle_at = :b, handling_hours = work_hours(:a, :b)
            WHERE case_id = :id AND kind = :kind
        """), {"a": a, "b": b, "id": case_id, "kind": kind})
    yield put
    with app.app_context():
        for case_id in cases:
            db.session.execute(text("SELECT kpi_facts_rebuild(:id, :id, logged => true)"), {"id": case_id})
        db.session.commit()


def test_single_day_changes_write_what_a_full_rewrite_writes(app, make_user, district, set_span):
    """A day listed or unlisted rewrites that day's row and shifts the working time before every later day,
    nothing else; after a run of such changes the clock is row for row what a full rewrite writes, and the
    handling hours of the kept KPI facts are the calendar's own count throughout."""
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db

    inspector = make_user("inspector", scope=[district["code"]])
    cases = [inspector.report(lon=district["point"](i)[0], lat=district["point"](i)[1])["id"] for i in (0, 1, 2)]
    wednesday, saturday = datetime(2038, 3, 10).date(), datetime(2038, 3, 13).date()
    with app.app_context():
        tz = catalog.work_calendar().tz

        def at(d, hour):
            return datetime(2038, 3, d, hour, tzinfo=tz)
        # spans over the Wednesday, over the Saturday, after both, one backwards over the Wednesday, one
        # within the Wednesday and one within the Thursday (the facts' two rows per case: kinds 'c' and 't')
        spans = [(at(9, 10), at(11, 10)), (at(12, 10), at(15, 10)), (at(16, 10), at(17, 15)), (at(11, 10), at(9, 10)),
                 (at(10, 9), at(10, 16)), (at(11, 9), at(11, 16))]
        for case_id, rows in zip(cases, (spans[:2], spans[2:4], spans[4:])):
            for kind, (a, b) in zip(("c", "t"), rows):
                set_span(case_id, kind, a, b)
        db.session.commit()
        assert len(_spans(cases)) == 6

        def change(step, day, shifts=True):
            before = _row_versions()
            step()
            db.session.commit()
            after = _row_versions()
            start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
            rewritten = {d for d in after if after[d] != before[d]}
            assert len(after) == len(before) and set(after) == set(before)
            # the days before the change are not written; the day itself and those after are
            assert sorted(d for d in rewritten if d < start)[:3] == []
            assert start in rewritten
            if shifts:
                assert sorted(d for d in after if d >= start and d not in rewritten)[:3] == []
            else:  # no working time gained or lost: the day's row only
                assert rewritten == {start}
            cal = catalog.work_calendar()
            assert [h for _, _, h in _spans(cases)] == [cal.working_hours_between(a, b) for a, b, _ in _spans(cases)]
            return [h for _, _, h in _spans(cases)]

        hours = [h for _, _, h in _spans(cases)]
        assert hours[0] == 16.0 and hours[1] == 8.0  # Tue 10:00 to Thu 10:00; Fri 10:00 to Mon 10:00
        thursday = hours[5]
        hours = change(lambda: catalog.set_day(wednesday.isoformat(), False, "a holiday for the test"), wednesday)
        assert hours[:4] == [8.0, 8.0, 12.0, -8.0] and hours[4:] == [0.0, thursday]
        hours = change(lambda: catalog.set_day(saturday.isoformat(), True, "a swapped working day"), saturday)
        assert hours[:4] == [8.0, 16.0, 12.0, -8.0]
        hours = change(lambda: catalog.delete_day(wednesday.isoformat()), wednesday)
        assert hours[:4] == [16.0, 16.0, 12.0, -16.0] and hours[4] > 0
        hours = change(lambda: catalog.delete_day(saturday.isoformat()), saturday)
        assert hours[:4] == [16.0, 8.0, 12.0, -16.0]
        sunday = saturday + timedelta(days=1)
        assert change(lambda: catalog.set_day(sunday.isoformat(), False, "a holiday on a Sunday"), sunday,
                      shifts=False) == hours
        assert change(lambda: catalog.delete_day(sunday.isoformat()), sunday, shifts=False) == hours
        hours = change(lambda: catalog.set_day(saturday.isoformat(), True, "a swapped working day"), saturday)

        incremental = _clock_rows()
        assert catalog.write_work_clock() == len(incremental) > 9000
        assert _differences(_clock_rows(), incremental) == []
        assert [h for _, _, h in _spans(cases)] == hours
        catalog.delete_day(saturday.isoformat())
        db.session.commit()
        assert _differences(_clock_rows(), incremental) != []
        # a whole rewrite leaves the kept hours to the recount after it (the KPI worker's): spoilt here
        # first, they are counted again only by that
        db.session.execute(text("UPDATE kpi_facts SET handling_hours = 0 WHERE case_id = ANY(:ids)"), {"ids": cases})
        catalog.write_work_clock()
        db.session.commit()
        assert {h for _, _, h in _spans(cases)} == {0.0}
        recount_hours()
        cal = catalog.work_calendar()
        assert [h for _, _, h in _spans(cases)] == [cal.working_hours_between(a, b) for a, b, _ in _spans(cases)]
        assert [h for _, _, h in _spans(cases)][:4] == [16.0, 8.0, 12.0, -16.0]


def _recount_under_way():
    from gridpatrol.extensions import db
    value = db.session.execute(text("SELECT value FROM settings WHERE key = 'kpi_hours_recount'")).scalar()
    db.session.commit()
    return value


def _facts_written_by_this_transaction() -> int:
    from gridpatrol.extensions import db
    return db.session.execute(text("SELECT count(*) FROM kpi_facts"
                                   " WHERE xmin::text::bigint = txid_current() % 4294967296")).scalar()


def test_a_change_of_the_week_counts_all_handling_hours_again(app, make_user, district, set_span):
    """Working periods of the week changed: the whole clock at once, and every kept span after the change
    commits, in batches of cases by the KPI worker (`gridpatrol kpis compact`), not in the change's own
    transaction, which holds every report's commit while it lasts."""
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db

    inspector = make_user("inspector", scope=[district["code"]])
    supervisor = make_user("supervisor", scope=[district["code"]])
    case_id = inspector.report(lon=district["point"](4)[0], lat=district["point"](4)[1])["id"]

    def recounting(**query):
        """What a KPI read says of the handling hours: being counted again or not."""
        r = supervisor.get("/api/v1/kpis", query_string=query)
        assert r.status_code == 200, r.get_json()
        return r.get_json()["hours_recounting"]

    with app.app_context():
        tz = catalog.work_calendar().tz
        a, b = datetime(2037, 9, 7, 9, tzinfo=tz), datetime(2037, 9, 8, 18, tzinfo=tz)  # Monday 9:00 to Tuesday 18:00
        set_span(case_id, "c", a, b)
        db.session.commit()
        week = catalog.calendar(None)["work_periods"]
        assert _spans([case_id])[0].handling_hours == 16.0
        recount_hours()  # one an earlier test's change left under way
        assert recounting() is False
        try:
            catalog.set_work_periods({**{k: v for k, v in week.items() if v}, "mon": [["09:00", "12:00"]]})
            assert _facts_written_by_this_transaction() == 0
            db.session.commit()
            assert _recount_under_way() == {"next_case": 0}
            assert _spans([case_id])[0].handling_hours == 16.0  # kept before the change: not counted yet
            # a KPI read of the kept facts says their hours mix the two weeks, by team (the daily sums) and
            # by grid (the facts); one worked out from the event log counts with the new week alone
            assert recounting() is True and recounting(group_by="grid") is True
            # and so does the spreadsheet of those KPIs, on its sheet About
            from openpyxl import load_workbook
            r = supervisor.get("/api/v1/kpis/export.xlsx", query_string={"group_by": "team"})
            assert r.status_code == 200
            assert dict(load_workbook(io.BytesIO(r.data))["About"].iter_rows(values_only=True))["hours_recounting"] is True
            assert recounting(as_of=datetime.now(UTC).isoformat()) is False
            # by cases, a batch at a time: the cases below this one first, then the rest
            assert catalog.recount_handling_hours(batch=case_id) >= 0
            assert _recount_under_way() == {"next_case": case_id}
            assert _spans([case_id])[0].handling_hours == 16.0
            result = app.test_cli_runner().invoke(args=["kpis", "compact"])
            assert result.exit_code == 0, result.output
            assert int(re.search(r"handling hours counted again: (\d+) facts changed", result.output).group(1)) >= 1
            assert _spans([case_id])[0].handling_hours == 11.0
            assert _recount_under_way() is None and catalog.recount_handling_hours() is None
            assert recounting() is False
        finally:
            catalog.set_work_periods({k: v for k, v in week.items() if v})
            db.session.commit()
            recount_hours()
        assert _spans([case_id])[0].handling_hours == 16.0


def test_the_clock_is_written_whole_when_it_was_written_with_another_time_zone(app, app_database_url):
    """The time zone is the deployment's setting, not the calendar's: a day changed after it changed writes
    every day again, at the new zone's midnights, and so does a day changed on a clock written before what
    it was written with was kept."""
    from zoneinfo import ZoneInfo

    from gridpatrol import create_app
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db

    day = datetime(2038, 5, 5).date()
    tokyo = create_app({"SQLALCHEMY_DATABASE_URI": app_database_url, "TESTING": True, "TIMEZONE": "Asia/Tokyo"})
    try:
        with tokyo.app_context():
            before = _row_versions()
            catalog.set_day(day.isoformat(), False, "a holiday for the test")
            db.session.commit()
            after = _row_versions()
            assert len(set(after) & set(before)) == 0  # every day starts at another moment now
            first, *_ = _clock_rows()
            assert first.day_start == datetime(2015, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
            assert sum(1 for _, _, _, periods in _clock_rows() if periods) > 6000
            assert _sql_hours([(datetime(2038, 5, 5, tzinfo=ZoneInfo("Asia/Tokyo")),
                                datetime(2038, 5, 6, tzinfo=ZoneInfo("Asia/Tokyo")))]) == [0.0]
    finally:
        with app.app_context():
            catalog.delete_day(day.isoformat())  # back in the deployment's own zone: written whole again
            db.session.commit()
        with tokyo.app_context():
            db.engine.dispose()
    with app.app_context():
        tz = catalog.work_calendar().tz
        rows = _clock_rows()
        assert rows[0].day_start == datetime(2015, 1, 1, tzinfo=tz)
        catalog.write_work_clock()
        assert _differences(_clock_rows(), rows) == []
        # a clock written before the zone and week it was written with were kept: written whole
        db.session.execute(text("DELETE FROM settings WHERE key = 'work_clock'"))
        db.session.commit()
        before = _row_versions()
        catalog.set_day(day.isoformat(), False, "a holiday for the test")
        db.session.commit()
        after = _row_versions()
        assert sum(after[d] == before[d] for d in before) == 0
        before = _row_versions()
        catalog.delete_day(day.isoformat())
        db.session.commit()
        assert _row_versions()[rows[0].day_start] == before[rows[0].day_start]  # and day by day from then on
        recount_hours()  # the whole rewrites' recount, as the KPI worker does


def test_a_recount_skips_ids_without_facts_and_leaves_a_batch_to_the_process_doing_one(
        app, app_database_url, make_user, district):
    """The recount goes by case id to the next case that has facts (ids have gaps: a refused report
    uses one up), and a process that finds another doing a batch (or rebuilding the facts) leaves it
    and holds nothing."""
    import psycopg

    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db

    inspector = make_user("inspector", scope=[district["code"]])
    first = inspector.report(lon=district["point"](5)[0], lat=district["point"](5)[1])["id"]
    with app.app_context():
        for _ in range(3):
            db.session.execute(text("SELECT nextval(pg_get_serial_sequence('cases', 'id'))"))
        db.session.commit()
    second = inspector.report(lon=district["point"](6)[0], lat=district["point"](6)[1])["id"]
    assert second > first + 1
    with app.app_context():
        try:
            db.session.execute(text("INSERT INTO settings (key, value) VALUES ('kpi_hours_recount', :v)"
                                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
                               {"v": f'{{"next_case": {first}}}'})
            db.session.commit()
            assert catalog.recount_handling_hours(batch=1) == 0
            assert _recount_under_way() == {"next_case": second}  # not first + 1: no case there has facts
            url = libpq(app_database_url)
            with psycopg.connect(url) as other:  # a rebuild, or another worker's batch, under way
                other.execute(f"SELECT pg_advisory_lock({catalog.HOURS_RECOUNT_LOCK})")
                assert catalog.recount_handling_hours() is None
                assert _recount_under_way() == {"next_case": second}
                other.execute(f"SELECT pg_advisory_unlock({catalog.HOURS_RECOUNT_LOCK})")
            recount_hours()
            assert _recount_under_way() is None
        finally:
            catalog.end_hours_recount()
            db.session.commit()
