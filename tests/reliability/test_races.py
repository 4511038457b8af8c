"""Items 1 and 2: many racing or replayed writes against the product as deployed (gunicorn, 2 workers)."""
import uuid

import pytest
import requests

from _util import at_once, scalar

N_DISPATCH = 50
N_SEQUENTIAL = 100
N_AT_ONCE = 20


def test_fifty_concurrent_dispatches_one_wins(app, live_server, district, make_user, make_team):
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    teams = [make_team(kind="enforcement", area_codes=[code]) for _ in range(3)]
    lon, lat = district["point"](2)
    case = inspector.report(lon=lon, lat=lat)
    version = dispatcher.act(case["id"], "register")["version"]

    def dispatch(i):
        return requests.post(f"{live_server}/api/v1/cases/{case['id']}/actions/dispatch",
                             json={"team_id": teams[i % 3], "note": f"attempt {i}"},
                             headers={"Authorization": f"Bearer {dispatcher.token}", "If-Match": f'"{version}"'},
                             timeout=120)

    responses = at_once(N_DISPATCH, dispatch)

    statuses = [r.status_code for r in responses]
    ok, conflicts = statuses.count(200), sum(s in (409, 412) for s in statuses)
    events = scalar(app, "SELECT count(*) FROM case_events WHERE case_id = :c AND action = 'dispatch'", c=case["id"])
    after = dispatcher.case(case["id"])
    print(f"\n[dispatch x{N_DISPATCH}] 200={ok} 412={statuses.count(412)} 409={statuses.count(409)} "
          f"other={[s for s in statuses if s not in (200, 409, 412)]} dispatch_events={events} "
          f"version {version} -> {after['version']}")
    assert ok == 1, statuses
    assert conflicts == N_DISPATCH - 1, statuses
    assert events == 1
    winner = next(r for r in responses if r.status_code == 200).json()
    assert after["version"] == version + 1 == winner["version"]
    assert after["status"] == "dispatched" and after["lead_team_id"] == winner["lead_team_id"]
    for r in responses:
        if r.status_code != 200:
            assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers


def test_one_idempotency_key_replayed_in_sequence_and_at_once(app, live_server, district, make_user):
    code = district["code"]
    inspector, other = make_user("inspector", scope=[code]), make_user("inspector", scope=[code])
    marker = f"replay {uuid.uuid4()}"
    lon, lat = district["point"](7)
    body = {"category_code": "0701", "description": marker, "lon": lon, "lat": lat, "accuracy_m": 5,
            "observed_at": "2026-11-26T09:00:00+08:00"}
    key = str(uuid.uuid4())

    def send(api, payload=body):
        return requests.post(f"{live_server}/api/v1/reports", json=payload, timeout=120,
                             headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": key})

    first = send(inspector)
    assert first.status_code == 201, first.text
    sequential = [send(inspector) for _ in range(N_SEQUENTIAL)]
    together = at_once(N_AT_ONCE, lambda i: send(inspector))
    replays = sequential + together
    same_body = sum(r.status_code == 201 and r.content == first.content
                    and r.headers["Location"] == first.headers["Location"] for r in replays)
    cases_mine = scalar(app, "SELECT count(*) FROM cases WHERE description = :d AND reporter_id = :u",
                        d=marker, u=inspector.id)

    theirs = send(other)
    theirs_again = send(other)
    changed = send(inspector, dict(body, description=marker + " (edited)"))
    cases_total = scalar(app, "SELECT count(*) FROM cases WHERE description LIKE :d", d=marker + "%")
    print(f"\n[idempotency] replays={len(replays)} (sequential {N_SEQUENTIAL}, at once {N_AT_ONCE}) "
          f"identical_201={same_body} statuses={sorted({r.status_code for r in replays})} cases_of_caller={cases_mine} "
          f"other_user={theirs.status_code}/{theirs_again.status_code} changed_body={changed.status_code} "
          f"cases_total={cases_total}")
    assert same_body == len(replays), [(r.status_code, r.text[:200]) for r in replays if r.content != first.content]
    assert cases_mine == 1
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert theirs.json()["reporter_id"] == other.id
    assert theirs_again.status_code == 201 and theirs_again.content == theirs.content
    assert changed.status_code == 422, changed.text
    assert cases_total == 2


@pytest.mark.long
def test_dispatch_races_repeated(app, live_server, district, make_user, make_team):
    """The 50-way race, 20 rounds on 20 cases (1,000 dispatches): every round exactly one winner."""
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    teams = [make_team(kind="enforcement", area_codes=[code]) for _ in range(3)]
    rounds, winners, conflicts, others = 20, [], 0, []
    for n in range(rounds):
        lon, lat = district["point"](n % 9)
        case = inspector.report(lon=lon, lat=lat)
        version = dispatcher.act(case["id"], "register")["version"]
        responses = at_once(N_DISPATCH, lambda i: requests.post(
            f"{live_server}/api/v1/cases/{case['id']}/actions/dispatch", json={"team_id": teams[i % 3]},
            headers={"Authorization": f"Bearer {dispatcher.token}", "If-Match": f'"{version}"'}, timeout=120))
        statuses = [r.status_code for r in responses]
        winners.append(statuses.count(200))
        conflicts += sum(s in (409, 412) for s in statuses)
        others += [s for s in statuses if s not in (200, 409, 412)]
        events = scalar(app, "SELECT count(*) FROM case_events WHERE case_id = :c AND action = 'dispatch'",
                        c=case["id"])
        assert events == 1 and dispatcher.case(case["id"])["version"] == version + 1
    print(f"\n[dispatch x{N_DISPATCH} x{rounds} rounds] winners per round={winners} conflicts={conflicts} "
          f"other={others}")
    assert winners == [1] * rounds and conflicts == rounds * (N_DISPATCH - 1) and others == []
