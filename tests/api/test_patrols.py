"""Patrols: ordered batches of GPS points, the track, the grids it visited, and coverage per day."""
from datetime import datetime, timedelta, timezone

import pytest

from gridpatrol.core.geo import distance_m

SHANGHAI = timezone(timedelta(hours=8))


def at(hhmm: str, day="2026-03-10") -> str:
    return f"{day}T{hhmm}:00+08:00"


def pts(*coords_and_times):
    return [{"lon": lon, "lat": lat, "accuracy_m": 5, "recorded_at": t} for (lon, lat), t in coords_and_times]


def start(api):
    r = api.post("/api/v1/patrols", json={})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def send(api, patrol_id, seq, points, expect=200):
    r = api.post(f"/api/v1/patrols/{patrol_id}/points", json={"seq": seq, "points": points})
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def end(api, patrol_id, expect=200):
    r = api.post(f"/api/v1/patrols/{patrol_id}/end", json={})
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def haversine_length(points):
    return sum(distance_m(a["lon"], a["lat"], b["lon"], b["lat"]) for a, b in zip(points, points[1:]))


# ------------------------------------------------------------------ the track

def test_only_inspectors_start_patrols(make_user):
    for roles in (("dispatcher",), ("supervisor",), ("handler",), ("admin",)):
        assert make_user(*roles).post("/api/v1/patrols", json={}).status_code == 403, roles
    api = make_user("inspector")
    patrol = start(api)
    assert isinstance(patrol["id"], int)
    started = datetime.fromisoformat(patrol["started_at"])
    assert started.tzinfo is not None and abs(datetime.now(timezone.utc) - started) < timedelta(minutes=5)
    assert patrol["ended_at"] is None and patrol["grid_codes"] == []


def test_a_patrol_starts_without_a_body(make_user):
    r = make_user("inspector").post("/api/v1/patrols")
    assert r.status_code == 201, r.get_json()


def test_a_walk_across_grids_gives_its_grids_and_length(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    p = district["point"]
    patrol = start(api)
    first = pts((p(0), at("10:00")), (p(1), at("10:05")))
    second = pts((p(2), at("10:10")), (p(5), at("10:15")))
    assert send(api, patrol["id"], 1, first) == {"patrol_id": patrol["id"], "seq": 1, "stored": 2,
                                                  "duplicate": False, "points": 2}
    assert send(api, patrol["id"], 2, second)["points"] == 4
    done = end(api, patrol["id"])
    assert done["id"] == patrol["id"] and done["ended_at"] is not None
    assert done["grid_codes"] == [district["grids"][i] for i in (0, 1, 2, 5)]
    expected = haversine_length(first + second)
    assert expected > 250
    assert abs(done["length_m"] - expected) / expected < 0.05


def test_batches_are_ordered_by_seq_not_by_arrival(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    p = district["point"]
    patrol = start(api)
    # the second batch arrives first; the track still runs 0 → 2 → 6
    send(api, patrol["id"], 2, pts((p(6), at("10:10"))))
    send(api, patrol["id"], 1, pts((p(0), at("10:00")), (p(2), at("10:05"))))
    done = end(api, patrol["id"])
    ordered = pts((p(0), 0), (p(2), 0), (p(6), 0))
    assert abs(done["length_m"] - haversine_length(ordered)) / haversine_length(ordered) < 0.05
    # 0 → 2 crosses 1; 2 → 6 runs diagonally through 4
    assert set(done["grid_codes"]) >= {district["grids"][i] for i in (0, 1, 2, 4, 6)}


def test_a_repeated_seq_is_a_no_op(app, make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    p = district["point"]
    patrol = start(api)
    batch = pts((p(0), at("10:00")), (p(1), at("10:01")))
    send(api, patrol["id"], 7, batch)
    again = send(api, patrol["id"], 7, batch)
    assert again["duplicate"] is True and again["stored"] == 0 and again["points"] == 2
    # even with other points under the same seq (a confused client): nothing is added
    other = send(api, patrol["id"], 7, pts((p(8), at("10:02"))))
    assert other["duplicate"] is True and other["points"] == 2
    assert end(api, patrol["id"])["grid_codes"] == district["grids"][:2]


def test_points_after_the_end_are_409_but_a_retried_batch_is_still_a_no_op(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    p = district["point"]
    patrol = start(api)
    batch = pts((p(0), at("10:00")))
    send(api, patrol["id"], 1, batch)
    first_end = end(api, patrol["id"])
    r = api.post(f"/api/v1/patrols/{patrol['id']}/points", json={"seq": 2, "points": pts((p(1), at("10:05")))})
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    assert send(api, patrol["id"], 1, batch)["duplicate"] is True
    # ending again changes nothing
    assert end(api, patrol["id"]) == first_end


def test_a_single_point_patrol_visits_its_grid_with_no_length(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    patrol = start(api)
    send(api, patrol["id"], 1, pts((district["point"](4), at("10:00"))))
    done = end(api, patrol["id"])
    assert done["grid_codes"] == [district["grids"][4]] and done["length_m"] == 0


def test_an_empty_patrol_ends_with_nothing(make_user):
    api = make_user("inspector")
    done = end(api, start(api)["id"])
    assert done["grid_codes"] == [] and done["length_m"] == 0


def test_another_inspectors_patrol_does_not_exist(make_user, district):
    owner = make_user("inspector", scope=[district["code"]])
    patrol = start(owner)
    other = make_user("inspector", scope=[district["code"]])
    batch = {"seq": 1, "points": pts((district["point"](0), at("10:00")))}
    assert other.post(f"/api/v1/patrols/{patrol['id']}/points", json=batch).status_code == 404
    assert other.post(f"/api/v1/patrols/{patrol['id']}/end", json={}).status_code == 404
    assert other.post("/api/v1/patrols/999999999/end", json={}).status_code == 404
    # nothing was stored on the owner's patrol
    assert send(owner, patrol["id"], 1, batch["points"])["stored"] == 1


@pytest.mark.parametrize("body", [
    {"seq": 1, "points": []},
    {"seq": 1},
    {"points": [{"lon": 100, "lat": 30, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": -1, "points": [{"lon": 100, "lat": 30, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": 1, "points": [{"lon": 200, "lat": 30, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": 1, "points": [{"lon": 100, "lat": 95, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": 1, "points": [{"lon": 100, "lat": 30}]},
    {"seq": 1, "points": [{"lon": 100, "lat": 30, "recorded_at": "2026-03-10T10:00:00"}]},
    {"seq": 1, "points": [{"lon": "east", "lat": 30, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": 1, "points": [{"lon": 100, "lat": 30, "accuracy_m": -3, "recorded_at": "2026-03-10T10:00:00+08:00"}]},
    {"seq": 1, "points": [{"lon": 100, "lat": 30, "recorded_at": "2026-03-10T10:00:00+08:00", "speed": 3}]},
    {"seq": 1, "points": "everywhere"},
])
def test_bad_batches_are_422(make_user, body):
    api = make_user("inspector")
    patrol = start(api)
    r = api.post(f"/api/v1/patrols/{patrol['id']}/points", json=body)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json" and r.get_json()["errors"]
    assert end(api, patrol["id"])["length_m"] == 0


@pytest.mark.parametrize("raw", ['{"seq": 1, "points": [{"lon": NaN, "lat": 30, '
                                 '"recorded_at": "2026-03-10T10:00:00+08:00"}]}',
                                 '{"seq": 1, "points": [{"lon": 100, "lat": Infinity, '
                                 '"recorded_at": "2026-03-10T10:00:00+08:00"}]}'])
def test_nan_and_infinite_coordinates_are_422(make_user, raw):
    api = make_user("inspector")
    patrol = start(api)
    r = api.post(f"/api/v1/patrols/{patrol['id']}/points", data=raw, content_type="application/json")
    assert r.status_code == 422, r.get_json()


def test_malformed_json_is_400(make_user):
    api = make_user("inspector")
    patrol = start(api)
    r = api.post(f"/api/v1/patrols/{patrol['id']}/points", data='{"seq": 1, "points": [',
                 content_type="application/json")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"


# ------------------------------------------------------------------ coverage

def test_coverage_per_grid_for_a_day(make_user, district):
    code, grids, p = district["code"], district["grids"], district["point"]
    walker = make_user("inspector", scope=[code], grid_codes=[grids[0], grids[1], grids[3]])
    idle = make_user("inspector", scope=[code], grid_codes=[grids[3], grids[8]])
    make_user("dispatcher", scope=[code], grid_codes=[grids[7]])  # not an inspector: no responsibility
    gone = make_user("inspector", scope=[code], grid_codes=[grids[5], grids[3]])
    admin = make_user("admin", scope=[code])
    r = admin.client.patch(f"/api/v1/users/{gone.id}", json={"active": False}, headers=admin._headers(None))
    assert r.status_code == 200, r.get_json()   # deactivated: responsible for nothing any more
    patrol = start(walker)
    send(walker, patrol["id"], 1, pts((p(0), at("09:00")), (p(0), at("09:30")), (p(2), at("09:40"))))
    end(walker, patrol["id"])
    # the next day's patrol does not count for this day
    later = start(walker)
    send(walker, later["id"], 1, pts((p(8), at("09:00", day="2026-03-11"))))
    end(walker, later["id"])

    supervisor = make_user("supervisor", scope=[code])
    r = supervisor.get(f"/api/v1/patrols/coverage?date=2026-03-10&area={code}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["date"] == "2026-03-10" and body["area"] == code
    by_code = {g["code"]: g for g in body["grids"]}
    assert list(by_code) == grids
    assert [c for c, g in by_code.items() if g["visited"]] == [grids[0], grids[1], grids[2]]
    assert by_code[grids[0]]["responsible"] == [walker.id]
    assert by_code[grids[3]]["responsible"] == sorted([walker.id, idle.id])
    assert by_code[grids[7]]["responsible"] == [] and by_code[grids[2]]["responsible"] == []
    assert by_code[grids[5]]["responsible"] == []
    visit = by_code[grids[0]]["visits"][0]
    assert visit["inspector_id"] == walker.id
    assert datetime.fromisoformat(visit["first_at"]) == datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI)
    # grid 1 was only crossed between two fixes: it was entered after the fix of 09:30
    crossed = datetime.fromisoformat(by_code[grids[1]]["visits"][0]["first_at"])
    assert datetime(2026, 3, 10, 9, 30, tzinfo=SHANGHAI) <= crossed <= datetime(2026, 3, 10, 9, 40, tzinfo=SHANGHAI)
    assert by_code[grids[8]]["visited"] is False and by_code[grids[8]]["visits"] == []
    # responsibility grids 0, 1, 3, 8: two of the four visited
    assert body["responsibility_grids"] == 4 and body["visited"] == 2 and body["coverage_rate"] == 0.5

    # `*` (everywhere) as the area is the caller's whole scope, as no area is
    assert supervisor.get("/api/v1/patrols/coverage?date=2026-03-10&area=*").get_json()["grids"] == body["grids"]
    next_day = supervisor.get(f"/api/v1/patrols/coverage?date=2026-03-11&area={code}").get_json()
    assert [g["code"] for g in next_day["grids"] if g["visited"]] == [grids[8]]
    assert next_day["visited"] == 1 and next_day["coverage_rate"] == 0.25


def test_a_patrol_after_local_midnight_counts_for_the_local_day(make_user, district):
    code, p = district["code"], district["point"]
    walker = make_user("inspector", scope=[code])
    patrol = start(walker)
    send(walker, patrol["id"], 1, pts((p(4), "2026-04-01T16:30:00+00:00")))  # 00:30 on 2 April in Shanghai
    end(walker, patrol["id"])
    dispatcher = make_user("dispatcher", scope=[code])
    day1 = dispatcher.get(f"/api/v1/patrols/coverage?date=2026-04-01&area={code}").get_json()
    day2 = dispatcher.get(f"/api/v1/patrols/coverage?date=2026-04-02&area={code}").get_json()
    assert not any(g["visited"] for g in day1["grids"])
    assert [g["code"] for g in day2["grids"] if g["visited"]] == [district["grids"][4]]


def test_coverage_defaults_to_the_callers_scope(make_user, district):
    supervisor = make_user("supervisor", scope=[district["code"]])
    body = supervisor.get("/api/v1/patrols/coverage?date=2026-03-10").get_json()
    assert [g["code"] for g in body["grids"]] == district["grids"]


def test_coverage_is_for_supervisors_and_dispatchers(make_user, district):
    for roles in (("inspector",), ("handler",), ("admin",)):
        api = make_user(*roles, scope=[district["code"]])
        assert api.get(f"/api/v1/patrols/coverage?date=2026-03-10&area={district['code']}").status_code == 403


def test_coverage_outside_scope_shows_nothing(make_user, district):
    outsider = make_user("supervisor", scope=["310199"])
    r = outsider.get(f"/api/v1/patrols/coverage?date=2026-03-10&area={district['code']}")
    assert r.status_code == 404 or r.get_json()["grids"] == []
    body = outsider.get("/api/v1/patrols/coverage?date=2026-03-10").get_json()
    assert not any(g["code"].startswith(district["code"]) for g in body["grids"])


def test_coverage_of_a_larger_area_is_limited_to_the_scope(make_user, district):
    street = make_user("supervisor", scope=[f"{district['code']}001"])
    r = street.get(f"/api/v1/patrols/coverage?date=2026-03-10&area={district['code']}")
    assert r.status_code == 200, r.get_json()
    assert [g["code"] for g in r.get_json()["grids"]] == district["grids"]


@pytest.mark.parametrize("query", ["", "date=yesterday", "date=2026-02-30", "date=2026-03-10&area=12"])
def test_bad_coverage_queries_are_422(make_user, query):
    r = make_user("supervisor").get(f"/api/v1/patrols/coverage?{query}")
    assert r.status_code == 422, r.get_json()
