"""Races against the product as deployed (gunicorn, several workers), over real HTTP."""
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import requests
from sqlalchemy import text

N = 20


def _at_once(n, call):
    """Run call(i) n times from n threads released together; the responses in order."""
    barrier = Barrier(n)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _scalar(app, sql, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text(sql), params).scalar_one()


def test_one_idempotency_key_sent_many_times_at_once_makes_one_case(app, live_server, district, make_user):
    inspector = make_user("inspector", scope=[district["code"]])
    marker = f"race {uuid.uuid4()}"
    lon, lat = district["point"](4)
    body = {"category_code": "0701", "description": marker, "lon": lon, "lat": lat, "accuracy_m": 5,
            "observed_at": "2026-11-26T09:00:00+08:00"}
    headers = {"Authorization": f"Bearer {inspector.token}", "Idempotency-Key": str(uuid.uuid4())}

    responses = _at_once(N, lambda i: requests.post(f"{live_server}/api/v1/reports", json=body, headers=headers,
                                                    timeout=60))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.content for r in created}) == 1
    assert len({r.headers["Location"] for r in created}) == 1
    for r in responses:
        if r.status_code == 409:
            assert "in flight" in r.json()["detail"]
    assert _scalar(app, "SELECT count(*) FROM cases WHERE description = :d", d=marker) == 1
    case_id = created[0].json()["id"]
    assert _scalar(app, "SELECT count(*) FROM case_events WHERE case_id = :c", c=case_id) == 1
    # and after the race, the same request still answers the same
    again = requests.post(f"{live_server}/api/v1/reports", json=body, headers=headers, timeout=60)
    assert again.status_code == 201 and again.content == created[0].content


def test_concurrent_dispatches_of_one_case_one_wins(app, live_server, district, make_user, make_team):
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    teams = [make_team(kind="enforcement", area_codes=[code]) for _ in range(2)]
    lon, lat = district["point"](0)
    case = inspector.report(lon=lon, lat=lat)
    registered = dispatcher.act(case["id"], "register")
    version = registered["version"]

    def dispatch(i):
        return requests.post(f"{live_server}/api/v1/cases/{case['id']}/actions/dispatch",
                             json={"team_id": teams[i % 2]},
                             headers={"Authorization": f"Bearer {dispatcher.token}", "If-Match": f'"{version}"'},
                             timeout=60)

    responses = _at_once(N, dispatch)

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}, statuses
    winner = next(r for r in responses if r.status_code == 200).json()
    after = dispatcher.case(case["id"])
    assert after["version"] == version + 1 == winner["version"]
    assert after["status"] == "dispatched" and after["lead_team_id"] == winner["lead_team_id"]
    events = dispatcher.get(f"/api/v1/cases/{case['id']}/events").get_json()["items"]
    assert [e["action"] for e in events] == ["report", "register", "dispatch"]
    assert events[-1]["payload"]["team_id"] == winner["lead_team_id"]
    for r in responses:
        if r.status_code == 412:
            assert r.headers["ETag"] == f'"{version + 1}"'


def test_two_cases_merged_into_each_other_at_once_leave_one_open(app, live_server, district, make_user):
    """Two dispatchers each merge one of a pair of duplicates into the other at the same moment:
    never both (two merged cases and the problem lost), never a 5xx."""
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    dispatchers = [make_user("dispatcher", scope=[code]) for _ in range(2)]
    lon, lat = district["point"](5)
    pairs = [(inspector.report(lon=lon, lat=lat)["id"], inspector.report(lon=lon, lat=lat)["id"]) for _ in range(6)]

    def merge(i):
        a, b = pairs[i // 2]
        child, parent = (a, b) if i % 2 == 0 else (b, a)
        return requests.post(f"{live_server}/api/v1/cases/{child}/actions/merge", json={"parent_id": parent},
                             headers={"Authorization": f"Bearer {dispatchers[i % 2].token}", "If-Match": '"1"'},
                             timeout=60)

    responses = _at_once(2 * len(pairs), merge)

    assert {r.status_code for r in responses} <= {200, 409, 422}, [(r.status_code, r.text) for r in responses]
    for a, b in pairs:
        statuses = sorted(dispatchers[0].case(c)["status"] for c in (a, b))
        assert statuses in (["merged", "reported"], ["reported", "reported"]), (a, b, statuses)
        for c in (a, b):
            case = dispatchers[0].case(c)
            if case["status"] == "merged":
                assert dispatchers[0].case(case["parent_id"])["status"] == "reported"
