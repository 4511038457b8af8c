"""Scope: objects outside a user's areas do not exist for that user (404), and never leak through
lists, counts, maps, KPIs or exports."""
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from helpers import PASSWORD, Api, block_geojson, png

ALL_ROLES = ("inspector", "dispatcher", "handler", "supervisor", "admin")
ACTIONS = ("register", "reject", "merge", "dispatch", "accept", "return", "handle", "verify_pass", "verify_fail",
           "suspend", "resume", "request_extension", "decide_extension", "escalate")


@pytest.fixture(scope="module")
def theirs(app):
    """A case with events, a photo and a team in a district of its own; and an outsider holding every
    role in the demo district. Built once: no test here changes what it looks at."""
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    code, x0, y0, d = "950001", 70.0, 30.0, 0.001
    client = app.test_client()
    with app.app_context():
        assert importer.import_grids(json.dumps(block_geojson(code, x0, y0, 3, d)).encode(), "s.geojson").created == 9
        team = Team(name=f"scope team {uuid.uuid4().hex[:6]}", kind="enforcement", agencies=["城管"],
                    area_codes=[code], grid_codes=[], category_codes=["0701"])
        db.session.add(team)
        db.session.commit()
        team_id = team.id

    def user(*roles, scope):
        name = f"scope_{uuid.uuid4().hex[:10]}"
        with app.app_context():
            auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles), scope=[scope])
            db.session.commit()
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        return Api(client, r.get_json()["access_token"], r.get_json()["user"])

    inspector, dispatcher = user("inspector", scope=code), user("dispatcher", "supervisor", scope=code)
    lon, lat = x0 + d + d / 2, y0 - d - d / 2  # the centre grid
    case = inspector.report(lon=lon, lat=lat, description="secret pothole")
    photo = inspector.photo(case["id"], "before")
    dispatcher.act(case["id"], "register", {})
    dispatcher.act(case["id"], "dispatch", {"team_id": team_id})
    case = dispatcher.case(case["id"])
    return {"case": case, "photo": photo, "team": team_id, "outsider": user(*ALL_ROLES, scope="310199"),
            "insider": dispatcher, "lon": lon, "lat": lat, "code": code,
            "grids": [f"{code}001001{i:03d}" for i in range(1, 10)]}


def assert_404(r):
    assert r.status_code == 404, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    assert "secret" not in r.get_data(as_text=True)


def test_the_insider_sees_everything_the_outsider_is_refused(theirs):
    insider, case = theirs["insider"], theirs["case"]
    assert insider.get(f"/api/v1/cases/{case['id']}").status_code == 200
    assert insider.get(f"/api/v1/cases/{case['id']}/events").status_code == 200
    assert insider.get(f"/api/v1/photos/{theirs['photo']['id']}").status_code == 200
    assert insider.get(f"/api/v1/teams/{theirs['team']}").status_code == 200


@pytest.mark.parametrize("path", [
    "/api/v1/cases/{case}",
    "/api/v1/cases/{case}/events",
    "/api/v1/cases/{case}/photos",
    "/api/v1/cases/{case}/dispatch-suggestions",
    "/api/v1/photos/{photo}",
    "/api/v1/photos/{photo}?size=thumb",
    "/api/v1/teams/{team}",
])
def test_objects_outside_scope_are_404(theirs, path):
    url = path.format(case=theirs["case"]["id"], photo=theirs["photo"]["id"], team=theirs["team"])
    assert_404(theirs["outsider"].get(url))


def test_an_outside_object_answers_exactly_like_a_missing_one(theirs):
    outsider = theirs["outsider"]
    real = outsider.get(f"/api/v1/cases/{theirs['case']['id']}").get_json()
    missing = outsider.get("/api/v1/cases/999999999").get_json()
    assert {k: v for k, v in real.items() if k != "detail"} == {k: v for k, v in missing.items() if k != "detail"}


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_on_an_outside_case_is_404(theirs, action):
    outsider, case = theirs["outsider"], theirs["case"]
    url = f"/api/v1/cases/{case['id']}/actions/{action}"
    assert_404(outsider.post(url, json={}, headers={"If-Match": f'"{case["version"]}"'}))
    assert_404(outsider.post(url, json={}))  # without If-Match: still 404, not 428
    assert theirs["insider"].case(case["id"])["status"] == "dispatched"


def test_adding_a_photo_to_an_outside_case_is_404(theirs):
    r = theirs["outsider"].post(f"/api/v1/cases/{theirs['case']['id']}/photos",
                                data={"kind": "before", "file": (io.BytesIO(png()), "p.png")},
                                content_type="multipart/form-data", headers={"Idempotency-Key": str(uuid.uuid4())})
    assert_404(r)


def test_lists_and_searches_do_not_show_outside_cases(theirs):
    outsider, case = theirs["outsider"], theirs["case"]
    queries = [{}, {"grid": theirs["grids"][4]}, {"street": f"{theirs['code']}001"},
               {"community": f"{theirs['code']}001001"}, {"team": theirs["team"]}, {"q": case["number"]},
               {"q": "secret"}, {"status": "dispatched"}, {"category": case["category_code"]},
               {"bbox": f"{theirs['lon'] - 0.01},{theirs['lat'] - 0.01},{theirs['lon'] + 0.01},{theirs['lat'] + 0.01}"},
               {"reporter": case["reporter_id"]}]
    for query in queries:
        r = outsider.get(f"/api/v1/cases?{urlencode({**query, 'per_page': 500})}")
        assert r.status_code == 200, (query, r.get_json())
        body = r.get_json()
        assert case["id"] not in [c["id"] for c in body["items"]], query
        if query:
            assert body["total"] == 0, query
    # the insider finds it by the same searches
    for query in queries[1:]:
        body = theirs["insider"].get(f"/api/v1/cases?{urlencode(query)}").get_json()
        assert case["id"] in [c["id"] for c in body["items"]], query


def test_the_map_and_locate_show_nothing_outside(theirs):
    outsider = theirs["outsider"]
    lon, lat = theirs["lon"], theirs["lat"]
    fc = outsider.get(f"/api/v1/grids?bbox={lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}").get_json()
    assert fc["features"] == []
    assert outsider.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}").get_json()["grid"] is None


def test_teams_list_leaves_out_outside_teams(theirs):
    ids = [t["id"] for t in theirs["outsider"].get("/api/v1/teams?per_page=500").get_json()["items"]]
    assert theirs["team"] not in ids


@pytest.mark.parametrize("group_by", ["team", "grid", "street", "community", "category", "inspector"])
def test_kpis_and_their_drill_down_leave_outside_cases_out(theirs, group_by):
    outsider, insider, case = theirs["outsider"], theirs["insider"], theirs["case"]
    now = datetime.now(timezone.utc)
    period = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    insider_keys = {row["key"] for row in
                    insider.get(f"/api/v1/kpis?{urlencode({'group_by': group_by, **period})}").get_json()["rows"]}
    assert insider_keys, group_by
    rows = outsider.get(f"/api/v1/kpis?{urlencode({'group_by': group_by, **period})}").get_json()["rows"]
    if group_by != "category":  # a category is shared by every district: its row holds the outsider's own cases
        assert not {r["key"] for r in rows} & insider_keys
    for figure in ("reports", "registered", "dispatched"):
        for key in insider_keys:
            query = {"kpi": figure, "group_by": group_by, "key": key, "per_page": 500, **period}
            body = outsider.get(f"/api/v1/cases?{urlencode(query)}").get_json()
            assert case["id"] not in [c["id"] for c in body["items"]]
    csv = outsider.get(f"/api/v1/kpis?{urlencode({'group_by': 'grid', **period})}", headers={"Accept": "text/csv"})
    assert theirs["grids"][4] not in csv.get_data(as_text=True)
    xlsx = outsider.get(f"/api/v1/kpis/export.xlsx?{urlencode({'group_by': 'street', **period})}")
    assert xlsx.status_code == 200 and f"{theirs['code']}001".encode() not in xlsx.data


def test_coverage_of_an_outside_area_shows_nothing(theirs):
    r = theirs["outsider"].get(f"/api/v1/patrols/coverage?date=2026-03-10&area={theirs['code']}")
    assert r.status_code == 404 or r.get_json()["grids"] == []
    body = theirs["outsider"].get("/api/v1/patrols/coverage?date=2026-03-10").get_json()
    assert not [g for g in body["grids"] if g["code"].startswith(theirs["code"])]


def test_a_report_made_outside_ones_scope_does_not_land_in_the_other_district(theirs):
    case = theirs["outsider"].report(lon=theirs["lon"], lat=theirs["lat"])
    assert case["grid_code"] is None and not case["district_code"] == theirs["code"]
    body = theirs["insider"].get(f"/api/v1/cases?{urlencode({'grid': theirs['grids'][4], 'per_page': 500})}")
    assert case["id"] not in [c["id"] for c in body.get_json()["items"]]


def test_outside_cases_and_teams_cannot_be_referred_to(theirs, make_user):
    outsider = theirs["outsider"]
    mine = outsider.report(lon=121.46, lat=31.22)
    # merging into a case of another district: that case does not exist for the outsider
    r = outsider.post(f"/api/v1/cases/{mine['id']}/actions/merge", json={"parent_id": theirs["case"]["id"]},
                      headers={"If-Match": f'"{mine["version"]}"'})
    missing = outsider.post(f"/api/v1/cases/{mine['id']}/actions/merge", json={"parent_id": 999999999},
                            headers={"If-Match": f'"{mine["version"]}"'})
    assert r.status_code == missing.status_code == 422
    # dispatching to a team of another district: unknown, exactly like a team that does not exist
    outsider.act(mine["id"], "register", {})
    version = outsider.case(mine["id"])["version"]
    foreign = outsider.post(f"/api/v1/cases/{mine['id']}/actions/dispatch", json={"team_id": theirs["team"]},
                            headers={"If-Match": f'"{version}"'})
    unknown = outsider.post(f"/api/v1/cases/{mine['id']}/actions/dispatch", json={"team_id": 999999999},
                            headers={"If-Match": f'"{version}"'})
    assert foreign.status_code == unknown.status_code == 422
    # a photo of another district's case cannot be used as evidence
    assert theirs["photo"]["id"] not in [p["id"] for p in
                                          outsider.get(f"/api/v1/cases/{mine['id']}/photos").get_json()["items"]]
