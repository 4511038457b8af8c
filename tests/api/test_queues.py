"""The dispatcher's queues, nearby duplicates, the timeline's names, and one-time evidence."""
import uuid

import pytest
from sqlalchemy import text

from helpers import libpq


QUEUES = ("register", "dispatch", "returned", "extensions", "overdue", "escalated")


@pytest.fixture
def crew(make_user, make_team, district):
    team = make_team(area_codes=[district["code"]])
    scope = [district["code"]]
    return {
        "team": team,
        "inspector": make_user("inspector", scope=scope),
        "verifier": make_user("inspector", scope=scope),
        "dispatcher": make_user("dispatcher", scope=scope),
        "handler": make_user("handler", scope=scope, teams=[team]),
        "supervisor": make_user("supervisor", scope=scope),
        "district": district,
    }


def _report(crew, i=4, **kw):
    lon, lat = crew["district"]["point"](i)
    return crew["inspector"].report(lon=lon, lat=lat, **kw)


def test_queue_counts_match_the_queue_lists(crew, app):
    d, h = crew["dispatcher"], crew["handler"]
    _report(crew)                                              # register
    registered = _report(crew)
    d.act(registered["id"], "register")                         # dispatch
    returned = _report(crew)
    d.act(returned["id"], "register")
    d.act(returned["id"], "dispatch", {"team_id": crew["team"]})
    h.act(returned["id"], "return", {"reason_code": "not_competent", "note": "not ours"})   # returned
    asked = _report(crew)
    d.act(asked["id"], "register")
    d.act(asked["id"], "dispatch", {"team_id": crew["team"]})
    h.act(asked["id"], "request_extension", {"hours": 4, "reason": "waiting for parts"})   # extensions
    pressed = _report(crew)
    crew["supervisor"].act(pressed["id"], "escalate", {"level": 2, "note": "hurry"})       # escalated (+ register)
    late = _report(crew)
    with app.app_context():
        from gridpatrol.extensions import db
        db.session.execute(text("UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = :i"),
                           {"i": late["id"]})
        db.session.commit()

    counts = d.get("/api/v1/cases/queue-counts").get_json()
    assert counts == {"register": 3, "dispatch": 1, "returned": 1, "extensions": 1, "overdue": 1, "escalated": 1}
    for name in QUEUES:
        # a page holding them all (its own total), and a page of one (counted as the queue counts are)
        for per_page in (500, 1):
            listed = d.get(f"/api/v1/cases?queue={name}&per_page={per_page}").get_json()
            assert listed["total"] == counts[name], (name, per_page)
    ids = {c["id"] for c in d.get("/api/v1/cases?queue=escalated").get_json()["items"]}
    assert ids == {pressed["id"]}


def test_queue_counts_are_scoped(crew, make_user):
    _report(crew)
    outsider = make_user("dispatcher", scope=["320102"])
    assert outsider.get("/api/v1/cases/queue-counts").get_json() == dict.fromkeys(QUEUES, 0)


def test_the_overdue_count_reads_each_grids_kept_deadlines_and_counts_cases_without_a_grid(crew, app, make_user):
    late_in_grid = _report(crew, i=4)
    _report(crew, i=4)                                          # on time
    lon, lat = crew["district"]["point"](4)
    late_outside = crew["inspector"].report(lon=lon - 0.01, lat=lat)   # ~1 km out: no grid
    assert late_outside["grid_code"] is None and late_in_grid["grid_code"]
    from gridpatrol.extensions import db

    def sql(statement, **params):
        with app.app_context():
            db.session.execute(text(statement), params)
            db.session.commit()

    sql("UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id IN (:a, :b)",
        a=late_in_grid["id"], b=late_outside["id"])
    d = crew["dispatcher"]
    street = make_user("dispatcher", scope=[late_in_grid["grid_code"][:9]])
    for user, expected in ((d, 2), (street, 1), (make_user("dispatcher", scope=["320102"]), 0)):
        assert user.get("/api/v1/cases/queue-counts").get_json()["overdue"] == expected
        for per_page in (50, 1):
            assert user.get(f"/api/v1/cases?queue=overdue&per_page={per_page}").get_json()["total"] == expected
    # the grid's count is its kept deadlines: a spoiled row shows, and the recount mends it
    sql("UPDATE grid_open_cases SET deadlines = '{}' WHERE grid_code = :g", g=late_in_grid["grid_code"])
    assert d.get("/api/v1/cases/queue-counts").get_json()["overdue"] == 1
    # a full page's total reads the kept deadlines too (two overdue cases, one a page)
    assert d.get("/api/v1/cases?queue=overdue&per_page=1").get_json()["total"] == 1
    assert street.get("/api/v1/cases/queue-counts").get_json()["overdue"] == 0
    with app.app_context():
        from gridpatrol.cases import services
        assert services.recount() >= 1
        db.session.commit()
    assert d.get("/api/v1/cases/queue-counts").get_json()["overdue"] == 2


def test_unknown_queue_is_422(crew):
    r = crew["dispatcher"].get("/api/v1/cases?queue=lunch")
    assert r.status_code == 422 and "queue" in r.get_json()["errors"]


def test_duplicates_are_open_same_category_near_in_time(crew, app):
    d = crew["dispatcher"]
    lon, lat = crew["district"]["point"](4)
    first = crew["inspector"].report(lon=lon, lat=lat, category_code="0701")
    near = crew["inspector"].report(lon=lon + 0.0002, lat=lat, category_code="0701")      # ~19 m east
    other_kind = crew["inspector"].report(lon=lon, lat=lat, category_code="0702")
    far = crew["inspector"].report(lon=lon + 0.0009, lat=lat, category_code="0701")       # ~86 m
    closed = crew["inspector"].report(lon=lon, lat=lat + 0.0001, category_code="0701")
    d.act(closed["id"], "reject", {"reason": "not a problem"})
    old = crew["inspector"].report(lon=lon, lat=lat, category_code="0701")
    with app.app_context():
        from gridpatrol.extensions import db
        db.session.execute(text("UPDATE cases SET reported_at = reported_at - interval '3 days' WHERE id = :i"),
                           {"i": old["id"]})
        db.session.commit()

    found = d.get(f"/api/v1/cases/{first['id']}/duplicates").get_json()["items"]
    assert [c["id"] for c in found] == [near["id"]]
    assert 15 < found[0]["distance_m"] < 25
    wider = d.get(f"/api/v1/cases/{first['id']}/duplicates?radius_m=200&hours=100").get_json()["items"]
    assert [c["id"] for c in wider] == [old["id"], near["id"], far["id"]]  # nearest first
    assert other_kind["id"] not in {c["id"] for c in wider} and closed["id"] not in {c["id"] for c in wider}
    assert [c["distance_m"] for c in wider] == sorted(c["distance_m"] for c in wider)


def test_duplicates_roles_scope_and_bounds(crew, make_user):
    case = _report(crew)
    assert crew["inspector"].get(f"/api/v1/cases/{case['id']}/duplicates").status_code == 403
    assert make_user("dispatcher", scope=["320102"]).get(f"/api/v1/cases/{case['id']}/duplicates").status_code == 404
    r = crew["dispatcher"].get(f"/api/v1/cases/{case['id']}/duplicates?radius_m=5000")
    assert r.status_code == 422 and "radius_m" in r.get_json()["errors"]


def test_the_timeline_names_who_acted_and_which_team(crew):
    case = _report(crew)
    crew["dispatcher"].act(case["id"], "register")
    crew["dispatcher"].act(case["id"], "dispatch", {"team_id": crew["team"]})
    crew["handler"].act(case["id"], "accept")
    events = crew["dispatcher"].get(f"/api/v1/cases/{case['id']}/events").get_json()["items"]
    assert [e["actor_name"] for e in events] == [crew["inspector"].username, crew["dispatcher"].username,
                                                  crew["dispatcher"].username, crew["handler"].username]
    assert events[-1]["team_name"] and events[-1]["team_id"] == crew["team"]


def test_a_rejected_after_photo_cannot_be_sent_again(crew):
    d, h, v = crew["dispatcher"], crew["handler"], crew["verifier"]
    case = _report(crew)
    d.act(case["id"], "register")
    d.act(case["id"], "dispatch", {"team_id": crew["team"]})
    h.act(case["id"], "accept")
    after = h.photo(case["id"], "after")["id"]
    h.act(case["id"], "handle", {"note": "done", "photo_ids": [after]})
    v.act(case["id"], "verify_fail", {"reason": "still there"})
    h.act(case["id"], "accept")
    r = h.post(f"/api/v1/cases/{case['id']}/actions/handle", json={"note": "done again", "photo_ids": [after]},
               headers={"If-Match": f'"{h.case(case["id"])["version"]}"'})
    assert r.status_code == 422 and "photo_ids" in r.get_json()["errors"]
    fresh = h.photo(case["id"], "after")["id"]
    assert h.act(case["id"], "handle", {"note": "done again", "photo_ids": [fresh]})["status"] == "handled"


def test_other_media_types_are_415_and_unknown_filters_422(crew):
    d = crew["dispatcher"]
    r = d.post("/api/v1/teams", data="name=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.content_type == "application/problem+json"
    r = d.get("/api/v1/cases?stauts=closed")
    assert r.status_code == 422 and r.get_json()["errors"] == {"stauts": ["Unknown field."]}


def test_an_in_flight_idempotency_conflict_says_when_to_retry(crew, app, monkeypatch):
    """A key whose first request has not finished yet: 409 with Retry-After (not "not allowed")."""
    import psycopg

    key = str(uuid.uuid4())
    url = libpq(app.config["SQLALCHEMY_DATABASE_URI"])
    with psycopg.connect(url) as conn:
        # another request with the key, in flight: its claim taken, not yet committed
        assert conn.execute("SELECT * FROM idempotency_claim(%s, %s, '0')", (crew["inspector"].id, key)).fetchall() == []
        monkeypatch.setitem(app.config, "IDEMPOTENCY_WAIT_MS", 200)
        lon, lat = crew["district"]["point"](0)
        r = crew["inspector"].post("/api/v1/reports", json={
            "category_code": "0701", "lon": lon, "lat": lat, "observed_at": "2026-11-26T09:00:00+08:00"},
            headers={"Idempotency-Key": key})
    assert r.status_code == 409 and r.headers["Retry-After"] == "1"


def test_a_repeat_of_an_answered_key_is_replayed_while_another_repeat_is_in_flight(app, crew, monkeypatch):
    """A key answered before is replayed at once: repeats of one key do not queue on its claim."""
    import psycopg

    key = str(uuid.uuid4())
    lon, lat = crew["district"]["point"](0)
    report = {"category_code": "0701", "lon": lon, "lat": lat, "observed_at": "2026-11-26T09:00:00+08:00"}
    first = crew["inspector"].post("/api/v1/reports", json=report, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    url = libpq(app.config["SQLALCHEMY_DATABASE_URI"])
    with psycopg.connect(url) as conn:
        # another repeat in flight, holding the key's claim
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (crew["inspector"].id, key))
        monkeypatch.setitem(app.config, "IDEMPOTENCY_WAIT_MS", 200)
        again = crew["inspector"].post("/api/v1/reports", json=report, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.get_data() == first.get_data()
