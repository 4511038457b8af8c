"""KPIs per inspector: reports and their validity, verifications made by the deadline then in force, and
the patrol coverage of their responsibility grids, for a period, within the caller's scope.

A district of its own, the server's clock set back to the week of Monday 5 May 2025 (working hours
09–12 and 13–18; verification within two working hours of the feedback). The period is Mon 5 to Wed 7
May (three days). Grids 0–2 are i1's responsibility, grid 3 is i2's; i3 has none and did nothing.

| case | reporter | what                                                                                   |
| r1   | i1       | handled Mon 10:00 (verify by 12:00); suspended 10:30–11:30 (by 14:00); i2 fails it 12:30: |
|      |          | on time; handled 14:00 (by 16:00); i2 passes it 17:30: late                             |
| r2   | i1       | rejected                                                                                |
| r3   | i1       | only reported                                                                           |
| r4   | i2       | handled Tue 09:30 (by 11:30); i1 passes it 11:00: on time                               |
| r5   | i1       | handled Wed 09:00 (by 11:00); i2 fails it 12:00: late; handled 13:00; i2 passes 14:00   |
| r6   | i2       | handled Wed 16:00; i1 passes it Thu 09:30, after the period                              |

Patrols: i1 walks grids 0→1 on Monday, grid 0 on Tuesday, grid 2 on Thursday (after the period);
i2 walks grid 3 on Monday and Wednesday, and grid 2 (i1's) on Wednesday.
"""
import json
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest

from helpers import PASSWORD, Api, block_geojson
from gridpatrol.core.db import clock_at

CODE, X0, Y0, D = "940002", 61.0, 30.0, 0.001
PERIOD = {"from": "2025-05-05T00:00:00+08:00", "to": "2025-05-08T00:00:00+08:00"}


def local(text: str) -> datetime:
    return datetime.fromisoformat(f"2025-05-{text}:00+08:00")


def point(i):
    return X0 + (i % 3) * D + D / 2, Y0 - (i // 3) * D - D / 2


@pytest.fixture(scope="module")
def world(app):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    client = app.test_client()
    grids = [f"{CODE}001001{i:03d}" for i in range(1, 10)]
    with app.app_context():
        assert importer.import_grids(json.dumps(block_geojson(CODE, X0, Y0, 3, D)).encode(), "i.geojson").created == 9
        team = Team(name=f"inspectors team {uuid.uuid4().hex[:6]}", kind="enforcement", agencies=["城管"],
                    area_codes=[CODE], grid_codes=[], category_codes=["0701"])
        db.session.add(team)
        db.session.commit()
        team_id = team.id

    def user(*roles, team=None, scope=CODE, grid_codes=()):
        name = f"insp_{uuid.uuid4().hex[:10]}"
        with app.app_context():
            user_id = auth.create_user(username=name, password=PASSWORD, display_name=f"巡查员 {name}",
                                       roles=list(roles), scope=[scope], team_ids=[team] if team else [],
                                       grid_codes=list(grid_codes)).id
            db.session.commit()
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
        api.id, api.name = user_id, f"巡查员 {name}"
        return api

    i1 = user("inspector", grid_codes=grids[:3])
    i2 = user("inspector", grid_codes=[grids[3]])
    i3 = user("inspector")
    dispatcher, supervisor, handler = user("dispatcher"), user("supervisor"), user("handler", team=team_id)

    def at(moment, fn, *args, **kw):
        with clock_at(local(moment)):
            return fn(*args, **kw)

    def report(moment, who, grid):
        lon, lat = point(grid)
        return at(moment, who.report, lon=lon, lat=lat, category_code="0701", urgency="B")["id"]

    def to_handling(moment, case_id):
        with clock_at(local(moment)):
            dispatcher.act(case_id, "register", {})
            dispatcher.act(case_id, "dispatch", {"team_id": team_id})
            handler.act(case_id, "accept", {})

    def handle(moment, case_id):
        with clock_at(local(moment)):
            photo = handler.photo(case_id, "after")
            if handler.case(case_id)["status"] == "dispatched":
                handler.act(case_id, "accept", {})
            handler.act(case_id, "handle", {"note": "done", "photo_ids": [photo["id"]]})

    def verify(moment, who, case_id, grid, passed):
        with clock_at(local(moment)):
            photo = who.photo(case_id, "verification")
            if passed:
                lon, lat = point(grid)
                who.act(case_id, "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat, "accuracy_m": 5})
            else:
                who.act(case_id, "verify_fail", {"reason": "still there", "photo_ids": [photo["id"]]})

    def walk(moment, who, *grids_walked):
        with clock_at(local(moment)):
            patrol = who.post("/api/v1/patrols", json={}).get_json()
            points = [{"lon": point(g)[0], "lat": point(g)[1], "accuracy_m": 5,
                       "recorded_at": (local(moment) + timedelta(minutes=i)).isoformat()}
                      for i, g in enumerate(grids_walked)]
            assert who.post(f"/api/v1/patrols/{patrol['id']}/points", json={"seq": 1, "points": points}
                            ).status_code == 200
            assert who.post(f"/api/v1/patrols/{patrol['id']}/end", json={}).status_code == 200

    r = {}
    r["r1"] = report("05T09:00", i1, 4)
    to_handling("05T09:20", r["r1"])
    handle("05T10:00", r["r1"])
    at("05T10:30", dispatcher.act, r["r1"], "suspend", {"reason": "waiting for the owner"})
    at("05T11:30", dispatcher.act, r["r1"], "resume", {})
    verify("05T12:30", i2, r["r1"], 4, passed=False)
    handle("05T14:00", r["r1"])
    verify("05T17:30", i2, r["r1"], 4, passed=True)

    r["r2"] = report("05T09:10", i1, 5)
    at("05T09:40", dispatcher.act, r["r2"], "reject", {"reason": "not a problem"})
    r["r3"] = report("06T15:00", i1, 4)

    r["r4"] = report("06T08:30", i2, 6)
    to_handling("06T09:00", r["r4"])
    handle("06T09:30", r["r4"])
    verify("06T11:00", i1, r["r4"], 6, passed=True)

    r["r5"] = report("07T08:00", i1, 7)
    to_handling("07T08:30", r["r5"])
    handle("07T09:00", r["r5"])
    verify("07T12:00", i2, r["r5"], 7, passed=False)
    handle("07T13:00", r["r5"])
    verify("07T14:00", i2, r["r5"], 7, passed=True)

    r["r6"] = report("07T10:00", i2, 8)
    to_handling("07T10:30", r["r6"])
    handle("07T16:00", r["r6"])
    verify("08T09:30", i1, r["r6"], 8, passed=True)

    walk("05T08:00", i1, 0, 1)
    walk("06T08:00", i1, 0)
    walk("08T08:00", i1, 2)
    walk("05T15:00", i2, 3)
    walk("07T15:00", i2, 3)
    walk("07T16:00", i2, 2)

    return {"i1": i1, "i2": i2, "i3": i3, "dispatcher": dispatcher, "supervisor": supervisor, "handler": handler,
            "cases": r, "grids": grids, "user": user}


def inspectors(api, expect=200, **query):
    r = api.get(f"/api/v1/kpis/inspectors?{urlencode(query)}")
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def by_key(body):
    return {row["key"]: row for row in body["rows"]}


def test_the_figures_of_each_inspector(world):
    body = inspectors(world["supervisor"], **PERIOD)
    assert body["days"] == 3
    rows = by_key(body)
    i1, i2, i3 = (world[n] for n in ("i1", "i2", "i3"))
    assert set(rows) == {str(i1.id), str(i2.id), str(i3.id)}
    assert rows[str(i1.id)] == {
        "key": str(i1.id), "label": i1.name, "reports": 4, "registered": 2, "rejected": 1,
        "valid_report_rate": 0.6667, "verifications": 1, "verifications_on_time": 1,
        "verification_timely_rate": 1.0, "responsibility_grids": 3, "coverage_rate": 0.3333}
    # r1: the failed verification was in time only because the suspension moved its deadline; its pass was
    # late; r5: the failed verification was late against its own deadline, not the later feedback's
    assert rows[str(i2.id)] == {
        "key": str(i2.id), "label": i2.name, "reports": 2, "registered": 2, "rejected": 0,
        "valid_report_rate": 1.0, "verifications": 4, "verifications_on_time": 2,
        "verification_timely_rate": 0.5, "responsibility_grids": 1, "coverage_rate": 0.6667}
    assert rows[str(i3.id)] == {
        "key": str(i3.id), "label": i3.name, "reports": 0, "registered": 0, "rejected": 0,
        "valid_report_rate": None, "verifications": 0, "verifications_on_time": 0,
        "verification_timely_rate": None, "responsibility_grids": 0, "coverage_rate": None}


def test_reports_are_the_kpis_by_inspector(world):
    api = world["dispatcher"]
    rows = by_key(inspectors(api, **PERIOD))
    kpis = api.get(f"/api/v1/kpis?{urlencode({'group_by': 'inspector', **PERIOD})}").get_json()["rows"]
    assert kpis
    for row in kpis:
        assert {k: rows[row["key"]][k] for k in ("reports", "registered", "rejected", "valid_report_rate")} == {
            k: row[k] for k in ("reports", "registered", "rejected", "valid_report_rate")}


def test_a_shorter_period_counts_only_its_own(world):
    tuesday = {"from": "2025-05-06T00:00:00+08:00", "to": "2025-05-07T00:00:00+08:00"}
    body = inspectors(world["supervisor"], **tuesday)
    assert body["days"] == 1
    rows = by_key(body)
    i1, i2 = rows[str(world["i1"].id)], rows[str(world["i2"].id)]
    assert (i1["reports"], i1["verifications"], i1["verifications_on_time"]) == (1, 1, 1)   # r3; r4's pass
    assert i1["coverage_rate"] == 0.3333      # grid 0 of 0–2
    assert (i2["reports"], i2["registered"], i2["verifications"]) == (1, 1, 0)              # r4
    assert i2["coverage_rate"] == 0.0
    thursday = by_key(inspectors(world["supervisor"], **{"from": "2025-05-08T00:00:00+08:00",
                                                         "to": "2025-05-09T00:00:00+08:00"}))
    assert thursday[str(world["i1"].id)]["verifications"] == 1          # r6, after the main period
    assert thursday[str(world["i1"].id)]["coverage_rate"] == 0.3333     # grid 2


def test_a_narrower_scope_counts_only_its_grids_and_cases(world):
    one_grid = world["user"]("supervisor", scope=world["grids"][0])
    rows = by_key(inspectors(one_grid, **PERIOD))
    # i1 is responsible for grid 0 (in scope); i2 and i3 are neither in it nor acted on a case in it
    assert set(rows) == {str(world["i1"].id)}
    i1 = rows[str(world["i1"].id)]
    assert i1["responsibility_grids"] == 1 and i1["coverage_rate"] == 0.6667   # grid 0 on Monday and Tuesday
    assert (i1["reports"], i1["verifications"]) == (0, 0)                      # no case lies in grid 0


def test_another_districts_supervisor_sees_none_of_them(world):
    outsider = world["user"]("supervisor", "dispatcher", scope="310199")
    keys = set(by_key(inspectors(outsider, **PERIOD)))
    assert not keys & {str(world[n].id) for n in ("i1", "i2", "i3")}


def test_inspector_kpis_are_for_supervisors_and_dispatchers(world):
    for roles in (("inspector",), ("handler",), ("admin",)):
        r = world["user"](*roles, scope="310199").get("/api/v1/kpis/inspectors")
        assert r.status_code == 403 and r.mimetype == "application/problem+json", roles


def test_inspector_kpis_need_a_signed_in_user(anon):
    assert anon.get("/api/v1/kpis/inspectors").status_code == 401


@pytest.mark.parametrize("query, field", [
    ({"from": "2025-05-08T00:00:00+08:00", "to": "2025-05-05T00:00:00+08:00"}, "from"),
    ({"from": "2025-05-05T00:00:00"}, "from"),
    ({"to": "soon"}, "to"),
])
def test_bad_queries_are_422(world, query, field):
    r = world["supervisor"].get(f"/api/v1/kpis/inspectors?{urlencode(query)}")
    assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()


def test_the_openapi_document_describes_the_inspector_kpis(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/kpis/inspectors"]["get"]
    assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == {"from", "to"}
    out = spec["components"]["schemas"][op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                                        .rsplit("/", 1)[1]]
    row = spec["components"]["schemas"][out["properties"]["rows"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"key", "label", "reports", "registered", "rejected", "valid_report_rate", "verifications",
            "verifications_on_time", "verification_timely_rate", "responsibility_grids",
            "coverage_rate"} <= set(row["properties"])


# ------------------------------------------------------------------ drill-down: the records behind each figure

def drill(api, inspector_id, what, expect=200, **query):
    r = api.get(f"/api/v1/kpis/inspectors/{inspector_id}/{what}?{urlencode(query)}")
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def test_every_figure_drills_to_a_list_as_long_as_the_figure(world):
    api = world["supervisor"]
    body = inspectors(api, **PERIOD)
    moment = {**PERIOD, "as_of": body["as_of"]}
    for row in body["rows"]:
        key = row["key"]
        every = drill(api, key, "verifications", **moment)
        assert every["total"] == len(every["items"]) == row["verifications"], key
        on_time = drill(api, key, "verifications", on_time="true", **moment)
        late = drill(api, key, "verifications", on_time="false", **moment)
        assert on_time["total"] == row["verifications_on_time"], key
        assert on_time["total"] + late["total"] == row["verifications"], key
        assert all(v["on_time"] for v in on_time["items"]) and not any(v["on_time"] for v in late["items"])
        grids = drill(api, key, "coverage", **moment)
        assert grids["responsibility_grids"] == len(grids["grids"]) == row["responsibility_grids"], key
        assert grids["visited_grid_days"] == sum(len(g["visited_days"]) for g in grids["grids"]), key
        assert grids["days"] == body["days"] and grids["coverage_rate"] == row["coverage_rate"], key
        # the reports side drills through GET /cases?kpi=… with the same period and moment
        for figure in ("reports", "registered", "rejected"):
            r = api.get(f"/api/v1/cases?{urlencode({'kpi': figure, 'group_by': 'inspector', 'key': key, **moment})}")
            assert r.status_code == 200 and r.get_json()["total"] == row[figure], (key, figure)


def test_the_verifications_behind_the_timely_rate(world):
    r1, r5 = world["cases"]["r1"], world["cases"]["r5"]
    body = drill(world["dispatcher"], world["i2"].id, "verifications", **PERIOD)
    assert body["label"] == world["i2"].name
    assert [(v["case_id"], v["action"], v["on_time"]) for v in body["items"]] == [
        (r1, "verify_fail", True), (r1, "verify_pass", False), (r5, "verify_fail", False), (r5, "verify_pass", True)]
    first = body["items"][0]
    # the deadline then in force: two working hours from the 10:00 feedback, moved an hour by the suspension
    assert datetime.fromisoformat(first["deadline"]) == local("05T14:00")
    assert datetime.fromisoformat(first["at"]) == local("05T12:30")
    assert datetime.fromisoformat(first["handled_at"]) == local("05T10:00")
    assert {v["number"] for v in body["items"]} == {world["i2"].case(r1)["number"], world["i2"].case(r5)["number"]}
    mine = drill(world["dispatcher"], world["i1"].id, "verifications", **PERIOD)
    assert [(v["case_id"], v["action"], v["on_time"]) for v in mine["items"]] == [
        (world["cases"]["r4"], "verify_pass", True)]
    nobody = drill(world["dispatcher"], world["i3"].id, "verifications", **PERIOD)
    assert (nobody["label"], nobody["total"], nobody["items"]) == (world["i3"].name, 0, [])


def test_the_grid_days_behind_the_coverage(world):
    body = drill(world["supervisor"], world["i1"].id, "coverage", **PERIOD)
    g = world["grids"]
    assert (body["days"], body["first_day"], body["last_day"]) == (3, "2025-05-05", "2025-05-07")
    assert [(x["code"], x["visited_days"]) for x in body["grids"]] == [
        (g[0], ["2025-05-05", "2025-05-06"]), (g[1], ["2025-05-05"]), (g[2], [])]   # grid 2 only on Thursday
    assert len(body["grids"][0]["patrol_ids"]) == 2 and body["grids"][2]["patrol_ids"] == []
    assert body["grids"][1]["patrol_ids"][0] in body["grids"][0]["patrol_ids"]       # Monday's walk 0 → 1
    assert (body["visited_grid_days"], body["coverage_rate"]) == (3, 0.3333)
    # i2's walk in grid 2 (i1's) counts for neither of them: only one's own grids by one's own tracks
    i2 = drill(world["supervisor"], world["i2"].id, "coverage", **PERIOD)
    assert [(x["code"], x["visited_days"]) for x in i2["grids"]] == [(g[3], ["2025-05-05", "2025-05-07"])]
    # the patrols named are the inspector's own, visible to the supervisor for that day
    monday = world["supervisor"].get("/api/v1/patrols?date=2025-05-05").get_json()["items"]
    ids = {p["id"] for p in monday if p["inspector_id"] == world["i1"].id}
    assert set(body["grids"][1]["patrol_ids"]) <= ids


def test_a_narrower_scope_drills_only_into_its_grids(world):
    one_grid = world["user"]("supervisor", scope=world["grids"][0])
    body = drill(one_grid, world["i1"].id, "coverage", **PERIOD)
    assert [(x["code"], x["visited_days"]) for x in body["grids"]] == [
        (world["grids"][0], ["2025-05-05", "2025-05-06"])]
    assert body["coverage_rate"] == 0.6667
    assert drill(one_grid, world["i1"].id, "verifications", **PERIOD)["total"] == 0
    # i2 has no row for this supervisor: there is nothing behind it to see
    for what in ("verifications", "coverage"):
        r = one_grid.get(f"/api/v1/kpis/inspectors/{world['i2'].id}/{what}?{urlencode(PERIOD)}")
        assert r.status_code == 404 and r.mimetype == "application/problem+json", what


def test_drills_of_people_out_of_sight_are_404(world):
    outsider = world["user"]("supervisor", "dispatcher", scope="310199")
    for who in (world["i1"].id, world["i2"].id, 999_999_999, 10**20):
        for what in ("verifications", "coverage"):
            r = outsider.get(f"/api/v1/kpis/inspectors/{who}/{what}?{urlencode(PERIOD)}")
            assert r.status_code == 404 and r.mimetype == "application/problem+json", (who, what)


def test_drills_are_for_supervisors_and_dispatchers(world, anon):
    for roles in (("inspector",), ("handler",), ("admin",)):
        for what in ("verifications", "coverage"):
            r = world["user"](*roles).get(f"/api/v1/kpis/inspectors/{world['i1'].id}/{what}")
            assert r.status_code == 403 and r.mimetype == "application/problem+json", (roles, what)
    assert anon.get(f"/api/v1/kpis/inspectors/{world['i1'].id}/coverage").status_code == 401


@pytest.mark.parametrize("what, query, field", [
    ("verifications", {"on_time": "perhaps"}, "on_time"),
    ("verifications", {"from": "2025-05-08T00:00:00+08:00", "to": "2025-05-05T00:00:00+08:00"}, "from"),
    ("coverage", {"as_of": "yesterday"}, "as_of"),
    ("coverage", {"on_time": "true"}, "on_time"),
])
def test_bad_drill_queries_are_422(world, what, query, field):
    r = world["supervisor"].get(f"/api/v1/kpis/inspectors/{world['i1'].id}/{what}?{urlencode(query)}")
    assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()


def test_the_openapi_document_describes_the_drills(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for what, params in (("verifications", {"from", "to", "as_of", "on_time"}), ("coverage", {"from", "to", "as_of"})):
        op = spec["paths"][f"/api/v1/kpis/inspectors/{{inspector_id}}/{what}"]["get"]
        assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == params
