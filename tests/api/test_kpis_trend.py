"""KPI trends per week or month: each point is exactly GET /kpis for its period (same facts, same moment).

A district of its own holds cases made in early 2025 with the server's clock set back, each counted in
the local week and month of its registration:

| case | registered (Shanghai)   | path                                                     | lead team |
| c1   | Mon 2025-01-06 09:30    | dispatched, handled in time, verified: closed on time    | T         |
| c2   | Mon 2025-01-20 09:30    | handled, verification failed, handled again, closed      | T         |
| c5   | Mon 2025-02-03 09:30    | reported Fri 31 January, only registered                 | —         |
| c3   | Mon 2025-02-10 09:30    | dispatched, accepted, never handled: overdue             | U         |
| c4   | (rejected Wed 02-12)    | rejected                                                 | —         |
| c6   | Sat 2025-03-01 00:30    | (16:30 UTC on 28 February) handled late, closed           | U         |
"""
import json
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest

from helpers import PASSWORD, Api, block_geojson
from gridpatrol.core.db import clock_at

CODE, X0, Y0, D = "940001", 60.0, 30.0, 0.001


def local(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


@pytest.fixture(scope="module")
def world(app):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    client = app.test_client()
    with app.app_context():
        assert importer.import_grids(json.dumps(block_geojson(CODE, X0, Y0, 3, D)).encode(), "t.geojson").created == 9
        teams = {}
        for name in ("T", "U"):
            team = Team(name=f"trend team {name} {uuid.uuid4().hex[:6]}", kind="enforcement", agencies=["城管"],
                        area_codes=[CODE], grid_codes=[], category_codes=["0701"])
            db.session.add(team)
            db.session.flush()
            teams[name] = team.id
        db.session.commit()

    def user(*roles, team=None, scope=CODE):
        name = f"trend_{uuid.uuid4().hex[:10]}"
        with app.app_context():
            user_id = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles),
                                       scope=[scope], team_ids=[team] if team else []).id
            db.session.commit()
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
        api.id = user_id
        return api

    reporter, verifier = user("inspector"), user("inspector")
    dispatcher, supervisor = user("dispatcher"), user("supervisor")
    ht, hu = user("handler", team=teams["T"]), user("handler", team=teams["U"])
    handler_of = {"T": ht, "U": hu}

    def point(i):
        return X0 + (i % 3) * D + D / 2, Y0 - (i // 3) * D - D / 2

    def step(moment, fn, *args, **kw):
        with clock_at(local(moment)):
            return fn(*args, **kw)

    def report(moment, grid):
        lon, lat = point(grid)
        return step(moment, reporter.report, lon=lon, lat=lat, category_code="0701", urgency="B")["id"]

    def handle(moment, case_id, team):
        with clock_at(local(moment)):
            photo = handler_of[team].photo(case_id, "after")
            handler_of[team].act(case_id, "handle", {"note": "done", "photo_ids": [photo["id"]]})

    def verify(moment, case_id, grid, passed=True):
        with clock_at(local(moment)):
            photo = verifier.photo(case_id, "verification")
            if passed:
                lon, lat = point(grid)
                verifier.act(case_id, "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat,
                                                      "accuracy_m": 5})
            else:
                verifier.act(case_id, "verify_fail", {"reason": "not clean", "photo_ids": [photo["id"]]})

    c = {}
    c["c1"] = report("2025-01-06T09:00:00", 0)
    step("2025-01-06T09:30:00", dispatcher.act, c["c1"], "register", {})
    step("2025-01-06T09:40:00", dispatcher.act, c["c1"], "dispatch", {"team_id": teams["T"]})
    step("2025-01-06T09:50:00", ht.act, c["c1"], "accept", {})
    handle("2025-01-06T10:30:00", c["c1"], "T")
    verify("2025-01-06T11:00:00", c["c1"], 0)

    c["c2"] = report("2025-01-20T09:00:00", 1)
    step("2025-01-20T09:30:00", dispatcher.act, c["c2"], "register", {})
    step("2025-01-20T09:40:00", dispatcher.act, c["c2"], "dispatch", {"team_id": teams["T"]})
    step("2025-01-20T09:50:00", ht.act, c["c2"], "accept", {})
    handle("2025-01-20T10:30:00", c["c2"], "T")
    verify("2025-01-20T11:00:00", c["c2"], 1, passed=False)
    step("2025-01-20T11:10:00", ht.act, c["c2"], "accept", {})
    handle("2025-01-20T11:30:00", c["c2"], "T")
    verify("2025-01-20T11:50:00", c["c2"], 1)

    c["c5"] = report("2025-01-31T23:30:00", 2)
    step("2025-02-03T09:30:00", dispatcher.act, c["c5"], "register", {})

    c["c3"] = report("2025-02-10T09:00:00", 4)
    step("2025-02-10T09:30:00", dispatcher.act, c["c3"], "register", {})
    step("2025-02-10T09:40:00", dispatcher.act, c["c3"], "dispatch", {"team_id": teams["U"]})
    step("2025-02-10T09:50:00", hu.act, c["c3"], "accept", {})

    c["c4"] = report("2025-02-12T09:00:00", 5)
    step("2025-02-12T09:30:00", dispatcher.act, c["c4"], "reject", {"reason": "not a problem"})

    c["c6"] = report("2025-03-01T00:10:00", 6)
    step("2025-03-01T00:30:00", dispatcher.act, c["c6"], "register", {})
    step("2025-03-03T09:30:00", dispatcher.act, c["c6"], "dispatch", {"team_id": teams["U"]})
    step("2025-03-03T09:40:00", hu.act, c["c6"], "accept", {})
    handle("2025-03-04T17:00:00", c["c6"], "U")   # four working hours were up on Monday afternoon
    verify("2025-03-04T17:30:00", c["c6"], 6)

    as_of = datetime.now(timezone.utc)
    return {"teams": teams, "cases": c, "as_of": as_of, "supervisor": supervisor, "dispatcher": dispatcher,
            "reporter": reporter, "user": user}


def trend(api, expect=200, **query):
    r = api.get(f"/api/v1/kpis/trend?{urlencode(query)}")
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def kpi_rows(api, start, end, as_of, group_by):
    query = urlencode({"group_by": group_by, "from": start, "to": end, "as_of": as_of})
    r = api.get(f"/api/v1/kpis?{query}")
    assert r.status_code == 200, r.get_json()
    return {row["key"]: row for row in r.get_json()["rows"]}


POINT_KEYS = ("registered", "closed", "closure_rate", "on_time_rate", "rework_rate")
RANGE = {"from": "2025-01-01T00:00:00+08:00", "to": "2025-04-01T00:00:00+08:00"}


def points_by_key(body):
    return {s["key"]: [{k: p[k] for k in ("period_start", *POINT_KEYS)} for p in s["points"]] for s in body["series"]}


def point(start, registered=0, closed=0, closure=None, on_time=None, rework=None):
    return {"period_start": start, "registered": registered, "closed": closed, "closure_rate": closure,
            "on_time_rate": on_time, "rework_rate": rework}


def test_monthly_points_by_team(world):
    body = trend(world["supervisor"], group_by="team", interval="month", as_of=world["as_of"].isoformat(), **RANGE)
    assert (body["group_by"], body["interval"]) == ("team", "month")
    jan, feb, mar = "2025-01-01T00:00:00+08:00", "2025-02-01T00:00:00+08:00", "2025-03-01T00:00:00+08:00"
    t, u = str(world["teams"]["T"]), str(world["teams"]["U"])
    assert points_by_key(body) == {
        t: [point(jan, 2, 2, 1.0, 1.0, 0.5), point(feb), point(mar)],
        u: [point(jan), point(feb, 1, 0, 0.0, 0.0), point(mar, 1, 1, 1.0, 0.0, 0.0)],
        None: [point(jan), point(feb, 1, 0, 0.0), point(mar)],
    }
    labels = {s["key"]: s["label"] for s in body["series"]}
    assert labels[t].startswith("trend team T") and labels[u].startswith("trend team U") and labels[None] == "—"
    ends = [p["period_end"] for p in body["series"][0]["points"]]
    assert ends == [feb, mar, "2025-04-01T00:00:00+08:00"]


def test_weeks_start_on_local_mondays(world):
    body = trend(world["supervisor"], group_by="street", interval="week", as_of=world["as_of"].isoformat(), **RANGE)
    (series,) = body["series"]
    assert series["key"] == f"{CODE}001"
    starts = [p["period_start"] for p in series["points"]]
    # 1 January 2025 was a Wednesday: the first week began on Monday 30 December
    assert starts[0] == "2024-12-30T00:00:00+08:00" and starts[-1] == "2025-03-31T00:00:00+08:00"
    assert all(datetime.fromisoformat(s).weekday() == 0 for s in starts) and len(starts) == 14
    registered = {p["period_start"][:10]: p["registered"] for p in series["points"] if p["registered"]}
    # c6 was registered at 00:30 on Saturday 1 March in Shanghai (Friday 28 February in UTC): the week of 24 February
    assert registered == {"2025-01-06": 1, "2025-01-20": 1, "2025-02-03": 1, "2025-02-10": 1, "2025-02-24": 1}


@pytest.mark.parametrize("group_by", ["team", "grid", "street", "community", "category", "inspector"])
@pytest.mark.parametrize("interval", ["month", "week"])
def test_every_point_is_the_kpis_of_its_period(world, group_by, interval):
    api, as_of = world["dispatcher"], world["as_of"].isoformat()
    body = trend(api, group_by=group_by, interval=interval, as_of=as_of, **RANGE)
    assert body["series"]
    whole = kpi_rows(api, body["from"], body["to"], as_of, group_by)
    assert {s["key"] for s in body["series"]} == set(whole)
    for series in body["series"]:
        for p in series["points"]:
            rows = kpi_rows(api, p["period_start"], p["period_end"], as_of, group_by)
            row = rows.get(series["key"])
            if row is None:
                assert p["registered"] == p["closed"] == 0 and p["closure_rate"] is None, (series["key"], p)
            else:
                assert {k: p[k] for k in POINT_KEYS} == {k: row[k] for k in POINT_KEYS}, (series["key"], p)
        assert sum(p["registered"] for p in series["points"]) == whole[series["key"]]["registered"]


def test_without_from_the_twelve_periods_up_to_to(world):
    body = trend(world["supervisor"], group_by="team", interval="month", to="2025-03-15T00:00:00+08:00")
    starts = [p["period_start"] for p in body["series"][0]["points"]]
    assert len(starts) == 12 and starts[0] == "2024-04-01T00:00:00+08:00" and starts[-1] == "2025-03-01T00:00:00+08:00"
    assert body["from"] == "2024-04-01T00:00:00+08:00" and body["to"] == "2025-04-01T00:00:00+08:00"


def test_a_period_without_cases_has_no_series(world):
    body = trend(world["supervisor"], group_by="grid", interval="month", **{"from": "2020-01-01T00:00:00+08:00",
                                                                         "to": "2020-03-01T00:00:00+08:00"})
    assert body["series"] == []


def test_another_districts_supervisor_sees_none_of_it(world):
    outsider = world["user"]("supervisor", "dispatcher", scope="310199")
    for group_by in ("team", "grid", "street", "inspector"):
        body = trend(outsider, group_by=group_by, interval="month", as_of=world["as_of"].isoformat(), **RANGE)
        keys = {s["key"] for s in body["series"]}
        assert not keys & {str(world["teams"]["T"]), str(world["teams"]["U"]), f"{CODE}001",
                           str(world["reporter"].id)}, group_by
        assert not [k for k in keys if k and k.startswith(CODE)]
        assert sum(p["registered"] for s in body["series"] for p in s["points"]) == 0


def test_the_trend_is_for_supervisors_and_dispatchers(world):
    for roles in (("inspector",), ("handler",), ("admin",)):
        r = world["user"](*roles).get("/api/v1/kpis/trend?group_by=team&interval=month")
        assert r.status_code == 403 and r.mimetype == "application/problem+json", roles


def test_the_trend_needs_a_signed_in_user(anon):
    assert anon.get("/api/v1/kpis/trend").status_code == 401


@pytest.mark.parametrize("query, field", [
    ({"interval": "day"}, "interval"),
    ({"group_by": "nonsense"}, "group_by"),
    ({"from": "2025-03-01T00:00:00+08:00", "to": "2025-02-01T00:00:00+08:00"}, "from"),
    ({"from": "2025-03-01T00:00:00"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"interval": "week", "from": "1900-01-01T00:00:00+08:00", "to": "2025-01-01T00:00:00+08:00"}, "from"),
])
def test_bad_trend_queries_are_422(world, query, field):
    r = world["supervisor"].get(f"/api/v1/kpis/trend?{urlencode(query)}")
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"], r.get_json()


def test_the_openapi_document_describes_the_trend(app):
    from gridpatrol.kpis.schemas import TrendQuery

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/kpis/trend"]["get"]
    params = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
    assert set(params) == {f.data_key or n for n, f in TrendQuery().load_fields.items()}
    assert set(params["interval"]["schema"]["enum"]) == {"week", "month"}
    assert set(params["group_by"]["schema"]["enum"]) == {"team", "grid", "street", "community", "category",
                                                         "inspector"}
