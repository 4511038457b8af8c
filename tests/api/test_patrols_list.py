"""The patrols of a day for supervisors and dispatchers, with their tracks; and a retried start of a
patrol that answers the same patrol again."""
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from gridpatrol.core.db import clock_at
from gridpatrol.core.geo import distance_m

SHANGHAI = timezone(timedelta(hours=8))


def at(hhmm: str, day="2026-03-10") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+08:00")


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def walk(api, points, when, end=True):
    """A patrol started at `when` (the server's clock set there) along `points` [(lon, lat), …], a minute apart."""
    with clock_at(when):
        r = api.post("/api/v1/patrols", json={})
        assert r.status_code == 201, r.get_json()
        patrol = r.get_json()
        batch = [{"lon": lon, "lat": lat, "accuracy_m": 5, "recorded_at": (when + timedelta(minutes=i)).isoformat()}
                 for i, (lon, lat) in enumerate(points)]
        if batch:
            assert api.post(f"/api/v1/patrols/{patrol['id']}/points", json={"seq": 1, "points": batch}
                            ).status_code == 200
        if end:
            r = api.post(f"/api/v1/patrols/{patrol['id']}/end", json={})
            assert r.status_code == 200, r.get_json()
            patrol = r.get_json()
    return patrol


def coordinates(line):
    """A GeoJSON line's positions, flat: [lon0, lat0, lon1, lat1, …]."""
    assert all(len(position) == 2 for position in line["coordinates"])
    return [c for position in line["coordinates"] for c in position]


def patrols(api, expect=200, **query):
    r = api.get(f"/api/v1/patrols?{urlencode(query)}")
    assert r.status_code == expect, r.get_json()
    return r.get_json()["items"] if expect == 200 else r.get_json()


@pytest.fixture
def day(make_user, district):
    """On 10 March: a finished walk over grids 0 → 1 → 2, a patrol still running (0 → 3), another inspector's
    walk over grid 8; on 11 March another walk."""
    code, p = district["code"], district["point"]
    walker = make_user("inspector", scope=[code])
    other = make_user("inspector", scope=[code])
    done = walk(walker, [p(0), p(1), p(2)], at("09:00"))
    running = walk(walker, [p(0), p(3)], at("14:00"), end=False)
    theirs = walk(other, [p(8)], at("10:00"))
    next_day = walk(walker, [p(4), p(5)], at("09:00", "2026-03-11"))
    return {"walker": walker, "other": other, "done": done, "running": running, "theirs": theirs,
            "next_day": next_day, "code": code, "grids": district["grids"], "point": p}


def test_the_patrols_of_a_day_with_their_tracks(day, make_user):
    supervisor = make_user("supervisor", scope=[day["code"]])
    items = patrols(supervisor, date="2026-03-10")
    assert [i["id"] for i in items] == [day["done"]["id"], day["theirs"]["id"], day["running"]["id"]]
    done, theirs, running = items
    p = day["point"]
    assert done["inspector_id"] == day["walker"].id and done["inspector_name"] == day["walker"].username
    assert datetime.fromisoformat(done["started_at"]) == at("09:00")
    assert datetime.fromisoformat(done["ended_at"]) == at("09:00")
    assert done["grid_codes"] == day["grids"][:3] == day["done"]["grid_codes"]
    assert done["length_m"] == day["done"]["length_m"] and done["length_m"] > 150
    assert done["track"]["type"] == "LineString"
    assert coordinates(done["track"]) == pytest.approx([*p(0), *p(1), *p(2)])
    # a single fix makes no line
    assert theirs["inspector_id"] == day["other"].id and theirs["track"] is None and theirs["length_m"] == 0
    assert theirs["grid_codes"] == [day["grids"][8]]
    # the running patrol shows its track so far; its grids come when it ends
    assert running["ended_at"] is None and running["grid_codes"] == []
    assert running["track"]["type"] == "LineString"
    assert coordinates(running["track"]) == pytest.approx([*p(0), *p(3)])
    expected = distance_m(*p(0), *p(3))
    assert abs(running["length_m"] - expected) / expected < 0.01
    assert [i["id"] for i in patrols(supervisor, date="2026-03-11")] == [day["next_day"]["id"]]
    assert patrols(supervisor, date="2026-03-12") == []


def test_the_day_is_the_local_day(app, make_user, district):
    code, p = district["code"], district["point"]
    walker = make_user("inspector", scope=[code])
    late = walk(walker, [p(4)], datetime(2026, 4, 1, 16, 30, tzinfo=timezone.utc))  # 00:30 on 2 April in Shanghai
    supervisor = make_user("supervisor", scope=[code])
    assert patrols(supervisor, date="2026-04-01") == []
    assert [i["id"] for i in patrols(supervisor, date="2026-04-02")] == [late["id"]]


def test_filters_by_inspector_and_area(day, make_user):
    dispatcher = make_user("dispatcher", scope=[day["code"]])
    mine = patrols(dispatcher, date="2026-03-10", inspector=day["walker"].id)
    assert [i["id"] for i in mine] == [day["done"]["id"], day["running"]["id"]]
    assert [i["id"] for i in patrols(dispatcher, date="2026-03-10", inspector=day["other"].id)] == [day["theirs"]["id"]]
    assert patrols(dispatcher, date="2026-03-10", inspector=999999999) == []
    # by a grid visited
    assert [i["id"] for i in patrols(dispatcher, date="2026-03-10", area=day["grids"][8])] == [day["theirs"]["id"]]
    assert [i["id"] for i in patrols(dispatcher, date="2026-03-10", area=day["grids"][1])] == [day["done"]["id"]]
    # by the district: every one, the running patrol by its inspector's scope
    assert len(patrols(dispatcher, date="2026-03-10", area=day["code"])) == 3


def test_patrols_outside_the_scope_do_not_exist(day, make_user):
    outsider = make_user("supervisor", "dispatcher", scope=["310199"])
    ids = {i["id"] for i in patrols(outsider, date="2026-03-10")}
    assert not ids & {day["done"]["id"], day["running"]["id"], day["theirs"]["id"]}
    r = patrols(outsider, expect=404, date="2026-03-10", area=day["code"])
    assert r["status"] == 404
    # the inspector's own patrols are not reachable by naming them either
    assert patrols(outsider, date="2026-03-10", inspector=day["walker"].id) == []


def test_a_narrower_scope_sees_the_patrols_in_it_and_only_its_grids(day, make_user):
    one_grid = make_user("supervisor", scope=[day["grids"][1]])
    items = patrols(one_grid, date="2026-03-10")
    # the walk over grids 0, 1, 2 crossed it; the others did not, nor is their inspector's scope inside it
    assert [i["id"] for i in items] == [day["done"]["id"]]
    assert items[0]["grid_codes"] == [day["grids"][1]]


@pytest.mark.parametrize("roles", [("inspector",), ("handler",), ("admin",)])
def test_the_list_is_for_supervisors_and_dispatchers(make_user, district, roles):
    r = make_user(*roles, scope=[district["code"]]).get("/api/v1/patrols?date=2026-03-10")
    assert r.status_code == 403 and r.mimetype == "application/problem+json"


def test_the_list_needs_a_signed_in_user(anon):
    assert anon.get("/api/v1/patrols?date=2026-03-10").status_code == 401


@pytest.mark.parametrize("query, field", [("", "date"), ("date=yesterday", "date"), ("date=2026-02-30", "date"),
                                          ("date=2026-03-10&area=12", "area"),
                                          ("date=2026-03-10&inspector=abc", "inspector"),
                                          ("date=2026-03-10&inspector=0", "inspector")])
def test_bad_list_queries_are_422(make_user, query, field):
    r = make_user("supervisor").get(f"/api/v1/patrols?{query}")
    assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()


# ------------------------------------------------------------------ starting a patrol exactly once

def count(app, inspector_id):
    return sql(app, "SELECT count(*) FROM patrols WHERE inspector_id = :id", id=inspector_id)[0][0]


def start(api, key=None, body=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/api/v1/patrols", json=body if body is not None else {}, headers=headers)


def test_a_retried_start_answers_the_same_patrol(app, make_user):
    api = make_user("inspector")
    key = str(uuid.uuid4())
    first = start(api, key)
    assert first.status_code == 201, first.get_json()
    again = start(api, key)
    assert again.status_code == 201 and again.get_data() == first.get_data()
    assert count(app, api.id) == 1
    # a new key is a new patrol
    other = start(api, str(uuid.uuid4()))
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert count(app, api.id) == 2


def test_without_a_key_every_start_is_a_new_patrol(app, make_user):
    api = make_user("inspector")
    ids = {start(api).get_json()["id"] for _ in range(2)}
    assert len(ids) == 2 and count(app, api.id) == 2
    assert api.post("/api/v1/patrols").status_code == 201 and count(app, api.id) == 3


def test_the_same_key_with_another_body_is_422(app, make_user):
    api = make_user("inspector")
    key = str(uuid.uuid4())
    assert start(api, key, {"client_time": "2026-03-10T09:00:00+08:00"}).status_code == 201
    r = start(api, key, {"client_time": "2026-03-10T09:05:00+08:00"})
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"]
    assert count(app, api.id) == 1


def test_a_key_belongs_to_its_caller_and_its_endpoint(app, make_user, district):
    one, two = make_user("inspector", scope=[district["code"]]), make_user("inspector", scope=[district["code"]])
    key = str(uuid.uuid4())
    a, b = start(one, key), start(two, key)
    assert a.status_code == b.status_code == 201 and a.get_json()["id"] != b.get_json()["id"]
    assert count(app, one.id) == count(app, two.id) == 1
    # the key of a report is not the key of a patrol
    reported = str(uuid.uuid4())
    lon, lat = district["point"](0)
    one.report(key=reported, lon=lon, lat=lat)
    r = start(one, reported)
    assert r.status_code == 422 and count(app, one.id) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\x01key"])
def test_a_malformed_key_is_400_and_starts_nothing(app, make_user, key):
    api = make_user("inspector")
    r = start(api, key)
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert "Idempotency-Key" in r.get_json()["errors"] and count(app, api.id) == 0


def test_the_openapi_document_describes_the_list_and_the_optional_key(app):
    from gridpatrol.patrols.schemas import PatrolQuery

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    item = spec["paths"]["/api/v1/patrols"]
    params = {p["name"]: p for p in item["get"]["parameters"] if p["in"] == "query"}
    assert set(params) == set(PatrolQuery().load_fields) and params["date"]["required"] is True
    header = [p for p in item["post"]["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("Idempotency-Key", False)]
    listed = spec["components"]["schemas"][item["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"].rsplit("/", 1)[1]]
    row = spec["components"]["schemas"][listed["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"id", "inspector_id", "inspector_name", "started_at", "ended_at", "length_m", "grid_codes",
            "track"} <= set(row["properties"])
