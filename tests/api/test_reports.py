"""POST /reports: the grid from the point, validation, and exactly-once writes by Idempotency-Key."""
import json
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from helpers import sql

PROBLEM = "application/problem+json"


@pytest.fixture
def inspector(district, make_user):
    return make_user("inspector", scope=[district["code"]])


def body_at(district, i=4, **extra):
    lon, lat = district["point"](i)
    body = {"category_code": "0701", "description": "exposed garbage", "lon": lon, "lat": lat, "accuracy_m": 5,
            "observed_at": "2026-11-26T09:00:00+08:00"}
    body.update(extra)
    return body


def post(api, body, key=None, raw=None):
    """POST /reports with a JSON body (or raw text), the key given (None: a fresh one, False: none)."""
    headers = {} if key is False else {"Idempotency-Key": key or str(uuid.uuid4())}
    if raw is not None:
        return api.post("/api/v1/reports", data=raw, content_type="application/json", headers=headers)
    return api.post("/api/v1/reports", json=body, headers=headers)


def db_counts(app, user_id=None) -> dict:
    from gridpatrol.extensions import db
    with app.app_context():
        row = db.session.execute(text(
            "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM case_events),"
            " (SELECT count(*) FROM idempotency_keys)")).one()
        return {"cases": row[0], "events": row[1], "keys": row[2]}


def key_recorded(app, user_id, key) -> bool:
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text("SELECT count(*) FROM idempotency_keys WHERE user_id = :u AND key = :k"),
                                  {"u": user_id, "k": key}).scalar_one() == 1


def problem(r, status, field=None):
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.headers["Content-Type"].startswith(PROBLEM)
    body = r.get_json()
    assert body["status"] == status
    if field is not None:  # a list names its item: "location_flags.0"
        assert field in {name.split(".")[0] for name in body["errors"]}, body
    return body


# ---------------------------------------------------------------- a report becomes a case

def test_a_report_is_a_new_case(app, district, inspector):
    r = post(inspector, body_at(district, 4, urgency="A", address="南京西路 1 号"))
    assert r.status_code == 201, r.get_json()
    case = r.get_json()
    assert r.headers["Location"] == f"/api/v1/cases/{case['id']}"
    assert r.headers["Content-Type"].startswith("application/json")
    assert case["status"] == "reported" and case["version"] == 1 and case["source"] == "inspector"
    assert case["reporter_id"] == inspector.id and case["urgency"] == "A" and case["category_code"] == "0701"
    assert case["grid_code"] == district["grids"][4]
    assert case["street_code"] == district["code"] + "001" and case["community_code"] == district["code"] + "001001"
    assert case["location_flags"] == []
    lon, lat = district["point"](4)
    assert case["location"] == {"lon": pytest.approx(lon), "lat": pytest.approx(lat), "accuracy_m": 5}
    assert case["address"] == "南京西路 1 号"
    assert datetime.fromisoformat(case["observed_at"]) == datetime.fromisoformat("2026-11-26T09:00:00+08:00")
    assert case["deadlines"]["register"] is not None and case["timer"] in {"green", "yellow", "red"}
    assert inspector.case(case["id"]) == case
    events = inspector.get(f"/api/v1/cases/{case['id']}/events").get_json()["items"]
    assert [(e["seq"], e["action"], e["from_status"], e["to_status"], e["actor_id"]) for e in events] == [
        (1, "report", None, "reported", inspector.id)]


def test_the_number_is_the_local_date_and_a_sequence(district, inspector):
    numbers = []
    for _ in range(2):
        case = post(inspector, body_at(district)).get_json()
        assert re.fullmatch(r"\d{8}\d{5,}", case["number"]), case["number"]
        local = datetime.fromisoformat(case["reported_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
        assert case["number"][:8] == f"{local:%Y%m%d}"
        numbers.append(case["number"])
    assert numbers[0] != numbers[1]


def test_urgency_defaults_to_normal(district, inspector):
    body = body_at(district)
    assert "urgency" not in body
    assert post(inspector, body).get_json()["urgency"] == "B"


def test_a_dispatcher_reports_for_the_hotline_and_a_handler_may_not_report(district, make_user):
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    assert post(dispatcher, body_at(district)).get_json()["source"] == "hotline"
    problem(post(make_user("handler", scope=[district["code"]]), body_at(district)), 403)


@pytest.mark.parametrize("i", range(9))
def test_the_grid_is_found_from_the_point(district, inspector, i):
    case = post(inspector, body_at(district, i)).get_json()
    assert case["grid_code"] == district["grids"][i] and case["location_flags"] == []


def test_on_a_shared_boundary_the_lowest_code_wins(app, district, inspector):
    from gridpatrol.extensions import db
    with app.app_context():  # the east edge of grid 1 as stored, shared with grid 2
        edge = db.session.execute(text("SELECT ST_XMax(geom) FROM grids WHERE code = :c"),
                                  {"c": district["grids"][0]}).scalar_one()
    lon, lat = district["point"](0)
    case = post(inspector, body_at(district, lon=edge, lat=lat)).get_json()
    assert case["grid_code"] == district["grids"][0] and case["location_flags"] == []


def test_a_point_just_outside_a_grid_is_snapped(district, inspector):
    lon, lat = district["point"](3)
    west_edge = lon - district["d"] / 2
    case = post(inspector, body_at(district, lon=west_edge - 0.0001, lat=lat)).get_json()  # about 10 m out
    assert case["grid_code"] == district["grids"][3]
    assert case["location_flags"] == ["snapped"]


def test_a_point_far_outside_has_no_grid_and_is_flagged(district, inspector, make_user):
    lon, lat = district["point"](3)
    case = post(inspector, body_at(district, lon=lon - 0.01, lat=lat)).get_json()  # about 1 km out
    assert case["grid_code"] is None and case["street_code"] is None and case["community_code"] is None
    assert case["location_flags"] == ["outside"]
    assert case["district_code"] == district["code"]
    # the dispatcher of the district sees it, to decide
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    assert dispatcher.case(case["id"])["location_flags"] == ["outside"]
    assert case["id"] in {c["id"] for c in dispatcher.get("/api/v1/cases").get_json()["items"]}


def test_poor_accuracy_and_a_pin_are_flagged(district, inspector):
    case = post(inspector, body_at(district, accuracy_m=80, location_flags=["pin"])).get_json()
    assert sorted(case["location_flags"]) == ["pin", "poor_accuracy"]


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("change,field", [
    ({"category_code": "9999"}, "category_code"),
    ({"category_code": "12"}, "category_code"),
    ({"category_code": None}, "category_code"),
    ({"lon": 181}, "lon"),
    ({"lon": -180.5}, "lon"),
    ({"lat": 90.01}, "lat"),
    ({"lat": "north"}, "lat"),
    ({"description": "x" * 4001}, "description"),
    ({"urgency": "D"}, "urgency"),
    ({"accuracy_m": -1}, "accuracy_m"),
    ({"observed_at": "2026-11-26T09:00:00"}, "observed_at"),
    ({"observed_at": "yesterday"}, "observed_at"),
    ({"address": "a" * 301}, "address"),
    ({"location_flags": ["snapped"]}, "location_flags"),
    ({"catalog_version": 0}, "catalog_version"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_values_are_422_naming_the_field(app, district, inspector, change, field):
    before = db_counts(app)
    key = str(uuid.uuid4())
    problem(post(inspector, body_at(district, **change), key=key), 422, field)
    assert db_counts(app) == before
    assert not key_recorded(app, inspector.id, key)


@pytest.mark.parametrize("missing", ["category_code", "lon", "lat", "observed_at"])
def test_required_fields(app, district, inspector, missing):
    body = body_at(district)
    del body[missing]
    before = db_counts(app)
    problem(post(inspector, body), 422, missing)
    assert db_counts(app) == before


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["lon", "lat", "accuracy_m"])
def test_nan_and_infinity_are_422(app, district, inspector, field, value):
    body = body_at(district)
    body[field] = "__X__"
    raw = json.dumps(body).replace('"__X__"', value)
    before = db_counts(app)
    problem(post(inspector, None, raw=raw), 422, field)
    assert db_counts(app) == before


@pytest.mark.parametrize("media_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_another_media_type_is_415(app, district, inspector, media_type):
    before = db_counts(app)
    r = inspector.post("/api/v1/reports", data=json.dumps(body_at(district)), content_type=media_type,
                       headers={"Idempotency-Key": str(uuid.uuid4())})
    problem(r, 415)
    assert db_counts(app) == before


def test_malformed_json_is_400(app, district, inspector):
    before = db_counts(app)
    problem(post(inspector, None, raw='{"category_code": "0701", '), 400)
    assert db_counts(app) == before


@pytest.mark.parametrize("key", [False, "", "k" * 256, "bad\tkey"])
def test_a_missing_or_bad_idempotency_key_is_400(app, district, inspector, key):
    before = db_counts(app)
    headers = {} if key is False else {"Idempotency-Key": key}
    r = inspector.post("/api/v1/reports", json=body_at(district), headers=headers)
    problem(r, 400, "Idempotency-Key")
    assert db_counts(app) == before


def test_a_report_needs_a_signed_in_user(app, district, anon):
    before = db_counts(app)
    problem(post(anon, body_at(district)), 401)
    assert db_counts(app) == before


# ---------------------------------------------------------------- exactly once

def test_the_same_key_and_body_replays_the_original_answer(app, district, inspector, make_user):
    key, body = str(uuid.uuid4()), body_at(district, description=f"once {uuid.uuid4()}")
    first = post(inspector, body, key=key)
    assert first.status_code == 201
    before = db_counts(app)
    again = post(inspector, dict(reversed(list(body.items()))), key=key)  # the same body, keys in another order
    assert again.status_code == 201
    assert again.data == first.data
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert db_counts(app) == before
    # the replay is the original answer, not today's reading of the case
    supervisor = make_user("supervisor", scope=[district["code"]])
    supervisor.act(first.get_json()["id"], "escalate", {"level": 1, "note": "seen twice"})
    replay = post(inspector, body, key=key)
    assert replay.data == first.data and replay.get_json()["version"] == 1
    assert inspector.case(first.get_json()["id"])["version"] == 2


def test_the_same_key_with_another_body_is_422(app, district, inspector):
    key = str(uuid.uuid4())
    first = post(inspector, body_at(district), key=key).get_json()
    before = db_counts(app)
    body = problem(post(inspector, body_at(district, description="something else"), key=key), 422, "Idempotency-Key")
    assert "another request" in body["detail"]
    assert db_counts(app) == before
    assert inspector.case(first["id"])["description"] == "exposed garbage"


def test_the_same_key_from_another_user_is_independent(district, inspector, make_user):
    other = make_user("inspector", scope=[district["code"]])
    key, body = str(uuid.uuid4()), body_at(district)
    a = post(inspector, body, key=key)
    b = post(other, body, key=key)
    assert a.status_code == b.status_code == 201
    assert a.get_json()["id"] != b.get_json()["id"]
    assert b.get_json()["reporter_id"] == other.id


def test_a_request_refused_by_validation_records_no_key(app, district, inspector):
    key = str(uuid.uuid4())
    body = body_at(district)
    problem(post(inspector, None, key=key, raw=json.dumps(body).replace(str(body["lon"]), "NaN")), 422, "lon")
    assert not key_recorded(app, inspector.id, key)
    r = post(inspector, body, key=key)
    assert r.status_code == 201 and key_recorded(app, inspector.id, key)


def test_a_request_refused_by_the_service_records_no_key(app, district, inspector):
    # the category is well formed but unknown: refused after the key was taken, so the key goes with it
    key = str(uuid.uuid4())
    before = db_counts(app)
    problem(post(inspector, body_at(district, category_code="9999"), key=key), 422, "category_code")
    assert db_counts(app) == before and not key_recorded(app, inspector.id, key)
    r = post(inspector, body_at(district), key=key)
    assert r.status_code == 201
    assert r.get_json()["category_code"] == "0701"
    assert post(inspector, body_at(district), key=key).data == r.data


def test_a_key_is_per_endpoint(app, district, inspector):
    """A key used for a report and then for a photo is a different request: 422, nothing made."""
    from helpers import png
    key = str(uuid.uuid4())
    case = post(inspector, body_at(district), key=key).get_json()
    r = inspector.post(f"/api/v1/cases/{case['id']}/photos", data={"kind": "before", "file": (
        __import__("io").BytesIO(png()), "p.png")}, headers={"Idempotency-Key": key}, content_type="multipart/form-data")
    problem(r, 422, "Idempotency-Key")
    assert inspector.get(f"/api/v1/cases/{case['id']}/photos").get_json()["items"] == []


# ---------------------------------------------------------------- the write in one statement

def test_a_number_past_five_digits_keeps_every_digit(database_url, district, inspector):
    import psycopg
    # the sequence is moved forward only (as the owner: the app's role may not set it)
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as c:
        at = c.execute("SELECT setval('case_number_seq', greatest(last_value, 123455)) FROM case_number_seq").fetchone()[0]
    case = post(inspector, body_at(district)).get_json()
    assert case["number"][8:] == str(at + 1)


def test_the_first_event_is_chained_and_its_webhook_sees_the_new_case(app, district, inspector):
    from gridpatrol.extensions import db
    with app.app_context():
        hook = db.session.execute(text(
            "INSERT INTO webhooks (url, actions, scope, secret) VALUES ('https://receiver.example.org/r', '{report}', "
            ":scope, 'secret-of-this-test') RETURNING id"), {"scope": [district["code"]]}).scalar_one()
        db.session.commit()
    try:
        case = post(inspector, body_at(district, 4)).get_json()
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE webhooks SET active = false WHERE id = :id"), {"id": hook})
            db.session.commit()
    with app.app_context():
        event = db.session.execute(text(
            "SELECT seq, prev_hash, hash = case_event_hash(e, NULL) AS chained FROM case_events e WHERE case_id = :c"),
            {"c": case["id"]}).one()
        body = db.session.execute(text("SELECT body FROM webhook_deliveries WHERE webhook_id = :h"),
                                  {"h": hook}).scalar_one()
    assert event.seq == 1 and event.prev_hash is None and event.chained
    assert body["type"] == "case.created" and body["case"]["id"] == case["id"]
    assert body["case"]["number"] == case["number"] and body["case"]["grid_code"] == district["grids"][4]
    assert body["case"]["status"] == "reported" and body["case"]["version"] == 1


def test_the_key_waits_under_lock_timeout_and_the_rest_of_the_request_does_not(app, inspector):
    """The claim sets lock_timeout for itself: what runs after it (and after a replay's read) sees the
    connection's own setting again."""
    from gridpatrol.core import idempotency
    from gridpatrol.extensions import db

    def setting():
        return db.session.execute(text("SHOW lock_timeout")).scalar_one()

    key = str(uuid.uuid4())
    with app.test_request_context():
        own = setting()
        assert own != f"{app.config['IDEMPOTENCY_WAIT_MS'] // 1000}s"
        seen = []
        answer = idempotency.once(inspector.id, key, "test", "h" * 64, lambda: (seen.append(setting()) or {}, 201, {}))
        assert seen == [own] and setting() == own
        # the same key again in this transaction: its answer replayed, not run again, the setting put back
        assert idempotency.once(inspector.id, key, "test", "h" * 64, lambda: pytest.fail("ran twice")) == answer
        assert setting() == own
        db.session.rollback()


def test_a_key_is_written_once_with_its_answer(app, inspector):
    """The claim is a lock, not a row: the key's row is inserted once, with the answer, and never updated
    (an update left a dead row per write from the field for autovacuum to clear; migration 0024)."""
    from gridpatrol.core import idempotency
    from gridpatrol.extensions import db

    def written():
        return db.session.execute(text(
            "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = 'idempotency_keys'")).one()

    key = str(uuid.uuid4())
    with app.test_request_context():
        db.session.rollback()
        inserted, updated = written()
        answer = idempotency.once(inspector.id, key, "test", "h" * 64, lambda: ({"ok": 1}, 201, {"X-A": "b"}))
        assert tuple(written()) == (inserted + 1, updated)
        row = db.session.execute(text("SELECT status_code, response FROM idempotency_keys WHERE user_id = :u AND key = :k"),
                                 {"u": inspector.id, "k": key}).one()
        assert row.status_code == 201 and row.response == {"text": answer[0], "headers": {"X-A": "b"}}
        assert idempotency.once(inspector.id, key, "test", "h" * 64, lambda: pytest.fail("ran twice")) == answer
        assert tuple(written()) == (inserted + 1, updated)
        db.session.rollback()



# ---------------------------------------------------------------- keys past their keeping

def _age_key(app, user_id, key, days):
    sql(app, "UPDATE idempotency_keys SET created_at = now() - make_interval(days => :d) WHERE user_id = :u AND key = :k",
        d=days, u=user_id, k=key)


def _older_keys(app, days) -> int:
    return sql(app, "SELECT count(*) FROM idempotency_keys WHERE created_at < now() - make_interval(days => :d)",
               d=days)[0][0]


def _answered_key(app, user_id, days) -> str:
    """A key answered `days` ago."""
    from gridpatrol.core import idempotency
    from gridpatrol.extensions import db
    key = str(uuid.uuid4())
    with app.test_request_context():
        idempotency.once(user_id, key, "test", "h" * 64, lambda: ({}, 201, {}))
        db.session.commit()
    _age_key(app, user_id, key, days)
    return key


def test_keys_past_their_keeping_are_purged_and_the_rest_still_replay(app, district, inspector):
    """`gridpatrol purge-keys` deletes the keys older than IDEMPOTENCY_KEEP_DAYS (30) with their answers,
    not what they created; a key inside its keeping still replays. A phone resending an item after its
    key went is a new write: the keeping is what the API promises (at least 7 days)."""
    from gridpatrol.cli import purge_keys

    old_key, kept_key = str(uuid.uuid4()), str(uuid.uuid4())
    old_body, kept_body = body_at(district, description="old"), body_at(district, description="kept")
    old, kept = post(inspector, old_body, key=old_key), post(inspector, kept_body, key=kept_key)
    assert old.status_code == kept.status_code == 201
    _age_key(app, inspector.id, old_key, 31)
    _age_key(app, inspector.id, kept_key, 29)
    due = _older_keys(app, 30)
    assert due >= 1
    result = app.test_cli_runner().invoke(purge_keys, args=[])
    assert result.exit_code == 0, result.output
    assert f"{due} keys older than 30 days deleted" in result.output
    assert _older_keys(app, 30) == 0
    assert not key_recorded(app, inspector.id, old_key) and key_recorded(app, inspector.id, kept_key)
    assert inspector.case(old.get_json()["id"])["description"] == "old"  # the case stays
    before = db_counts(app)
    again = post(inspector, kept_body, key=kept_key)
    assert again.status_code == 201 and again.data == kept.data
    assert db_counts(app) == before
    resent = post(inspector, old_body, key=old_key)
    assert resent.status_code == 201 and resent.get_json()["id"] != old.get_json()["id"]
    assert db_counts(app)["cases"] == before["cases"] + 1


def test_the_purge_goes_batch_by_batch_to_the_last_old_key(app, inspector):
    from gridpatrol.core import idempotency

    keys = [_answered_key(app, inspector.id, 8) for _ in range(5)]
    due = _older_keys(app, 7)
    with app.app_context():
        assert idempotency.purge(7, batch=2) == due >= 5
    assert not any(key_recorded(app, inspector.id, key) for key in keys)


@pytest.mark.parametrize("how", ["option", "setting"])
def test_purge_keys_refuses_a_keeping_shorter_than_the_contract(app, inspector, how, monkeypatch):
    from gridpatrol.cli import purge_keys
    from gridpatrol.core import idempotency

    key = _answered_key(app, inspector.id, 10)
    if how == "option":
        result = app.test_cli_runner().invoke(purge_keys, args=["--keep-days", "6"])
    else:
        monkeypatch.setitem(app.config, "IDEMPOTENCY_KEEP_DAYS", 5)
        result = app.test_cli_runner().invoke(purge_keys, args=[])
    # a wrong option is a usage error (2); a wrong setting, the deployment's (1)
    assert result.exit_code == (2 if how == "option" else 1)
    assert "kept at least 7 days" in result.output
    assert ("--keep-days" if how == "option" else "IDEMPOTENCY_KEEP_DAYS is 5") in result.output
    assert key_recorded(app, inspector.id, key)
    with app.app_context(), pytest.raises(ValueError, match="at least 7 days"):
        idempotency.purge(6)


def test_a_background_loop_reports_a_database_away_and_goes_on(app):
    """`purge-keys --every` and `kpis compact --every` (core.db.keep_running): a database that does not
    answer is reported and tried again; a round with more to do is followed at once; any other error
    ends the loop."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from gridpatrol.core.db import keep_running

    class Stop(Exception):
        pass

    rounds = iter([OperationalError("SELECT 1", {}, Exception("server closed the connection")),
                   InterfaceError("SELECT 1", {}, Exception("connection already closed")), True, Stop()])
    reports, calls = [], []

    def step():
        calls.append(1)
        outcome = next(rounds)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with app.app_context(), pytest.raises(Stop):
        keep_running("purge-keys", step, 0.01, reports.append)
    assert len(calls) == 4
    assert [r.split(":")[:2] for r in reports] == [["purge-keys", " OperationalError"], ["purge-keys", " InterfaceError"]]

# ---------------------------------------------------------------- duplicates near the edge of the radius

def _report_at(api, lon, lat):
    return api.report(lon=lon, lat=lat, category_code="0801")


def test_duplicates_reach_the_edge_of_a_wide_radius_in_every_direction(make_user):
    """The search finds its candidates through the circle's bounding box: at 60° north a degree of
    longitude is half a degree of latitude, and a case 1.95 km away in any direction is still found
    at 2 km, one 2.1 km away is not."""
    reporter = make_user("inspector", scope=["*"])
    dispatcher = make_user("dispatcher", scope=["*"])
    lon, lat = 100.5, 60.0
    deg_lat, deg_lon = 1950 / 111_412, 1950 / 55_800  # metres per degree at 60°: ~111.4 km north, ~55.8 km east
    here = _report_at(reporter, lon, lat)
    found = [_report_at(reporter, lon, lat + deg_lat), _report_at(reporter, lon, lat - deg_lat),
             _report_at(reporter, lon + deg_lon, lat), _report_at(reporter, lon - deg_lon, lat)]
    beyond = [_report_at(reporter, lon, lat + deg_lat * 2100 / 1950),
              _report_at(reporter, lon + deg_lon * 2100 / 1950, lat)]
    r = dispatcher.get(f"/api/v1/cases/{here['id']}/duplicates?radius_m=2000")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    assert {c["id"] for c in items} == {c["id"] for c in found}
    assert all(1900 < c["distance_m"] < 2000 for c in items)
    assert {c["id"] for c in beyond}.isdisjoint(c["id"] for c in items)


def test_a_case_without_duplicates_answers_an_empty_list_and_an_unknown_case_404(district, make_user):
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    alone = make_user("inspector", scope=[district["code"]]).report(
        lon=district["point"](8)[0], lat=district["point"](8)[1], category_code="0902")
    r = dispatcher.get(f"/api/v1/cases/{alone['id']}/duplicates")
    assert r.status_code == 200 and r.get_json() == {"items": []}
    problem(dispatcher.get("/api/v1/cases/999999999999/duplicates"), 404)
