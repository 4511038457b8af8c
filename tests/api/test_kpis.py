"""KPIs (综合评价): exact figures for cases taken through known paths, drill-down, as_of, CSV and XLSX.

One district of its own holds eight cases, each taken through a path of the closed loop:

| case | reporter | grid | category | path                                                        | lead team |
| c1   | i1       | 0    | 0701     | registered, dispatched, handled, verified: closed on time   | T         |
| c2   | i1       | 1    | 0701     | handled, verification failed (rework), handled, closed      | T         |
| c3   | i2       | 4    | 0101     | dispatched to T, returned by T, dispatched to U, accepted  | U         |
| c4   | i2       | 5    | 0701     | rejected                                                    | —         |
| c5   | i2       | 4    | 0701     | dispatched to T, accepted, handling deadline passed: overdue | T        |
| c6   | i1       | 2    | 0101     | dispatched to U, feedback after the deadline, closed: late  | U         |
| c7   | i2       | 4    | 0701     | only reported                                               | —         |
| c8   | i1       | 0    | 0701     | dispatched to U, feedback in time, deadline passed since     | U         |
"""
import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from helpers import FACTS_DIFFERENCE_SQL, PASSWORD, Api, block_geojson, libpq

RATE_KEYS = ("valid_report_rate", "closure_rate", "on_time_rate", "rework_rate", "accurate_dispatch_rate")
COUNT_KEYS = ("reports", "registered", "rejected", "dispatched", "returned", "handled", "reworked", "closed",
              "closed_on_time", "open_overdue")


def _sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


@pytest.fixture(scope="module")
def world(app):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    code, x0, y0, d = "960001", 80.0, 30.0, 0.001
    grids = [f"{code}001001{i:03d}" for i in range(1, 10)]

    def point(i):
        return x0 + (i % 3) * d + d / 2, y0 - (i // 3) * d - d / 2

    client = app.test_client()
    with app.app_context():
        result = importer.import_grids(json.dumps(block_geojson(code, x0, y0, 3, d)).encode(), "kpi.geojson")
        assert result.created == 9
        teams = {}
        for name in ("T", "U"):
            team = Team(name=f"KPI team {name} {uuid.uuid4().hex[:6]}", kind="enforcement", agencies=["城管"],
                        area_codes=[code], grid_codes=[], category_codes=["0701", "0101"])
            db.session.add(team)
            db.session.flush()
            teams[name] = team.id
        db.session.commit()

    def user(*roles, team=None, scope=code):
        name = f"kpi_{uuid.uuid4().hex[:10]}"
        with app.app_context():
            created = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles),
                                       scope=[scope], team_ids=[team] if team else [])
            db.session.commit()
            user_id = created.id
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
        api.id = user_id
        return api

    i1, i2, verifier = user("inspector"), user("inspector"), user("inspector")
    dispatcher, supervisor = user("dispatcher"), user("supervisor")
    ht, hu = user("handler", team=teams["T"]), user("handler", team=teams["U"])

    def report(reporter, grid, category="0701"):
        lon, lat = point(grid)
        return reporter.report(lon=lon, lat=lat, category_code=category)["id"]

    def dispatched(case_id, team):
        dispatcher.act(case_id, "register", {})
        dispatcher.act(case_id, "dispatch", {"team_id": teams[team]})

    def handle(case_id, handler):
        photo = handler.photo(case_id, "after")
        handler.act(case_id, "handle", {"note": "done", "photo_ids": [photo["id"]]})

    def verify(case_id, passed, grid):
        photo = verifier.photo(case_id, "verification")
        if passed:
            lon, lat = point(grid)
            verifier.act(case_id, "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat,
                                                  "accuracy_m": 5})
        else:
            verifier.act(case_id, "verify_fail", {"reason": "still dirty", "photo_ids": [photo["id"]]})

    start = datetime.now(timezone.utc)
    c = {}
    c["c1"] = report(i1, 0)
    dispatched(c["c1"], "T")
    ht.act(c["c1"], "accept", {})
    handle(c["c1"], ht)
    mid = datetime.now(timezone.utc)  # c1 handled, not yet verified; nothing else has happened
    verify(c["c1"], True, 0)

    c["c2"] = report(i1, 1)
    dispatched(c["c2"], "T")
    ht.act(c["c2"], "accept", {})
    handle(c["c2"], ht)
    verify(c["c2"], False, 1)
    ht.act(c["c2"], "accept", {})
    handle(c["c2"], ht)
    verify(c["c2"], True, 1)

    c["c3"] = report(i2, 4, "0101")
    dispatched(c["c3"], "T")
    ht.act(c["c3"], "return", {"reason_code": "not_competent", "note": "not ours"})
    dispatcher.act(c["c3"], "dispatch", {"team_id": teams["U"]})
    hu.act(c["c3"], "accept", {})

    c["c4"] = report(i2, 5)
    dispatcher.act(c["c4"], "reject", {"reason": "not a problem"})

    c["c5"] = report(i2, 4)
    dispatched(c["c5"], "T")
    ht.act(c["c5"], "accept", {})
    _sql(app, "UPDATE cases SET stage_started_at = now() - interval '3 hours', "
              "deadline_handle = now() - interval '1 hour', stage_deadline = now() - interval '1 hour' "
              "WHERE id = :id", id=c["c5"])

    c["c6"] = report(i1, 2, "0101")
    dispatched(c["c6"], "U")
    hu.act(c["c6"], "accept", {})
    handle(c["c6"], hu)
    _sql(app, "UPDATE cases SET deadline_handle = handled_at - interval '1 hour' WHERE id = :id", id=c["c6"])
    verify(c["c6"], True, 2)

    c["c7"] = report(i2, 4)

    c["c8"] = report(i1, 0)
    dispatched(c["c8"], "U")
    hu.act(c["c8"], "accept", {})
    handle(c["c8"], hu)
    _sql(app, "UPDATE cases SET deadline_handle = handled_at + interval '1 microsecond' WHERE id = :id", id=c["c8"])

    period = {"from": (start - timedelta(minutes=5)).isoformat(), "to": (start + timedelta(hours=2)).isoformat()}
    return {"code": code, "grids": grids, "teams": teams, "cases": c, "mid": mid, "period": period,
            "users": {"i1": i1, "i2": i2, "verifier": verifier, "dispatcher": dispatcher,
                      "supervisor": supervisor, "ht": ht, "hu": hu},
            "user": user}


def kpis(api, group_by, period, **extra):
    query = urlencode({"group_by": group_by, **period, **extra})
    r = api.get(f"/api/v1/kpis?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def by_key(body):
    return {row["key"]: row for row in body["rows"]}


def counts(row):
    return {k: row[k] for k in COUNT_KEYS}


def figures(reports, registered, rejected, dispatched, returned, handled, reworked, closed, on_time, overdue):
    return dict(zip(COUNT_KEYS, (reports, registered, rejected, dispatched, returned, handled, reworked, closed,
                                 on_time, overdue)))


def expected_rates(f):
    def ratio(a, b):
        return round(a / b, 4) if b else None
    return {"valid_report_rate": ratio(f["registered"], f["registered"] + f["rejected"]),
            "closure_rate": ratio(f["closed"], f["registered"]),
            "on_time_rate": ratio(f["closed_on_time"], f["closed"] + f["open_overdue"]),
            "rework_rate": ratio(f["reworked"], f["handled"]),
            "accurate_dispatch_rate": round(1 - f["returned"] / f["dispatched"], 4) if f["dispatched"] else None}


def expected(world, group_by):
    """The figures of the table in this module's docstring, per group key."""
    t, u = str(world["teams"]["T"]), str(world["teams"]["U"])
    users, g, code = world["users"], world["grids"], world["code"]
    return {
        "team": {t: figures(3, 3, 0, 4, 1, 2, 1, 2, 2, 1),
                 u: figures(3, 3, 0, 3, 0, 2, 0, 1, 0, 0),
                 None: figures(2, 0, 1, 0, 0, 0, 0, 0, 0, 0)},
        "inspector": {str(users["i1"].id): figures(4, 4, 0, 4, 0, 4, 1, 3, 2, 0),
                      str(users["i2"].id): figures(4, 2, 1, 2, 1, 0, 0, 0, 0, 1)},
        "grid": {g[0]: figures(2, 2, 0, 2, 0, 2, 0, 1, 1, 0),
                 g[1]: figures(1, 1, 0, 1, 0, 1, 1, 1, 1, 0),
                 g[2]: figures(1, 1, 0, 1, 0, 1, 0, 1, 0, 0),
                 g[4]: figures(3, 2, 0, 2, 1, 0, 0, 0, 0, 1),
                 g[5]: figures(1, 0, 1, 0, 0, 0, 0, 0, 0, 0)},
        "street": {f"{code}001": figures(8, 6, 1, 6, 1, 4, 1, 3, 2, 1)},
        "community": {f"{code}001001": figures(8, 6, 1, 6, 1, 4, 1, 3, 2, 1)},
        "category": {"0701": figures(6, 4, 1, 4, 0, 3, 1, 2, 2, 1),
                     "0101": figures(2, 2, 0, 2, 1, 1, 0, 1, 0, 0)},
    }[group_by]


GROUPS = ("team", "grid", "street", "community", "category", "inspector")


@pytest.mark.parametrize("group_by", GROUPS)
def test_exact_figures_and_rates(world, group_by):
    body = kpis(world["users"]["supervisor"], group_by, world["period"])
    assert body["group_by"] == group_by
    rows = by_key(body)
    want = expected(world, group_by)
    assert set(rows) == set(want)
    for key, figs in want.items():
        row = rows[key]
        assert counts(row) == figs, (group_by, key)
        assert {k: row[k] for k in RATE_KEYS} == expected_rates(figs), (group_by, key)
        assert row["label"]


def test_the_formulas_on_one_row(world):
    t = by_key(kpis(world["users"]["dispatcher"], "team", world["period"]))[str(world["teams"]["T"])]
    assert t["closure_rate"] == 0.6667            # 2 closed of 3 registered
    assert t["on_time_rate"] == 0.6667            # 2 on time of 2 closed + 1 open overdue
    assert t["rework_rate"] == 0.5                # 1 reworked of 2 handled
    assert t["accurate_dispatch_rate"] == 0.75    # 1 returned of 4 dispatched to the team
    assert t["valid_report_rate"] == 1.0
    street = by_key(kpis(world["users"]["dispatcher"], "street", world["period"]))[f"{world['code']}001"]
    assert street["valid_report_rate"] == 0.8571  # 6 registered of 6 + 1 rejected


def test_labels_name_the_groups(world):
    rows = by_key(kpis(world["users"]["supervisor"], "grid", world["period"]))
    assert rows[world["grids"][4]]["label"] == "g5"
    rows = by_key(kpis(world["users"]["supervisor"], "category", world["period"]))
    assert rows["0701"]["label"] != "0701"
    rows = by_key(kpis(world["users"]["supervisor"], "team", world["period"]))
    assert rows[str(world["teams"]["T"])]["label"].startswith("KPI team T")


def test_handling_time_is_given_for_groups_with_feedback(world):
    rows = by_key(kpis(world["users"]["supervisor"], "team", world["period"]))
    for key in (str(world["teams"]["T"]), str(world["teams"]["U"])):
        assert rows[key]["handling_hours_p50"] is not None and rows[key]["handling_hours_p50"] >= 0
        assert rows[key]["handling_hours_p90"] >= rows[key]["handling_hours_p50"]
    assert rows[None]["handling_hours_p50"] is None


def drill(api, world, kpi, group_by, key, **extra):
    query = {"kpi": kpi, "group_by": group_by, "key": "null" if key is None else key, "per_page": 500,
             **world["period"], **extra}
    r = api.get(f"/api/v1/cases?{urlencode(query)}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    ids = {c["id"] for c in body["items"]}
    assert body["total"] == len(ids)
    return ids


@pytest.mark.parametrize("group_by", GROUPS)
def test_every_figure_drills_down_to_exactly_its_cases(world, group_by):
    api = world["users"]["supervisor"]
    rows = by_key(kpis(api, group_by, world["period"]))
    for key, row in rows.items():
        for figure in COUNT_KEYS:
            ids = drill(api, world, figure, group_by, key)
            assert len(ids) == row[figure], (group_by, key, figure)


def test_drill_down_names_the_right_cases(world):
    api, c = world["users"]["dispatcher"], world["cases"]
    t, u = str(world["teams"]["T"]), str(world["teams"]["U"])
    assert drill(api, world, "returned", "team", t) == {c["c3"]}
    assert drill(api, world, "dispatched", "team", t) == {c["c1"], c["c2"], c["c3"], c["c5"]}
    assert drill(api, world, "dispatched", "team", u) == {c["c3"], c["c6"], c["c8"]}
    assert drill(api, world, "reworked", "team", t) == {c["c2"]}
    assert drill(api, world, "open_overdue", "team", t) == {c["c5"]}
    assert drill(api, world, "closed_on_time", "team", u) == set()
    assert drill(api, world, "closed", "team", u) == {c["c6"]}
    assert drill(api, world, "rejected", "team", None) == {c["c4"]}
    assert drill(api, world, "reports", "grid", world["grids"][4]) == {c["c3"], c["c5"], c["c7"]}
    assert drill(api, world, "closed", "street", f"{world['code']}001") == {c["c1"], c["c2"], c["c6"]}


def test_as_of_a_past_moment_excludes_later_events(world):
    api = world["users"]["supervisor"]
    rows = by_key(kpis(api, "team", world["period"], as_of=world["mid"].isoformat()))
    assert set(rows) == {str(world["teams"]["T"])}
    assert counts(rows[str(world["teams"]["T"])]) == figures(1, 1, 0, 1, 0, 1, 0, 0, 0, 0)
    ids = drill(api, world, "handled", "team", str(world["teams"]["T"]), as_of=world["mid"].isoformat())
    assert ids == {world["cases"]["c1"]}
    assert drill(api, world, "closed", "team", str(world["teams"]["T"]), as_of=world["mid"].isoformat()) == set()


def test_a_period_without_registrations_has_no_rows(world):
    api = world["users"]["supervisor"]
    body = kpis(api, "grid", {"from": "2020-01-01T00:00:00+08:00", "to": "2020-02-01T00:00:00+08:00"})
    assert body["rows"] == []


def test_csv_gives_the_same_rows(world):
    api = world["users"]["supervisor"]
    json_rows = kpis(api, "grid", world["period"])["rows"]
    r = api.get(f"/api/v1/kpis?{urlencode({'group_by': 'grid', **world['period']})}", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    reader = csv.DictReader(io.StringIO(r.data.decode("utf-8")))
    assert {"key", "label", *COUNT_KEYS, *RATE_KEYS} <= set(reader.fieldnames)
    csv_rows = list(reader)
    assert len(csv_rows) == len(json_rows)
    for got, want in zip(csv_rows, json_rows):
        for name in reader.fieldnames:
            value = want[name]
            assert got[name] == ("" if value is None else str(value)), name


def test_xlsx_export_gives_the_same_rows(world):
    from openpyxl import load_workbook

    api = world["users"]["supervisor"]
    json_rows = kpis(api, "team", world["period"])["rows"]
    r = api.get(f"/api/v1/kpis/export.xlsx?{urlencode({'group_by': 'team', **world['period']})}")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(r.data))
    sheet = book.active
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert {"key", "label", *COUNT_KEYS, *RATE_KEYS} <= set(header)
    assert len(rows) == len(json_rows)
    for got, want in zip(rows, json_rows):
        got = dict(zip(header, got))
        for name in header:
            assert got[name] == want[name], name
    # the answer's other fields on a sheet of their own: what the rows are
    about = dict(book["About"].iter_rows(values_only=True))
    answer = kpis(api, "team", world["period"])
    assert about.keys() == {"group_by", "area", "from", "to", "as_of", "source", "percentiles", "hours_recounting"}
    assert {k: v for k, v in about.items() if k != "as_of"} == {k: answer[k] for k in about if k != "as_of"}
    assert about["from"] == world["period"]["from"] and isinstance(about["hours_recounting"], bool)
    assert datetime.fromisoformat(about["as_of"]) <= datetime.fromisoformat(answer["as_of"])  # as of its moment


def test_kpis_are_for_supervisors_and_dispatchers(world):
    users = world["users"]
    for name in ("i1", "ht"):
        assert users[name].get("/api/v1/kpis?group_by=team").status_code == 403
    admin = world["user"]("admin")
    assert admin.get("/api/v1/kpis?group_by=team").status_code == 403
    assert users["dispatcher"].get("/api/v1/kpis/export.xlsx?group_by=team").status_code == 403
    assert users["i1"].get("/api/v1/kpis/export.xlsx?group_by=team").status_code == 403


def test_another_districts_supervisor_sees_none_of_these_rows(world):
    # a district no other test writes cases in (categories are the same everywhere: another district's
    # cases of this period would share this one's category keys)
    outsider = world["user"]("supervisor", "dispatcher", scope="319998")
    for group_by in GROUPS:
        rows = by_key(kpis(outsider, group_by, world["period"]))
        assert not set(rows) & set(expected(world, group_by)) - {None}, group_by
        if None in rows:
            assert rows[None]["rejected"] == 0 or world["cases"]["c4"] not in drill(
                outsider, world, "rejected", group_by, None)
    assert drill(outsider, world, "reports", "street", f"{world['code']}001") == set()
    r = outsider.get(f"/api/v1/kpis/export.xlsx?{urlencode({'group_by': 'grid', **world['period']})}")
    assert world["grids"][0] not in r.data.decode("latin-1")


@pytest.mark.parametrize("query", ["group_by=nonsense", "group_by=team&from=2026-01-02T00:00:00%2B08:00&"
                                   "to=2026-01-01T00:00:00%2B08:00", "group_by=team&from=yesterday",
                                   "group_by=team&as_of=2026-01-01T00:00:00"])
def test_bad_kpi_queries_are_422(world, query):
    r = world["users"]["supervisor"].get(f"/api/v1/kpis?{query}")
    assert r.status_code == 422, r.get_json()


def test_drill_down_finds_a_case_reported_before_the_period_and_registered_in_it(app, make_user, district):
    inspector = make_user("inspector", scope=[district["code"]])
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    case = inspector.report(lon=district["point"](0)[0], lat=district["point"](0)[1])
    _sql(app, "UPDATE cases SET reported_at = now() - interval '2 days' WHERE id = :id", id=case["id"])
    dispatcher.act(case["id"], "register", {})
    now = datetime.now(timezone.utc)
    period = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    row = by_key(kpis(dispatcher, "grid", period))[district["grids"][0]]
    assert (row["reports"], row["registered"]) == (0, 1)
    world = {"period": period}
    assert drill(dispatcher, world, "registered", "grid", district["grids"][0]) == {case["id"]}


@pytest.mark.parametrize("query, field", [
    ("/api/v1/kpis?as_of=0001-01-01T00:00:00%2B14:00", "as_of"),
    ("/api/v1/cases?kpi=reports&as_of=0001-01-01T00:00:00%2B14:00", "as_of"),
    ("/api/v1/kpis/trend?to=0001-01-02T00:00:00%2B00:00", "to"),
])
def test_periods_beyond_the_calendar_are_refused_by_name(make_user, query, field):
    supervisor = make_user("supervisor")
    r = supervisor.get(query)
    assert r.status_code == 422, (r.status_code, r.get_json())
    assert field in r.get_json()["errors"]


@pytest.mark.parametrize("to, expected_from", [
    # the day of `to` is the last of the 30 (at midnight, the day before it is)
    ("2026-03-31T15:20:00+08:00", "2026-03-02T00:00:00+08:00"),
    ("2026-03-31T00:00:00+08:00", "2026-03-01T00:00:00+08:00"),
    ("2026-03-31T20:00:00+00:00", "2026-03-03T00:00:00+08:00"),  # 04:00 on the 1st of April in Shanghai
])
def test_the_default_period_is_the_thirty_local_days_ending_with_to(make_user, to, expected_from):
    supervisor = make_user("supervisor")
    body = supervisor.get("/api/v1/kpis?" + urlencode({"group_by": "team", "to": to})).get_json()
    assert (body["from"], body["to"]) == (expected_from, datetime.fromisoformat(to).isoformat())


def test_the_default_period_up_to_now_starts_29_local_days_before_today(make_user):
    from zoneinfo import ZoneInfo
    supervisor = make_user("supervisor")
    body = supervisor.get("/api/v1/kpis?group_by=team").get_json()
    as_of = datetime.fromisoformat(body["as_of"])
    today = as_of.astimezone(ZoneInfo("Asia/Shanghai")).date()
    start = datetime.fromisoformat(body["from"])
    assert (start.date(), start.time(), start.utcoffset()) == (today - timedelta(days=29), datetime.min.time(),
                                                              timedelta(hours=8))
    assert body["to"] == body["as_of"]


# ------------------------------------------------------------------ the rollup
# KPIs asked without `as_of` come from the per-case facts the event log keeps current (`kpi_facts`,
# migration 0009: `source: rollup`); with an `as_of` they are worked out from the event log (`source:
# events`). Asking the second with the first's `as_of` must give the same answer, row for row, for
# every grouping, the trend and every figure's drill-down; a figure read right after an action counts it.
def _rows_both_ways(api, group_by, period):
    kept = kpis(api, group_by, period)
    raw = kpis(api, group_by, period, as_of=kept["as_of"])
    assert (kept["source"], raw["source"]) == ("rollup", "events")
    return kept, raw


@pytest.mark.parametrize("group_by", GROUPS)
def test_kept_facts_give_the_event_logs_figures(world, group_by):
    api = world["users"]["supervisor"]
    for period in ({}, world["period"]):
        kept, raw = _rows_both_ways(api, group_by, period)
        assert kept["rows"], (group_by, period)
        assert (kept["from"], kept["to"]) == (raw["from"], raw["to"])
        assert kept["rows"] == raw["rows"], (group_by, period)


@pytest.mark.parametrize("group_by", ["team", "category", "street"])
def test_kept_facts_give_the_event_logs_trend(world, group_by):
    api = world["users"]["supervisor"]
    query = {"group_by": group_by, "interval": "week", "from": world["period"]["from"]}
    kept = api.get(f"/api/v1/kpis/trend?{urlencode(query)}").get_json()
    raw = api.get(f"/api/v1/kpis/trend?{urlencode({**query, 'as_of': kept['as_of']})}").get_json()
    assert (kept["source"], raw["source"]) == ("rollup", "events")
    assert sum(p["registered"] for s in kept["series"] for p in s["points"]) > 0
    assert kept["series"] == raw["series"]


@pytest.mark.parametrize("group_by", ["team", "grid", "inspector"])
def test_every_drill_down_is_the_same_from_the_kept_facts(world, group_by):
    api = world["users"]["dispatcher"]
    kept, _ = _rows_both_ways(api, group_by, world["period"])
    for key in by_key(kept):
        for figure in COUNT_KEYS:
            query = {"kpi": figure, "group_by": group_by, "key": "null" if key is None else key, "per_page": 500,
                     **world["period"]}
            live = api.get(f"/api/v1/cases?{urlencode(query)}").get_json()
            past = api.get(f"/api/v1/cases?{urlencode({**query, 'as_of': kept['as_of']})}").get_json()
            assert [c["id"] for c in live["items"]] == [c["id"] for c in past["items"]], (key, figure)
            assert live["total"] == by_key(kept)[key][figure]


def _difference(app) -> tuple[int, int]:
    """(rows kept but not worked out again, rows worked out again but not kept), over every case."""
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text(FACTS_DIFFERENCE_SQL)).one()


def test_the_kept_facts_are_the_event_logs_facts_for_every_case(app, world):
    from gridpatrol.extensions import db
    with app.app_context():
        kept = db.session.execute(text("SELECT count(*) FROM kpi_facts WHERE case_id = ANY(:ids)"),
                                  {"ids": list(world["cases"].values())}).scalar()
    # a case row per case and a row per team dispatched (or one without a team): c3 went to two teams
    assert kept == 2 * len(world["cases"]) + 1
    assert _difference(app) == (0, 0)


def test_rebuild_gives_back_facts_lost_or_spoiled(app, world):
    from gridpatrol.extensions import db
    c = world["cases"]
    with app.app_context():
        db.session.execute(text("DELETE FROM kpi_facts WHERE case_id = :id"), {"id": c["c1"]})
        db.session.execute(text("UPDATE kpi_facts SET closed = NOT closed WHERE case_id = :id"), {"id": c["c2"]})
        db.session.commit()
    assert _difference(app) == (2, 4)  # c2's two rows spoiled; c1's two rows and c2's right ones missing
    result = app.test_cli_runner().invoke(args=["kpis", "rebuild", "--batch", "1000"])
    assert result.exit_code == 0, result.output
    assert "fact rows for" in result.output
    assert _difference(app) == (0, 0)


def test_a_rebuild_shared_by_connections_gives_back_every_fact(app, world):
    from gridpatrol.extensions import db
    with app.app_context():
        kept, top = db.session.execute(
            text("SELECT (SELECT count(*) FROM kpi_facts), (SELECT max(id) FROM cases)")).one()
        db.session.execute(text("DELETE FROM kpi_facts"))
        db.session.commit()
    assert _difference(app) == (0, kept)
    # ten batches or so, so each of the three connections has several to work out
    batch = str(max(1, top // 9))
    result = app.test_cli_runner().invoke(args=["kpis", "rebuild", "--batch", batch, "--jobs", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{kept} fact rows for ")
    assert _difference(app) == (0, 0)


def test_a_rebuild_whose_batch_fails_says_so_and_loses_nothing(app, world, app_database_url):
    import psycopg
    from sqlalchemy.exc import OperationalError

    from gridpatrol import create_app
    victim = max(world["cases"].values())
    # the same database, its connections giving up on a lock after 200 ms instead of waiting
    impatient = create_app({"SQLALCHEMY_DATABASE_URI": app_database_url, "TESTING": True,
                            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c lock_timeout=200"}}})
    assert _difference(app) == (0, 0)
    with psycopg.connect(libpq(app_database_url)) as holder:
        # a case held as a workflow action holds it while it writes: the rebuild's batch cannot share it
        holder.execute("SELECT 1 FROM cases WHERE id = %s FOR UPDATE", (victim,))
        result = impatient.test_cli_runner().invoke(args=["kpis", "rebuild", "--batch", "1000", "--jobs", "2"])
        holder.rollback()
    assert result.exit_code != 0
    assert "fact rows" not in result.output
    assert isinstance(result.exception, OperationalError) and "lock" in str(result.exception)
    assert _difference(app) == (0, 0)  # the failed batch rolled back: its cases keep their facts
    from gridpatrol.extensions import db
    with impatient.app_context():
        db.engine.dispose()


def test_a_closure_counts_in_the_very_next_read(make_user, make_team, district):
    team = make_team(area_codes=[district["code"]], category_codes=["0701"])
    inspector = make_user("inspector", scope=[district["code"]])
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    handler = make_user("handler", scope=[district["code"]], teams=[team])
    verifier = make_user("inspector", scope=[district["code"]])
    supervisor = make_user("supervisor", scope=[district["code"]])
    lon, lat = district["point"](0)
    case = inspector.report(lon=lon, lat=lat, category_code="0701")["id"]
    dispatcher.act(case, "register", {})
    dispatcher.act(case, "dispatch", {"team_id": team})
    handler.act(case, "accept", {})
    photo = handler.photo(case, "after")
    handler.act(case, "handle", {"note": "done", "photo_ids": [photo["id"]]})
    before = by_key(kpis(supervisor, "team", {}))[str(team)]
    assert (before["handled"], before["closed"]) == (1, 0)
    photo = verifier.photo(case, "verification")
    verifier.act(case, "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat, "accuracy_m": 5})
    after = kpis(supervisor, "team", {})
    assert after["source"] == "rollup"
    assert (by_key(after)[str(team)]["closed"], by_key(after)[str(team)]["closure_rate"]) == (1, 1.0)
