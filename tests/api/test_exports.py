"""Exports: cases as GeoJSON and CSV with the filters of GET /cases (streamed), grids as GeoJSON and
GeoPackage, a day's patrol tracks as GeoJSON; all within the caller's scope.

Two districts of their own (A, where everything happens, and B, whose objects must never show) are
built once for the module; the streaming tests insert their thousands of cases into a fresh district.
"""
import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import numpy as np
import pyogrio
import pytest
import shapely
from flask import has_app_context
from sqlalchemy import text

from helpers import PASSWORD, Api, block_geojson

SHANGHAI = timezone(timedelta(hours=8))
A, B = "930501", "930502"
D = 0.001
ORIGIN = {A: (50.0, 30.0), B: (50.05, 30.0)}
DAY = "2026-05-12"
PREFIX = "/api/v1/exports"


def point(code, i):
    x0, y0 = ORIGIN[code]
    return x0 + (i % 3) * D + D / 2, y0 - (i // 3) * D - D / 2


def grids_of(code):
    return [f"{code}001001{i:03d}" for i in range(1, 10)]


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def at(hhmm: str, day=DAY) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+08:00")


def walk(api, points, when, end=True):
    """A patrol started at `when` along `points`, a minute apart, in two batches (the second sent first)."""
    from gridpatrol.core.db import clock_at

    with clock_at(when):
        r = api.post("/api/v1/patrols", json={})
        assert r.status_code == 201, r.get_json()
        patrol = r.get_json()
        fixes = [{"lon": lon, "lat": lat, "accuracy_m": 5, "recorded_at": (when + timedelta(minutes=i)).isoformat()}
                 for i, (lon, lat) in enumerate(points)]
        half = len(fixes) // 2
        for seq, batch in ((2, fixes[half:]), (1, fixes[:half])):
            if batch:
                r = api.post(f"/api/v1/patrols/{patrol['id']}/points", json={"seq": seq, "points": batch})
                assert r.status_code == 200, r.get_json()
        if end:
            r = api.post(f"/api/v1/patrols/{patrol['id']}/end", json={})
            assert r.status_code == 200, r.get_json()
            patrol = r.get_json()
    return patrol


@pytest.fixture(scope="module")
def world(app):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.teams.models import Team

    client = app.test_client()
    tag = uuid.uuid4().hex[:10]
    with app.app_context():
        for code, (x0, y0) in ORIGIN.items():
            assert importer.import_grids(json.dumps(block_geojson(code, x0, y0, 3, D)).encode(),
                                         "exports.geojson").created == 9
        team = Team(name=f"export team {tag}", kind="enforcement", agencies=["城管"], area_codes=[A],
                    grid_codes=[], category_codes=["0701", "0101"])
        db.session.add(team)
        db.session.commit()
        team_id = team.id

    def user(*roles, scope=A, team=None):
        name = f"exp_{uuid.uuid4().hex[:10]}"
        with app.app_context():
            created = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles),
                                       scope=[scope], team_ids=[team] if team else [])
            db.session.commit()
            user_id = created.id
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.get_json()
        api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
        api.id, api.username = user_id, name
        return api

    users = {"inspector": user("inspector"), "walker": user("inspector"), "dispatcher": user("dispatcher"),
             "supervisor": user("supervisor"), "handler": user("handler", team=team_id), "admin": user("admin"),
             "inspector_b": user("inspector", scope=B), "supervisor_b": user("supervisor", "dispatcher", scope=B)}
    i, d = users["inspector"], users["dispatcher"]

    def report(grid, code=A, reporter=i, **kw):
        lon, lat = point(code, grid)
        kw.setdefault("description", f"暴露垃圾 {tag}")
        return reporter.report(lon=lon, lat=lat, **kw)["id"]

    cases = {
        "plain": report(0, address="南京东路 1 号"),
        "formula": report(1, category_code="0101", description=f"=HYPERLINK(\"http://evil\") {tag}",
                          address="+86 road"),
        "dispatched": report(4, category_code="0101", urgency="A"),
        "rejected": report(5),
        "escalated": report(8, urgency="C"),
        "overdue": report(2),
        "hotline": report(3, reporter=d, contact={"name": f"Canary{tag}", "phone": "+86 139 7315 2468",
                                                   "email": f"canary.{tag}@example.org"}),
        "theirs": report(4, code=B, reporter=users["inspector_b"]),
    }
    d.act(cases["dispatched"], "register")
    d.act(cases["dispatched"], "dispatch", {"team_id": team_id})
    d.act(cases["rejected"], "reject", {"reason": "not a problem"})
    d.act(cases["hotline"], "register")
    users["supervisor"].act(cases["escalated"], "escalate", {"level": 2, "note": "hurry"})
    sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = :id", id=cases["overdue"])

    walker = users["walker"]
    patrols = {
        "done": walk(walker, [point(A, 0), point(A, 1), point(A, 2), point(A, 5)], at("09:00")),
        "single": walk(i, [point(A, 8)], at("10:00")),
        "running": walk(walker, [point(A, 6), point(A, 7), point(A, 4)], at("14:00"), end=False),
        "other_day": walk(walker, [point(A, 3), point(A, 4)], at("09:00", "2026-05-13")),
        "theirs": walk(users["inspector_b"], [point(B, 0), point(B, 1)], at("11:00")),
    }
    now = datetime.now(timezone.utc)
    period = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    return {"users": users, "cases": cases, "patrols": patrols, "team": team_id, "tag": tag, "period": period}


def query_string(query: dict) -> str:
    return urlencode(query, doseq=True)


def listed(api, query: dict) -> list[int]:
    r = api.get(f"/api/v1/cases?{query_string({**query, 'per_page': 500})}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["total"] == len(body["items"]) < 500
    return [c["id"] for c in body["items"]]


def geojson(api, path, query=None, expect=200):
    r = api.get(f"{PREFIX}/{path}?{query_string(query or {})}")
    assert r.status_code == expect, r.data[:500]
    if expect != 200:
        assert r.mimetype == "application/problem+json"
        return r.get_json()
    assert r.mimetype == "application/geo+json"
    body = json.loads(r.data.decode("utf-8"))
    assert body["type"] == "FeatureCollection"
    return body


def csv_rows(api, query=None, expect=200):
    r = api.get(f"{PREFIX}/cases.csv?{query_string(query or {})}")
    assert r.status_code == expect, r.data[:500]
    assert r.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"), newline="")))


# ------------------------------------------------------------------ cases: the filters of GET /cases

FILTERS = {
    "everything": lambda w: {},
    "status": lambda w: {"status": "reported"},
    "statuses and street": lambda w: {"status": "dispatched,rejected", "street": f"{A}001"},
    "grid": lambda w: {"grid": [grids_of(A)[0], grids_of(A)[4]]},
    "category and urgency": lambda w: {"category": "0101", "urgency": "A"},
    "team": lambda w: {"team": w["team"]},
    "bbox": lambda w: {"bbox": f"{ORIGIN[A][0]},{ORIGIN[A][1] - 2 * D},{ORIGIN[A][0] + 2 * D},{ORIGIN[A][1]}"},
    "overdue": lambda w: {"overdue": "true"},
    "not overdue, oldest first": lambda w: {"overdue": "false", "sort": "oldest"},
    "escalated": lambda w: {"escalated": "true"},
    "text": lambda w: {"q": "HYPERLINK"},
    "source": lambda w: {"source": "hotline"},
    "reporter": lambda w: {"reporter": w["users"]["inspector"].id},
    "reported in a period": lambda w: w["period"],
    "queue": lambda w: {"queue": "register"},
    "kpi registered by street": lambda w: {"kpi": "registered", "group_by": "street", "key": f"{A}001",
                                           **w["period"]},
    "kpi reports by inspector": lambda w: {"kpi": "reports", "group_by": "inspector",
                                           "key": str(w["users"]["inspector"].id), **w["period"]},
    "kpi dispatched by team": lambda w: {"kpi": "dispatched", "group_by": "team", "key": str(w["team"]),
                                         **w["period"]},
}


@pytest.mark.parametrize("name", FILTERS)
def test_an_export_holds_the_cases_the_list_shows(world, name):
    query = FILTERS[name](world)
    api = world["users"]["dispatcher"] if name == "queue" else world["users"]["supervisor"]
    expected = listed(api, query)
    features = geojson(api, "cases.geojson", query)["features"]
    assert [f["id"] for f in features] == [f["properties"]["id"] for f in features] == expected
    assert [int(row["id"]) for row in csv_rows(api, query)] == expected
    assert not {world["cases"]["theirs"]} & set(expected)
    if name == "everything":
        mine = set(world["cases"].values()) - {world["cases"]["theirs"]}
        assert mine <= set(expected)


def test_the_filters_really_filter(world):
    """The comparisons above are not all the same list."""
    api, c = world["users"]["supervisor"], world["cases"]
    ids = {name: [f["id"] for f in geojson(api, "cases.geojson", FILTERS[name](world))["features"]]
           for name in ("overdue", "escalated", "text", "source", "grid", "kpi dispatched by team")}
    assert ids["overdue"] == [c["overdue"]]
    assert ids["escalated"] == [c["escalated"]]
    assert ids["text"] == [c["formula"]]
    assert ids["source"] == [c["hotline"]]
    assert ids["grid"] == [c["dispatched"], c["plain"]]
    assert ids["kpi dispatched by team"] == [c["dispatched"]]


def test_every_role_exports_its_scope_and_nothing_else(world):
    c = world["cases"]
    mine = set(c.values()) - {c["theirs"]}
    for role in ("inspector", "dispatcher", "handler", "supervisor", "admin"):
        api = world["users"][role]
        got = {f["id"] for f in geojson(api, "cases.geojson")["features"]}
        assert got == set(listed(api, {})) and mine <= got and c["theirs"] not in got, role
        assert {int(r["id"]) for r in csv_rows(api)} == got, role
    theirs = world["users"]["supervisor_b"]
    got = {f["id"] for f in geojson(theirs, "cases.geojson")["features"]}
    assert c["theirs"] in got and not got & mine
    assert not {int(r["id"]) for r in csv_rows(theirs, {"q": world["tag"]})} & mine


def test_the_geojson_points_and_properties_are_the_cases(world):
    api = world["users"]["supervisor"]
    features = {f["id"]: f for f in geojson(api, "cases.geojson", {"q": world["tag"]})["features"]}
    assert set(features) == set(world["cases"].values()) - {world["cases"]["theirs"]}
    for case_id, feature in features.items():
        case = api.case(case_id)
        assert feature["geometry"] == {"type": "Point", "coordinates": [pytest.approx(case["location"]["lon"]),
                                                                        pytest.approx(case["location"]["lat"])]}
        props = feature["properties"]
        for key in ("number", "status", "category_code", "urgency", "source", "grid_code", "street_code",
                    "community_code", "district_code", "description", "address", "lead_team_id", "rework_count",
                    "escalation_level", "parent_id", "location_flags"):
            assert props[key] == case[key], key
        for key in ("reported_at", "registered_at", "closed_at", "observed_at"):
            assert _same_moment(props[key], case[key]), key
        for stage in ("register", "dispatch", "handle", "verify"):
            assert _same_moment(props[f"deadline_{stage}"], case["deadlines"][stage]), stage
        assert props["reported_at"].endswith("+08:00")
        assert props["grid_name"] and props["street_name"] and props["community_name"]
    c = world["cases"]
    assert features[c["dispatched"]]["properties"]["lead_team_name"] == f"export team {world['tag']}"
    assert features[c["plain"]]["properties"]["category_name"] and features[c["plain"]]["properties"][
        "category_name_en"]
    assert [cid for cid, f in features.items() if f["properties"]["overdue"]] == [c["overdue"]]


def _same_moment(exported, listed_value):
    if listed_value is None:
        return exported is None
    a, b = datetime.fromisoformat(exported), datetime.fromisoformat(listed_value)
    return abs(a - b) < timedelta(seconds=1)


def test_the_csv_opens_in_a_spreadsheet(world):
    api = world["users"]["supervisor"]
    r = api.get(f"{PREFIX}/cases.csv?q={world['tag']}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and 'filename="cases-' in disposition and disposition.endswith(
        '.csv"')
    assert r.data.startswith("\ufeff".encode())  # the byte order mark: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"), newline="")))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["number", "id", "status"] and {"lon", "lat", "overdue", "category_name"} <= set(header)
    assert len(body) == 7 and all(len(row) == len(header) for row in body)
    by_id = {row["id"]: row for row in (dict(zip(header, row)) for row in body)}
    c = world["cases"]
    formula = by_id[str(c["formula"])]
    assert formula["description"].startswith("'=HYPERLINK(") and formula["address"] == "'+86 road"
    plain = by_id[str(c["plain"])]
    assert plain["description"] == f"暴露垃圾 {world['tag']}" and plain["address"] == "南京东路 1 号"
    case = api.case(c["plain"])
    assert float(plain["lon"]) == pytest.approx(case["location"]["lon"])
    assert float(plain["lat"]) == pytest.approx(case["location"]["lat"])
    assert _same_moment(plain["reported_at"], case["reported_at"]) and plain["closed_at"] == ""
    assert by_id[str(c["overdue"])]["overdue"] == "true" and plain["overdue"] == "false"
    # a negative number is a number, not a formula
    assert not any(cell.startswith("'") for row in body for k, cell in zip(header, row)
                   if k in ("lon", "lat", "accuracy_m", "id"))


def test_a_citizens_contact_is_never_exported(world):
    """Not even to the dispatch centre, who sees it in the case itself."""
    dispatcher, c = world["users"]["dispatcher"], world["cases"]
    assert dispatcher.case(c["hotline"])["contact"]["phone"] == "+86 139 7315 2468"
    canaries = [b"7315 2468", f"canary.{world['tag']}".encode(), f"Canary{world['tag']}".encode()]
    for api in (dispatcher, world["users"]["supervisor"]):
        for path in ("cases.geojson", "cases.csv"):
            r = api.get(f"{PREFIX}/{path}?source=hotline")
            assert r.status_code == 200 and str(c["hotline"]).encode() in r.data
            assert not [canary for canary in canaries if canary in r.data], path
    props = geojson(dispatcher, "cases.geojson", {"source": "hotline"})["features"][0]["properties"]
    assert "contact" not in props and not {"phone", "email", "exif_lon", "exif_lat"} & set(props)


def test_no_case_no_rows(world):
    api = world["users"]["supervisor"]
    assert geojson(api, "cases.geojson", {"q": "nothing-like-this-" + uuid.uuid4().hex}) == {
        "type": "FeatureCollection", "features": []}
    r = api.get(f"{PREFIX}/cases.csv?q=nothing-{uuid.uuid4().hex}")
    assert r.status_code == 200 and r.data.decode("utf-8-sig").count("\n") == 1


@pytest.mark.parametrize("path", ["cases.geojson", "cases.csv"])
@pytest.mark.parametrize("query, field", [
    ("status=lost", "status"), ("stauts=closed", "stauts"), ("page=2", "page"), ("per_page=10", "per_page"),
    ("bbox=1,2,3", "bbox"), ("grid=123", "grid"), ("overdue=maybe", "overdue"), ("team=0", "team"),
    ("kpi=closed&group_by=team", "key"), ("kpi=nope", "kpi"), ("from=yesterday", "from"),
    ("q=" + "x" * 201, "q"), ("q=a%00b", "q"),
])
def test_bad_case_filters_are_422(world, path, query, field):
    r = world["users"]["supervisor"].get(f"{PREFIX}/{path}?{query}")
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.data[:300]
    assert field in {name.split(".")[0] for name in r.get_json()["errors"]}, r.get_json()  # a list names its item


def test_exports_need_a_signed_in_user(anon):
    for path in ("cases.geojson", "cases.csv", "grids.geojson", "grids.gpkg", f"patrols.geojson?date={DAY}"):
        r = anon.get(f"{PREFIX}/{path}")
        assert r.status_code == 401 and r.mimetype == "application/problem+json", path


# ------------------------------------------------------------------ grids

def test_the_grids_of_the_scope_as_geojson(world):
    api = world["users"]["inspector"]
    body = geojson(api, "grids.geojson")
    assert [f["id"] for f in body["features"]] == grids_of(A)
    first = body["features"][0]["properties"]
    assert first == {"code": grids_of(A)[0], "name": "g1", "district_code": A, "district_name": first["district_name"],
                     "street_code": f"{A}001", "street_name": first["street_name"], "community_code": f"{A}001001",
                     "community_name": first["community_name"], "area_m2": first["area_m2"]}
    assert first["district_name"] and first["street_name"] and first["community_name"]
    assert 9000 < first["area_m2"] < 11000  # 0.001° squares at 30° N
    # the geometries are those the map layer serves
    x0, y0 = ORIGIN[A]
    shown = api.get(f"/api/v1/grids?bbox={x0},{y0 - 3 * D},{x0 + 3 * D},{y0}").get_json()
    assert {f["id"]: f["geometry"] for f in shown["features"] if f["id"].startswith(A)} == {
        f["id"]: f["geometry"] for f in body["features"]}
    # another district's grids are not there, and its user does not see these
    assert [f["id"] for f in geojson(world["users"]["supervisor_b"], "grids.geojson")["features"]] == grids_of(B)


def test_grids_filtered_by_area_and_bbox(world):
    api = world["users"]["supervisor"]
    one = grids_of(A)[4]
    assert [f["id"] for f in geojson(api, "grids.geojson", {"area": one})["features"]] == [one]
    lon, lat = point(A, 4)
    tiny = f"{lon - D / 10},{lat - D / 10},{lon + D / 10},{lat + D / 10}"
    assert [f["id"] for f in geojson(api, "grids.geojson", {"bbox": tiny})["features"]] == [one]
    assert [f["id"] for f in geojson(api, "grids.geojson", {"area": A, "bbox": tiny})["features"]] == [one]
    # an area outside the scope does not exist
    assert geojson(api, "grids.geojson", {"area": B}, expect=404)["status"] == 404
    r = api.get(f"{PREFIX}/grids.gpkg?area={grids_of(B)[0]}")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["grids.geojson", "grids.gpkg"])
@pytest.mark.parametrize("query, field", [("bbox=1,2", "bbox"), ("bbox=3,0,1,1", "bbox"), ("area=12", "area"),
                                          ("limit=5", "limit"), ("code=1", "code")])
def test_bad_grid_filters_are_422(world, path, query, field):
    r = world["users"]["supervisor"].get(f"{PREFIX}/{path}?{query}")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert field in r.get_json()["errors"], r.get_json()


def test_the_grids_as_a_geopackage(world, tmp_path):
    api = world["users"]["admin"]
    r = api.get(f"{PREFIX}/grids.gpkg")
    assert r.status_code == 200 and r.mimetype == "application/geopackage+sqlite3"
    assert r.headers["Content-Disposition"].startswith("attachment;") and ".gpkg" in r.headers["Content-Disposition"]
    assert int(r.headers["Content-Length"]) == len(r.data)
    path = tmp_path / "grids.gpkg"
    path.write_bytes(r.data)
    assert pyogrio.list_layers(path)[:, 0].tolist() == ["grids"]
    info = pyogrio.read_info(path, layer="grids")
    assert info["crs"] == "EPSG:4326" and info["features"] == 9 and info["geometry_type"] == "Polygon"
    assert list(info["fields"]) == ["code", "name", "district_code", "district_name", "street_code", "street_name",
                                    "community_code", "community_name", "area_m2"]
    _meta, _fids, geometry, data = pyogrio.raw.read(path, layer="grids")
    fields = list(info["fields"])
    assert data[fields.index("code")].tolist() == grids_of(A)
    assert data[fields.index("name")].tolist() == [f"g{i}" for i in range(1, 10)]
    assert set(data[fields.index("district_code")].tolist()) == {A}
    areas = np.asarray(data[fields.index("area_m2")], dtype=float)
    assert ((areas > 9000) & (areas < 11000)).all()
    expected = {f["id"]: shapely.geometry.shape(f["geometry"]) for f in geojson(api, "grids.geojson")["features"]}
    for code, wkb in zip(data[fields.index("code")], geometry):
        assert shapely.from_wkb(wkb).equals_exact(expected[code], 1e-7), code


def test_a_geopackage_without_grids_still_has_its_layer(world, make_user, tmp_path):
    nobody = make_user("supervisor", scope=["939999"])
    r = nobody.get(f"{PREFIX}/grids.gpkg")
    assert r.status_code == 200
    path = tmp_path / "empty.gpkg"
    path.write_bytes(r.data)
    info = pyogrio.read_info(path, layer="grids")
    assert info["features"] == 0 and info["crs"] == "EPSG:4326"
    assert geojson(nobody, "grids.geojson")["features"] == []


# ------------------------------------------------------------------ patrols

def test_a_days_patrol_tracks(world):
    api, p = world["users"]["supervisor"], world["patrols"]
    body = geojson(api, "patrols.geojson", {"date": DAY})
    listed_patrols = api.get(f"/api/v1/patrols?date={DAY}").get_json()["items"]
    assert [f["id"] for f in body["features"]] == [i["id"] for i in listed_patrols] == [
        p["done"]["id"], p["single"]["id"], p["running"]["id"]]
    done, single, running = body["features"]
    # the points in the order they were recorded, though the second batch arrived first
    assert done["geometry"]["type"] == "LineString"
    assert done["geometry"]["coordinates"] == [[pytest.approx(x), pytest.approx(y)] for x, y in
                                               (point(A, 0), point(A, 1), point(A, 2), point(A, 5))]
    props = done["properties"]
    times = [datetime.fromisoformat(t) for t in props["recorded_at"]]
    assert times == sorted(times) and times[0] == at("09:00") and len(times) == 4
    assert props["point_count"] == 4 and props["inspector_id"] == world["users"]["walker"].id
    assert props["inspector_name"] == world["users"]["walker"].username
    assert datetime.fromisoformat(props["started_at"]) == at("09:00") and props["started_at"].endswith("+08:00")
    assert props["ended_at"] is not None
    assert props["length_m"] == pytest.approx(p["done"]["length_m"], abs=0.1) and props["length_m"] > 250
    assert props["grid_codes"] == p["done"]["grid_codes"] == [grids_of(A)[i] for i in (0, 1, 2, 5)]
    # the track exported is the track stored
    stored = listed_patrols[0]["track"]["coordinates"]
    assert done["geometry"]["coordinates"] == [[pytest.approx(x), pytest.approx(y)] for x, y in stored]
    # one point makes no line; a running patrol shows its points so far
    assert single["geometry"] is None and single["properties"]["point_count"] == 1
    assert running["properties"]["ended_at"] is None and running["properties"]["point_count"] == 3
    assert running["geometry"]["coordinates"] == [[pytest.approx(x), pytest.approx(y)] for x, y in
                                                  (point(A, 6), point(A, 7), point(A, 4))]
    assert running["properties"]["length_m"] > 0
    assert p["theirs"]["id"] not in {f["id"] for f in body["features"]}


def test_patrols_by_inspector_and_other_days(world):
    api, p, walker = world["users"]["dispatcher"], world["patrols"], world["users"]["walker"]
    assert [f["id"] for f in geojson(api, "patrols.geojson", {"date": DAY, "inspector": walker.id})["features"]] == [
        p["done"]["id"], p["running"]["id"]]
    assert [f["id"] for f in geojson(api, "patrols.geojson", {"date": "2026-05-13"})["features"]] == [
        p["other_day"]["id"]]
    assert geojson(api, "patrols.geojson", {"date": "2026-05-14"})["features"] == []
    assert [f["id"] for f in geojson(api, "patrols.geojson", {"date": DAY, "area": grids_of(A)[8]})["features"]] == [
        p["single"]["id"]]
    r = api.get(f"{PREFIX}/patrols.geojson?date={DAY}")
    assert r.headers["Content-Disposition"] == 'attachment; filename="patrols-20260512.geojson"'


def test_patrols_of_another_district_do_not_exist(world):
    theirs, p = world["users"]["supervisor_b"], world["patrols"]
    assert [f["id"] for f in geojson(theirs, "patrols.geojson", {"date": DAY})["features"]] == [p["theirs"]["id"]]
    assert geojson(theirs, "patrols.geojson", {"date": DAY, "inspector": world["users"]["walker"].id})[
        "features"] == []
    assert geojson(theirs, "patrols.geojson", {"date": DAY, "area": A}, expect=404)["status"] == 404


@pytest.mark.parametrize("role", ["inspector", "handler", "admin"])
def test_patrol_tracks_are_for_supervisors_and_dispatchers(world, role):
    r = world["users"][role].get(f"{PREFIX}/patrols.geojson?date={DAY}")
    assert r.status_code == 403 and r.mimetype == "application/problem+json"


@pytest.mark.parametrize("query, field", [("", "date"), ("date=2026-02-30", "date"), ("date=today", "date"),
                                          ("date=9999-12-31", "date"),
                                          (f"date={DAY}&inspector=abc", "inspector"),
                                          (f"date={DAY}&inspector=0", "inspector"), (f"date={DAY}&area=1", "area"),
                                          (f"date={DAY}&day={DAY}", "day")])
def test_bad_patrol_queries_are_422(world, query, field):
    r = world["users"]["supervisor"].get(f"{PREFIX}/patrols.geojson?{query}")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert field in r.get_json()["errors"], r.get_json()


# ------------------------------------------------------------------ streaming

BULK = 3500
BULK_DISTRICT = ("930503", 50.1, 30.0)


@pytest.fixture(scope="module")
def bulk(app):
    """BULK cases of a district of their own, inserted by SQL (the workflow is not what is tested here),
    and a supervisor of that district."""
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer

    code, x0, y0 = BULK_DISTRICT
    grid = f"{code}001001005"
    with app.app_context():
        blocks = json.dumps(block_geojson(code, x0, y0, 3, D)).encode()
        assert importer.import_grids(blocks, "bulk.geojson").created == 9
        name = f"exp_{uuid.uuid4().hex[:10]}"
        user_id = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=["supervisor"],
                                   scope=[code]).id
        db.session.commit()
    sql(app, """
        INSERT INTO cases (number, status, category_code, urgency, description, location, district_code,
                           street_code, community_code, grid_code, source, reported_at, updated_at)
        SELECT 'X' || :code || lpad(i::text, 6, '0'), 'reported', '0701', 'B', '批量 bulk ' || i,
               ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :code, left(:grid, 9), left(:grid, 12), :grid,
               'inspector', now() - i * interval '1 second', now()
        FROM generate_series(1, :n) AS i
    """, code=code, grid=grid, lon=x0 + 1.5 * D, lat=y0 - 1.5 * D, n=BULK)
    ids = {r[0] for r in sql(app, "SELECT id FROM cases WHERE district_code = :code", code=code)}
    assert len(ids) == BULK
    client = app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
    api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
    api.id, api.username = user_id, name
    return {"ids": ids, "api": api, "code": code}


def checked_out(app) -> int:
    from gridpatrol.extensions import db
    with app.app_context():
        return db.engine.pool.checkedout()


def chunks_of(api, path):
    r = api.get(path, buffered=False)
    assert r.status_code == 200 and r.is_streamed
    assert "Content-Length" not in r.headers
    chunks = [chunk for chunk in r.response if chunk]
    r.close()
    return r, chunks


def test_a_large_csv_export_streams_in_chunks_and_is_complete(app, bulk):
    before = checked_out(app)
    r, chunks = chunks_of(bulk["api"], f"{PREFIX}/cases.csv")
    print(f"\n[exports] csv: {BULK} cases in {len(chunks)} chunks, {sum(map(len, chunks))} bytes")
    assert len(chunks) > BULK // 1000
    body = b"".join(chunks)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert {int(row["id"]) for row in rows} == bulk["ids"] and len(rows) == BULK
    assert rows[0]["description"] == "批量 bulk 1" and rows[-1]["description"] == f"批量 bulk {BULK}"
    assert checked_out(app) == before  # the connection went back to the pool when the stream ended


def test_a_large_geojson_export_streams_in_chunks_and_is_complete(app, bulk):
    before = checked_out(app)
    r, chunks = chunks_of(bulk["api"], f"{PREFIX}/cases.geojson?sort=oldest")
    print(f"\n[exports] geojson: {BULK} cases in {len(chunks)} chunks, {sum(map(len, chunks))} bytes")
    assert len(chunks) > BULK // 1000
    features = json.loads(b"".join(chunks))["features"]
    assert len(features) == BULK and {f["id"] for f in features} == bulk["ids"]
    assert features[0]["properties"]["description"] == f"批量 bulk {BULK}"
    assert checked_out(app) == before


def test_a_stream_abandoned_midway_returns_its_connection(app, bulk):
    before = checked_out(app)
    r = bulk["api"].get(f"{PREFIX}/cases.geojson", buffered=False)
    stream = iter(r.response)
    first, second = next(stream), next(stream)
    assert first.startswith(b'{"type":"FeatureCollection"') and second
    assert checked_out(app) == before + 1  # the cursor is open, on the server: rows come a batch at a time
    sessions = sql(app, "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()")
    assert [q for state, q in sessions if state == "idle in transaction" and q.startswith("FETCH FORWARD")], sessions
    r.close()  # the client went away
    assert checked_out(app) == before and not has_app_context()
    # and the next request is answered normally
    assert bulk["api"].get(f"{PREFIX}/cases.csv?status=closed").status_code == 200


def test_answers_left_unread_leave_the_next_requests_alone(app, bulk, world):
    """werkzeug's test client reads the first chunk of every answer: an export whose answer is then left
    unread holds no request context and no connection, and the next request is its own."""
    before = checked_out(app)
    supervisor = world["users"]["supervisor"]
    for api, path in [(bulk["api"], "cases.csv"), (supervisor, "cases.geojson"), (bulk["api"], "grids.geojson"),
                      (supervisor, f"patrols.geojson?date={DAY}"), (supervisor, "cases.csv")]:
        r = api.get(f"{PREFIX}/{path}")
        assert r.status_code == 200 and not has_app_context(), path
        kept = r  # noqa: F841  (still referenced while the next request runs)
    assert checked_out(app) == before
    assert [f["id"] for f in geojson(supervisor, "grids.geojson")["features"]] == grids_of(A)


def test_the_server_sends_a_large_export_chunked(live_server, bulk):
    import requests

    token = requests.post(f"{live_server}/api/v1/auth/token", json={
        "username": bulk["api"].username, "password": PASSWORD}, timeout=10).json()["access_token"]
    with requests.get(f"{live_server}{PREFIX}/cases.csv", stream=True, timeout=60,
                      headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}) as r:
        assert r.status_code == 200 and r.headers["Transfer-Encoding"] == "chunked"
        chunks = [chunk for chunk in r.iter_content(chunk_size=None) if chunk]
    print(f"\n[exports] live server csv: {len(chunks)} chunks received")
    assert len(chunks) > 1
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8-sig"), newline="")))
    assert {int(row["id"]) for row in rows} == bulk["ids"]


# ------------------------------------------------------------------ the OpenAPI document

def test_the_openapi_document_describes_the_exports(app):
    from gridpatrol.exports.schemas import CaseExportQuery, GridExportQuery, PatrolExportQuery
    from gridpatrol.patrols.schemas import PatrolQuery

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    media = {"cases.geojson": "application/geo+json", "cases.csv": "text/csv", "grids.geojson": "application/geo+json",
             "grids.gpkg": "application/geopackage+sqlite3", "patrols.geojson": "application/geo+json"}
    queries = {"cases": CaseExportQuery, "grids": GridExportQuery, "patrols": PatrolExportQuery}
    for name, media_type in media.items():
        op = spec["paths"][f"{PREFIX}/{name}"]["get"]
        assert list(op["responses"]["200"]["content"]) == [media_type], name
        params = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        schema = queries[name.split(".")[0]]
        assert params == {f.data_key or n for n, f in schema().load_fields.items()}, name
    case_params = {p["name"] for p in spec["paths"][f"{PREFIX}/cases.csv"]["get"]["parameters"]}
    listed_params = {p["name"] for p in spec["paths"]["/api/v1/cases"]["get"]["parameters"]}
    assert case_params == listed_params - {"page", "per_page"}
    patrol_params = {p["name"] for p in spec["paths"][f"{PREFIX}/patrols.geojson"]["get"]["parameters"]}
    assert patrol_params == set(PatrolQuery().load_fields)  # the query of GET /patrols
