"""The KPIs' daily sums (migration 0011): as of now, KPIs by team, category and street over whole local
days come from `kpi_daily` plus the facts' change log not folded in yet, and the partial days at the ends
of a period from the facts. They must give exactly the rows worked out from the event log (`as_of`),
whatever has been folded, for any period; the handling-hour percentiles exactly up to
KPI_EXACT_PERCENTILE_ROWS registrations, and within one bucket beyond.

The district of this module holds 210 cases written straight into the tables over the 50 days before
now (the event log through its own hash-chain trigger, the facts through their own trigger, as the
bench's generator does), along seven paths of the closed loop.
"""
import json
import random
import uuid
from collections import Counter
from datetime import datetime, time, timedelta, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from gridpatrol.kpis import services
from helpers import PASSWORD, Api, block_geojson, sent_statements, sql

CODE = "930001"
DAILY_GROUPS = ("team", "category", "street")
SUMS = services.DAILY_SUMS
# (action, from, to, hours after the previous step, acting team: T, U or None, dispatched to)
PATHS = {
    "reported": [],
    "rejected": [("reject", "reported", "rejected", 20, None, None)],
    "closed": [("register", "reported", "registered", 3, None, None),
               ("dispatch", "registered", "dispatched", 2, None, "T"),
               ("handle", "dispatched", "handled", 30, "T", None),
               ("verify_pass", "handled", "closed", 26, None, None)],
    "rework": [("register", "reported", "registered", 1, None, None),
               ("dispatch", "registered", "dispatched", 5, None, "T"),
               ("handle", "dispatched", "handled", 9, "T", None),
               ("verify_fail", "handled", "dispatched", 4, None, None),
               ("handle", "dispatched", "handled", 50, "T", None),
               ("verify_pass", "handled", "closed", 2, None, None)],
    "returned": [("register", "reported", "registered", 12, None, None),
                 ("dispatch", "registered", "dispatched", 1, None, "T"),
                 ("return", "dispatched", "registered", 7, "T", None),
                 ("dispatch", "registered", "dispatched", 1, None, "U"),
                 ("handle", "dispatched", "handled", 70, "U", None)],
    "overdue": [("register", "reported", "registered", 2, None, None),
                ("dispatch", "registered", "dispatched", 1, None, "U")],
    "suspended": [("register", "reported", "registered", 2, None, None),
                  ("dispatch", "registered", "dispatched", 1, None, "U"),
                  ("suspend", "dispatched", "suspended", 6, None, None)],
}


def _sign_in(app, client, roles, scope):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    name = f"daily_{uuid.uuid4().hex[:8]}"
    with app.app_context():
        user = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=roles, scope=scope,
                                team_ids=[], grid_codes=[])
        db.session.commit()
        user_id = user.id
    r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
    api.id = user_id
    return api


def _write_case(db, rnd, now, teams, reporter, grids, path):
    """One case along `path`, its last event 0.2 to 48 days ago, its events in order through the log's trigger."""
    steps = PATHS[path]
    gaps = [timedelta(hours=step[3] * rnd.uniform(0.5, 1.5)) for step in steps]
    at = now - timedelta(days=rnd.uniform(0.2, 48)) - sum(gaps, timedelta())  # every event in the past
    moments, t = [], at
    for gap in gaps:
        t += gap
        moments.append(t)
    status = steps[-1][2] if steps else "reported"
    lead = next((teams[s[5]] for s in reversed(steps) if s[5]), None)
    grid = rnd.choice(grids)
    dispatched = [m for s, m in zip(steps, moments) if s[0] == "dispatch"]
    deadline = dispatched[-1] + timedelta(days=rnd.choice([1, 4])) if dispatched else None
    case_id = db.session.execute(text("""
        INSERT INTO cases (number, status, category_code, urgency, description, location, accuracy_m, grid_code,
                           district_code, street_code, community_code, source, reporter_id, observed_at,
                           reported_at, version, updated_at, lead_team_id, deadline_handle, suspended_from)
        VALUES ('D' || lpad(nextval('case_number_seq')::text, 12, '0'), :status, :category, 'B', 'daily sums',
                ST_SetSRID(ST_MakePoint(66.0005, 29.9995), 4326), 5, :grid, :district, :street, :community,
                'inspector', :reporter, :at, :at, 1, :at, :lead, :deadline, :suspended_from)
        RETURNING id
    """), {"status": status, "category": rnd.choice(["0701", "0101"]), "grid": grid, "district": grid[:6], "street": grid[:9],
           "community": grid[:12], "reporter": reporter,
           "at": at, "lead": lead, "deadline": deadline,
           "suspended_from": "dispatched" if status == "suspended" else None}).scalar()
    events = [(at, None, "report", None, "reported", {"category_code": "0701"})]
    for step, moment in zip(steps, moments):
        action, before, after, _, acting, to = step
        events.append((moment, teams[acting] if acting else None, action, before, after,
                       {"team_id": teams[to]} if to else {}))
    for moment, team, action, before, after, payload in events:
        db.session.execute(text("""
            INSERT INTO case_events (case_id, at, actor_id, team_id, action, from_status, to_status, payload)
            VALUES (:case, :at, :actor, :team, :action, :before, :after, CAST(:payload AS jsonb))
        """), {"case": case_id, "at": moment, "actor": reporter, "team": team, "action": action, "before": before,
               "after": after, "payload": json.dumps(payload)})
    return case_id


@pytest.fixture(scope="module")
def world(app):
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    client = app.test_client()
    with app.app_context():
        result = importer.import_grids(json.dumps(block_geojson(CODE, 66.0, 30.0, 3, 0.001)).encode(), "daily.geojson")
        assert result.created == 9
        teams = {}
        for name in ("T", "U"):
            team = Team(name=f"daily team {name} {uuid.uuid4().hex[:6]}", kind="enforcement", agencies=["城管"],
                        area_codes=[CODE], grid_codes=[], category_codes=["0701", "0101"])
            db.session.add(team)
            db.session.flush()
            teams[name] = team.id
        db.session.commit()
    supervisor = _sign_in(app, client, ["supervisor"], [CODE])
    street = _sign_in(app, client, ["supervisor"], [CODE + "001"])
    city = _sign_in(app, client, ["supervisor"], ["*"])
    grids = [f"{CODE}001001{i:03d}" for i in range(1, 10)]
    rnd = random.Random(20261126)
    now = datetime.now(timezone.utc)
    cases = {}
    with app.app_context():
        for i in range(210):
            path = list(PATHS)[i % len(PATHS)]
            cases.setdefault(path, []).append(_write_case(db, rnd, now, teams, supervisor.id, grids, path))
        db.session.commit()  # the facts' trigger works each case's facts out here, and logs them
    return {"teams": teams, "cases": cases, "supervisor": supervisor, "street": street, "city": city}


def _get(api, path, **query):
    r = api.get(f"{path}?{urlencode(query)}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _periods():
    now = datetime.now(timezone.utc)
    return [{}, {"from": (now - timedelta(days=45, hours=7)).isoformat(),
                 "to": (now - timedelta(days=3, hours=2)).isoformat()},
            {"from": (now - timedelta(days=20)).isoformat(), "to": (now - timedelta(days=18, hours=13)).isoformat()},
            {"from": (now - timedelta(days=60)).isoformat()}]


def _taken_away_period(app):
    """A past period from a month's first day to 03:00 of a day D from its 20th on, D the latest such
    day before today on which the module's district has handling hours kept (it was compacted): its
    sums are that month less the days from D on (services.sum_bounds), which hold rows to take away."""
    tz = ZoneInfo(app.config["TIMEZONE"])
    day = sql(app, """
        SELECT max(day) FROM kpi_daily_hours WHERE district_code = :d AND group_by = 'team'
          AND extract(day FROM day) >= 20 AND day < (now() AT TIME ZONE :tz)::date""", d=CODE, tz=str(tz))[0][0]
    assert day is not None
    return {"from": datetime.combine(day.replace(day=1), time(0), tzinfo=tz).isoformat(),
            "to": datetime.combine(day, time(3), tzinfo=tz).isoformat()}


def _sum_bounds(app, period, as_of):
    """services.sum_bounds() of a period as the API is asked it, as of `as_of`; with its start and end."""
    start = datetime.fromisoformat(period["from"])
    to = datetime.fromisoformat(period["to"]) if "to" in period else as_of
    return services.sum_bounds(start, to, as_of, ZoneInfo(app.config["TIMEZONE"]), months=True), start, to


def _same_both_ways(api, group_by, period):
    kept = _get(api, "/api/v1/kpis", group_by=group_by, **period)
    raw = _get(api, "/api/v1/kpis", group_by=group_by, as_of=kept["as_of"], **period)
    assert (kept["source"], raw["source"]) == ("rollup", "events")
    assert kept["rows"] == raw["rows"], (group_by, period)
    assert (kept["percentiles"], raw["percentiles"]) == ("exact", "exact")
    return kept


def _same_trend(api, group_by, interval):
    query = {"group_by": group_by, "interval": interval,
             "from": (datetime.now(timezone.utc) - timedelta(days=55)).isoformat()}
    kept = _get(api, "/api/v1/kpis/trend", **query)
    raw = _get(api, "/api/v1/kpis/trend", as_of=kept["as_of"], **query)
    assert kept["series"] == raw["series"], (group_by, interval)
    return kept


def _compact(app):
    result = app.test_cli_runner().invoke(args=["kpis", "compact"])
    assert result.exit_code == 0, result.output
    return int(result.output.split()[0])


def _log_rows(app):
    return sql(app, "SELECT count(*) FROM kpi_facts_log WHERE district_code = :d", d=CODE)[0][0]


def _daily_rows(app):
    return sql(app, "SELECT count(*) FROM kpi_daily WHERE district_code = :d", d=CODE)[0][0]


def test_the_daily_path_gives_the_event_logs_rows_before_and_after_folding(app, world):
    sup = world["supervisor"]
    logged = _log_rows(app)
    assert logged >= 420  # written, not folded yet: read from the log
    for group_by in DAILY_GROUPS:
        for period in _periods():
            _same_both_ways(sup, group_by, period)
    assert _compact(app) >= logged  # folded (with whatever else was logged)
    assert (_log_rows(app), _daily_rows(app) > 0) == (0, True)
    for group_by in DAILY_GROUPS:
        for period in _periods():
            body = _same_both_ways(sup, group_by, period)
            if not period:
                assert sum(r["registered"] for r in body["rows"]) > 50
    # the figures are the district's: seven paths, 30 cases each
    rows = _get(sup, "/api/v1/kpis", group_by="street", **{"from": _periods()[3]["from"]})["rows"]
    assert [(r["key"], r["reports"], r["rejected"]) for r in rows] == [(CODE + "001", 210, 30)]


def test_the_trend_is_the_same_from_the_daily_sums(app, world):
    _compact(app)
    for group_by in DAILY_GROUPS:
        for interval in ("week", "month"):
            kept = _same_trend(world["supervisor"], group_by, interval)
            assert sum(p["registered"] for s in kept["series"] for p in s["points"]) == 150


def test_events_after_folding_count_at_once(app, world):
    from gridpatrol.extensions import db
    _compact(app)
    sup = world["supervisor"]
    before = {r["key"]: r for r in _same_both_ways(sup, "team", {"from": _periods()[3]["from"]})["rows"]}
    u = str(world["teams"]["U"])
    # three of U's handled cases closed now, one reported case rejected now: the old facts leave, the new come
    with app.app_context():
        for case_id in world["cases"]["returned"][:3]:
            db.session.execute(text("""
                INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload)
                VALUES (:c, now(), :a, 'verify_pass', 'handled', 'closed', '{}')"""), {"c": case_id, "a": sup.id})
            db.session.execute(text("UPDATE cases SET status = 'closed' WHERE id = :c"), {"c": case_id})
        db.session.execute(text("""
            INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload)
            VALUES (:c, now(), :a, 'reject', 'reported', 'rejected', '{}')"""),
            {"c": world["cases"]["reported"][0], "a": sup.id})
        db.session.commit()
    assert _log_rows(app) > 0
    for group_by in DAILY_GROUPS:
        for period in _periods():
            _same_both_ways(sup, group_by, period)
        _same_trend(sup, group_by, "month")  # whole months from kpi_monthly, plus the log
    after = {r["key"]: r for r in _same_both_ways(sup, "team", {"from": _periods()[3]["from"]})["rows"]}
    assert after[u]["closed"] == before[u]["closed"] + 3
    assert after[None]["rejected"] == before[None]["rejected"] + 1
    _compact(app)
    assert _same_both_ways(sup, "team", {"from": _periods()[3]["from"]})["rows"] == list(after.values())
    # the compaction keeps the months the sums of their days
    months = sql(app, "SELECT * FROM kpi_monthly WHERE district_code = :d EXCEPT SELECT group_by, "
                      "date_trunc('month', day)::date, district_code, key, " + ", ".join(f"sum({n})" for n in SUMS) +
                      " FROM kpi_daily WHERE district_code = :d GROUP BY 1, 2, 3, 4", d=CODE)
    assert months == [] and sql(app, "SELECT count(*) FROM kpi_monthly WHERE district_code = :d", d=CODE)[0][0] >= 6
    # and the months' hour buckets the sums of their days' buckets (migration 0028), both ways
    buckets = ("SELECT group_by, date_trunc('month', day)::date, district_code, key, bucket, sum(n) FROM kpi_daily_hours "
               "WHERE district_code = :d GROUP BY 1, 2, 3, 4, 5")
    month_buckets = "SELECT * FROM kpi_monthly_hours WHERE district_code = :d"
    assert sql(app, f"({month_buckets}) EXCEPT ({buckets})", d=CODE) == []
    assert sql(app, f"({buckets}) EXCEPT ({month_buckets})", d=CODE) == []
    assert sql(app, "SELECT count(*) FROM kpi_monthly_hours WHERE district_code = :d", d=CODE)[0][0] >= 20


def test_the_city_and_a_street_see_the_same_as_the_event_log(app, world):
    _compact(app)
    for api in (world["city"], world["street"]):
        for group_by in DAILY_GROUPS:
            for period in _periods()[:2] + [_taken_away_period(app)]:
                _same_both_ways(api, group_by, period)
    street = _get(world["street"], "/api/v1/kpis", group_by="category", **{"from": _periods()[3]["from"]})
    assert sum(r["reports"] for r in street["rows"]) == 210  # the whole district is this one street


def test_reads_use_the_daily_sums_and_rebuild_mends_them(app, world):
    sup = world["supervisor"]
    _compact(app)
    taken_away = _taken_away_period(app)
    for period in _periods()[1:] + [taken_away]:
        right = _same_both_ways(sup, "category", period)["rows"]
        # every day and month row the period's bounds name is read: spoil each level by its own amount
        sql(app, "UPDATE kpi_daily SET registered = registered + 1000 WHERE district_code = :d", d=CODE)
        sql(app, "UPDATE kpi_monthly SET registered = registered + 1000000 WHERE district_code = :d", d=CODE)
        try:
            spoiled = _get(sup, "/api/v1/kpis", group_by="category", **period)
            b = _sum_bounds(app, period, datetime.fromisoformat(spoiled["as_of"]))[0]
            # the rows of the keys the answer has (a key whose activity in the period the ends' differences
            # cancel has no row: its day rows are read, and left out with it)
            rows = ("SELECT count(*) FROM {} WHERE district_code = :d AND group_by = 'category' AND day >= :a "
                    "AND day < :b AND key = ANY(:keys)")
            keys = [r["key"] for r in right]

            def day_rows(a, z):  # the days [a, z) added, or [z, a) taken away (migration 0029)
                return (sql(app, rows.format("kpi_daily"), d=CODE, a=a, b=z, keys=keys)[0][0]
                        - sql(app, rows.format("kpi_daily"), d=CODE, a=z, b=a, keys=keys)[0][0])
            days = day_rows(b["d0"], b["m0"]) + day_rows(b["m1"], b["d1"])
            months = sql(app, rows.format("kpi_monthly"), d=CODE, a=b["m0"], b=b["m1"], keys=keys)[0][0]
            assert (days or months) and (months > 0 or "to" in period)
            if period is taken_away:
                assert b["m0"] == b["d0"] and b["d1"] < b["m1"] and days < 0 < months, b
            spoiled_by = sum(r["registered"] for r in spoiled["rows"]) - sum(r["registered"] for r in right)
            assert spoiled_by == 1000 * days + 1000000 * months
        finally:  # a failure leaves no spoiled sums to the module's later tests
            result = app.test_cli_runner().invoke(args=["kpis", "rebuild", "--batch", "100000"])
            assert result.exit_code == 0, result.output
        assert _same_both_ways(sup, "category", period)["rows"] == right


def test_a_logged_repair_of_some_cases_keeps_the_sums(app, world):
    sup = world["supervisor"]
    _compact(app)
    right = _same_both_ways(sup, "team", {})["rows"]
    ids = sorted(world["cases"]["returned"])[:5]
    # facts gone wrong (logged: the sums follow them), then worked out again for those cases only
    sql(app, "UPDATE kpi_facts SET closed = NOT closed, returned = NOT returned WHERE case_id = ANY(:ids)", ids=ids)
    assert _get(sup, "/api/v1/kpis", group_by="team")["rows"] != right
    sql(app, "SELECT kpi_facts_rebuild(:lo, :hi, logged => true)", lo=ids[0], hi=ids[-1])
    assert _same_both_ways(sup, "team", {})["rows"] == right
    _compact(app)
    assert _same_both_ways(sup, "team", {})["rows"] == right


def test_a_rebuild_waits_for_a_compaction_and_holds_the_next_off(app, world):
    """kpi_daily_rebuild() takes the compaction's lock first (migration 0030): it waits for a compaction
    under way, and none folds anything while it runs (a compaction committing meanwhile could leave its
    sums beside the rebuilt ones)."""
    from sqlalchemy.exc import OperationalError

    from gridpatrol.extensions import db
    _compact(app)
    right = _same_both_ways(world["supervisor"], "team", {})["rows"]
    lock = text("SELECT pg_try_advisory_xact_lock(hashtext('kpi_daily_compact'))")
    rebuild = text("SELECT kpi_daily_rebuild(:tz)")
    with app.app_context():
        engine = db.engine
    tz = app.config["TIMEZONE"]
    with engine.connect() as compaction, engine.connect() as rebuilding:
        assert compaction.execute(lock).scalar() is True  # a compaction under way holds its lock
        rebuilding.execute(text("SET lock_timeout = '500ms'"))
        with pytest.raises(OperationalError) as waited:
            rebuilding.execute(rebuild, {"tz": tz})
        # lock_not_available, at the rebuild's first statement: the compaction's lock (the table's comes after)
        assert waited.value.orig.sqlstate == "55P03"
        assert "kpi_daily_rebuild(text) line 5 at PERFORM" in waited.value.orig.diag.context
        rebuilding.rollback()
        compaction.rollback()
        assert rebuilding.execute(rebuild, {"tz": tz}).scalar() > 0  # a rebuild under way, not committed
        assert compaction.execute(lock).scalar() is False
        assert compaction.execute(text("SELECT kpi_daily_compact()")).scalar() == 0
        compaction.rollback()
        rebuilding.commit()
        assert compaction.execute(lock).scalar() is True
        compaction.rollback()
    assert _same_both_ways(world["supervisor"], "team", {})["rows"] == right


def test_sums_kept_in_another_time_zone_are_not_read(app, world):
    sup = world["supervisor"]
    _compact(app)
    sql(app, "UPDATE kpi_daily SET registered = registered + 1000 WHERE district_code = :d", d=CODE)
    sql(app, "UPDATE kpi_daily_state SET tz = 'UTC'")
    try:
        for group_by in DAILY_GROUPS:
            _same_both_ways(sup, group_by, {})  # from the facts: the spoiled sums are not read
    finally:
        result = app.test_cli_runner().invoke(args=["kpis", "rebuild"])
        assert result.exit_code == 0, result.output
    assert sql(app, "SELECT tz FROM kpi_daily_state")[0][0] == app.config["TIMEZONE"]


def test_percentiles_beyond_the_exact_limit_are_within_a_bucket(app, world):
    from gridpatrol.kpis.services import hours_bucket_bounds, percentile_of_buckets
    sup = world["supervisor"]
    _compact(app)
    exact = {}
    for group_by in DAILY_GROUPS:
        exact[group_by] = _same_both_ways(sup, group_by, {"from": _periods()[3]["from"]})["rows"]
    limit, app.config["KPI_EXACT_PERCENTILE_ROWS"] = app.config["KPI_EXACT_PERCENTILE_ROWS"], 0
    try:
        checked = 0
        for group_by in DAILY_GROUPS:
            body = _get(sup, "/api/v1/kpis", group_by=group_by, **{"from": _periods()[3]["from"]})
            assert body["percentiles"] == "buckets"
            binned = body["rows"]
            assert [{k: v for k, v in r.items() if not k.startswith("handling")} for r in binned] == \
                [{k: v for k, v in r.items() if not k.startswith("handling")} for r in exact[group_by]]
            for b, e in zip(binned, exact[group_by]):
                for name in ("handling_hours_p50", "handling_hours_p90"):
                    assert (b[name] is None) == (e[name] is None)
                    if e[name] is not None:
                        width = 0.1 if e[name] < 24 else 1 if e[name] < 240 else 10
                        assert abs(b[name] - e[name]) <= width + 0.01, (group_by, b["key"], name, b[name], e[name])
                        checked += 1
        assert checked >= 8
    finally:
        app.config["KPI_EXACT_PERCENTILE_ROWS"] = limit
    # the buckets themselves: percentile_cont of evenly spread values, and the bounds of each bucket
    assert hours_bucket_bounds(0) == (0, 0.1) and hours_bucket_bounds(240) == (24, 25)
    assert hours_bucket_bounds(456) == (240, 250)
    assert percentile_of_buckets([(10, 1), (20, 1)], 0.5) == pytest.approx((1.05 + 2.05) / 2)
    assert percentile_of_buckets([(10, 4)], 0.5) == pytest.approx(1.05)
    assert percentile_of_buckets([], 0.5) is None


def test_binned_percentiles_read_the_months_buckets_and_rebuild_mends_them(app, world):
    """Beyond the exact limit the buckets of whole months come from kpi_monthly_hours (migration 0028): a
    spoiled month shows in a period that holds it and not in one that holds no whole month, and
    `kpis rebuild` sums the months again from the facts."""
    sup = world["supervisor"]
    tz = ZoneInfo(app.config["TIMEZONE"])
    _compact(app)
    # 60 days up to now hold a whole month or two; 12 days ending on a month's first day are read as
    # days (their month less the days before them would read more rows), and hold some of the module's
    # cases, which lie in the 50 days before now
    with_months = {"from": (datetime.now(timezone.utc) - timedelta(days=60)).isoformat()}
    first = datetime.now(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days_only = {"from": (first - timedelta(days=12)).isoformat(), "to": first.isoformat()}
    limit, app.config["KPI_EXACT_PERCENTILE_ROWS"] = app.config["KPI_EXACT_PERCENTILE_ROWS"], 0

    def hours(period):
        body = _get(sup, "/api/v1/kpis", group_by="team", **period)
        assert body["percentiles"] == "buckets"
        return {r["key"]: (r["handling_hours_p50"], r["handling_hours_p90"]) for r in body["rows"]}, body

    try:
        right, body = hours(with_months)
        start, as_of = datetime.fromisoformat(with_months["from"]), datetime.fromisoformat(body["as_of"])
        b = services.sum_bounds(start, as_of, as_of, tz, months=True)
        assert b["m0"] < b["m1"]
        right_days, body = hours(days_only)
        none = services.sum_bounds(datetime.fromisoformat(days_only["from"]), first, as_of, tz, months=True)
        assert none["m0"] == none["m1"]
        assert any(p50 is not None for p50, _ in right_days.values())
        # every team's every month gets 100,000 handlings of 4,680 hours (bucket 900) it never had
        sql(app, """
            INSERT INTO kpi_monthly_hours (group_by, day, district_code, key, bucket, n)
            SELECT DISTINCT group_by, day, district_code, key, 900, 100000 FROM kpi_monthly_hours
            WHERE district_code = :d AND group_by = 'team'""", d=CODE)
        spoiled = {key for (key,) in sql(app, """
            SELECT DISTINCT key FROM kpi_monthly_hours WHERE district_code = :d AND group_by = 'team'
              AND day >= :m0 AND day < :m1""", d=CODE, m0=b["m0"], m1=b["m1"])}
        assert spoiled & {k for k, (p50, _) in right.items() if p50 is not None}
        after, _ = hours(with_months)
        assert after.keys() == right.keys()
        for key, (p50, p90) in after.items():
            if key in spoiled:
                assert p50 > 4000 and p90 > 4000, (key, right[key], after[key])
            else:
                assert (p50, p90) == right[key]
        assert hours(days_only)[0] == right_days  # a period without a whole month reads only days
    finally:
        app.config["KPI_EXACT_PERCENTILE_ROWS"] = limit
        result = app.test_cli_runner().invoke(args=["kpis", "rebuild"])
        assert result.exit_code == 0, result.output
    app.config["KPI_EXACT_PERCENTILE_ROWS"] = 0
    try:
        assert hours(with_months)[0] == right and hours(days_only)[0] == right_days
    finally:
        app.config["KPI_EXACT_PERCENTILE_ROWS"] = limit
    assert sql(app, "SELECT count(*) FROM kpi_monthly_hours WHERE bucket = 900")[0][0] == 0


def test_the_hour_buckets_are_read_from_the_index_alone(app, world):
    """The percentiles' read takes every (day, key, bucket) row of its period: the count is in the unique
    index (migration 0021), so the read is an index-only scan (no heap page read for the pages that a
    vacuum has seen settled)."""
    from gridpatrol.extensions import db
    _compact(app)
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=60)
    # the days up to the next month's first day, the whole months within them from kpi_monthly_hours (0028)
    d1 = services._next_month(now.date())
    params = {"d": [CODE], "d0": start.date(), "d1": d1, "m0": services._next_month(start.date()), "m1": d1,
              "from": start, "to": now, "zone": app.config["TIMEZONE"]}
    read = "SELECT * FROM kpi_daily_hours_read('team', CAST(:d AS text[]), :d0, :d1, :m0, :m1, :from, :to, :zone)"
    with app.app_context():
        # the planner's choice on a few hundred rows is a sequential scan: only the index paths are left
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
        plan = [r[0] for r in db.session.execute(text("EXPLAIN (COSTS OFF) " + read), params)]
        buckets = db.session.execute(text(read), params).all()
        db.session.rollback()
    for table in ("kpi_daily_hours", "kpi_monthly_hours"):
        scans = [line for line in plan if f" on {table}" in line]
        assert scans and all(f"Index Only Scan using uq_{table} on {table}" in line for line in scans), plan
    facts = sql(app, """
        SELECT count(*) FROM kpi_facts WHERE kind = 't' AND district_code = :d AND handling_hours IS NOT NULL
          AND registered_at >= :from AND registered_at < :to""", d=CODE, **{k: params[k] for k in ("from", "to")})
    assert sum(n for _, _, n in buckets) == facts[0][0]


def test_months_less_their_days_count_the_facts_buckets(app, world):
    """Sums whole months less some of their days (migration 0029), at the period's end or its start,
    give each team's handling-hour buckets exactly as the facts registered in the period count them."""
    from gridpatrol.extensions import db
    _compact(app)
    tz = ZoneInfo(app.config["TIMEZONE"])
    now = datetime.now(timezone.utc)

    taken_at_end, start, to = _sum_bounds(app, _taken_away_period(app), now)
    assert taken_at_end["m0"] == taken_at_end["d0"] and taken_at_end["d1"] < taken_at_end["m1"], taken_at_end
    up_to_now = _sum_bounds(app, {"from": (now - timedelta(days=30)).isoformat()}, now)
    assert up_to_now[0]["m0"] < up_to_now[0]["m1"]
    # the start taken away: the last month before this one with hours kept on two days or more, from its
    # last such day up to now, is that month and the next ones whole less the days before that day
    month, day = sql(app, """
        SELECT date_trunc('month', day)::date, max(day) FROM kpi_daily_hours
        WHERE district_code = :d AND group_by = 'team' AND day < date_trunc('month', now() AT TIME ZONE :tz)
        GROUP BY 1 HAVING count(DISTINCT day) >= 2 ORDER BY 1 DESC LIMIT 1""", d=CODE, tz=str(tz))[0]
    end = services._next_month(now.astimezone(tz).date())
    taken_at_start = {"d0": day, "d1": end, "m0": month, "m1": end}
    for b, start, to in ((taken_at_end, start, to), up_to_now,
                         (taken_at_start, datetime.combine(day, time(0), tzinfo=tz), now)):
        params = {"d": [CODE], **b, "from": start, "to": to, "zone": str(tz)}
        with app.app_context():
            read = db.session.execute(text(
                "SELECT key, bucket, sum(n) FROM kpi_daily_hours_read('team', CAST(:d AS text[]), :d0, :d1, :m0, "
                ":m1, :from, :to, :zone) GROUP BY 1, 2 HAVING sum(n) <> 0"), params).all()
            taken = db.session.execute(text(
                "SELECT count(*) FROM kpi_daily_hours WHERE district_code = :c AND group_by = 'team' "
                "AND (day >= :m0 AND day < :d0 OR day >= :d1 AND day < :m1)"), {"c": CODE, **b}).scalar()
            db.session.rollback()
        facts = sql(app, """
            SELECT team_id::text, kpi_hours_bucket(handling_hours), count(*) FROM kpi_facts
            WHERE kind = 't' AND district_code = :d AND handling_hours IS NOT NULL
              AND registered_at >= :from AND registered_at < :to GROUP BY 1, 2""", d=CODE, **{"from": start, "to": to})
        assert facts and sorted(tuple(r) for r in read) == sorted(tuple(r) for r in facts), b
        assert taken > 0 or b is up_to_now[0], b


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"])
def test_the_sums_bounds_cover_the_periods_days_once(zone):
    """Whatever sum_bounds() picks, its months less or plus its days are the days [d0, d1) once each, d0
    and d1 the period's nearest local midnights (a period up to now: to its month's end, nothing being
    dated after now), and it reads no more rows than those days alone would."""
    tz = ZoneInfo(zone)
    rng = random.Random(zone)
    taken_away = {"start": 0, "end": 0}
    for _ in range(4000):
        as_of = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        start = as_of - timedelta(minutes=rng.randrange(1, 120 * 24 * 60))
        to = as_of if rng.random() < 0.5 else start + (as_of - start) * rng.random()
        for months in (True, False):
            b = services.sum_bounds(start, to, as_of, tz, months)
            if b is None:
                continue
            d0, d1, m0, m1 = b["d0"], b["d1"], b["m0"], b["m1"]
            counted = Counter()
            if m0 < m1:
                assert m0.day == 1 and m1.day == 1 and months
                day = m0
                while day < m1:
                    counted[day] += 1
                    day += timedelta(days=1)
            for a, z in ((d0, m0), (m1, d1)):
                day = min(a, z)
                while day < max(a, z):
                    counted[day] += 1 if a < z else -1
                    day += timedelta(days=1)
            covered = {day for day, n in counted.items() if n}
            assert set(counted.values()) <= {0, 1} and covered == {d0 + timedelta(days=i) for i in range((d1 - d0).days)}
            assert d0 == services.sum_bounds(start, to, as_of, tz, False)["d0"]
            if to < as_of:
                assert d1 == services.sum_bounds(start, to, as_of, tz, False)["d1"]
                read = abs((m0 - d0).days) + abs((d1 - m1).days) + services.MONTH_IN_DAYS * len(
                    {d.replace(day=1) for d in counted if m0 <= d < m1})
                assert read <= (d1 - d0).days
            taken_away["start"] += m0 < d0
            taken_away["end"] += d1 < m1 and to < as_of
    assert min(taken_away.values()) > 100, taken_away


def test_the_sums_statements_are_planned_once_and_the_facts_for_their_period(app, world):
    """The statements over the daily sums are planned once per connection for any values (planning the
    inlined SQL functions for each request's values took longer than running them); those over the
    facts are planned for their values, whose period's length picks their path."""
    sup = world["supervisor"]

    def planned_once(path, **query):
        """Whether the KPI read `path` asks for generic plans, and what it answers."""
        with sent_statements(app) as sent:
            body = _get(sup, path, **query)
        statements = [statement for statement, _ in sent]
        assert any("kpi_" in s for s in statements), statements  # a KPI statement was sent
        return any("force_generic_plan" in s for s in statements), body

    old = {"from": _periods()[3]["from"]}
    for group_by in DAILY_GROUPS:
        once, body = planned_once("/api/v1/kpis", group_by=group_by, **old)
        assert once and body["source"] == "rollup"
        assert planned_once("/api/v1/kpis/trend", group_by=group_by, interval="month", **old)[0]
    assert planned_once("/api/v1/kpis", group_by="grid")[0] is False  # the facts answer
    assert planned_once("/api/v1/kpis/trend", group_by="grid", interval="week")[0] is False
    as_of = datetime.now(timezone.utc).isoformat()
    assert planned_once("/api/v1/kpis", group_by="team", as_of=as_of)[0] is False  # the event log answers
