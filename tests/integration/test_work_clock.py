"""Working time counted in SQL (`work_hours(a, b)` over `work_clock`, for the KPIs' handling hours) is the
work calendar's own count, to the microsecond, and follows a change of the calendar at once."""
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text


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
