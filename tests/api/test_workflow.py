"""The case workflow over HTTP: the closed loop, each action's errors, the requests, and the list."""
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from gridpatrol.cases.states import ACTIONS

OTHER_DISTRICT = "320102"  # the stranger's: no case of this module is ever in it
UNGRIDDED_DISTRICT = "320103"
COLOURS = {"green", "yellow", "red"}
PROBLEM = "application/problem+json"

# a body each action accepts, for the checks that come before the body's own checks
SOME_BODY = {
    "register": {}, "reject": {"reason": "not a city problem"}, "merge": {"parent_id": 1},
    "dispatch": {"team_id": 1}, "accept": {}, "return": {"reason_code": "other", "note": "n"},
    "handle": {"note": "n", "photo_ids": [1]}, "verify_pass": {"photo_ids": [1], "lon": 100.0, "lat": 30.0},
    "verify_fail": {"reason": "still dirty"}, "suspend": {"reason": "road works"}, "resume": {},
    "request_extension": {"hours": 2, "reason": "parts"}, "decide_extension": {"approve": True},
    "escalate": {"level": 1, "note": "again"},
}


class World:
    """A district with a lead team, a second team, and one person per part of the loop, each made
    when a test first asks for them (signing in costs a password hash)."""

    PEOPLE = {
        "inspector": (("inspector",), "district", "none"), "verifier": (("inspector",), "district", "none"),
        "dispatcher": (("dispatcher",), "district", "none"), "handler": (("handler",), "district", "team"),
        "other_handler": (("handler",), "district", "other_team"),
        "supervisor": (("supervisor",), "district", "none"), "admin": (("admin",), "district", "none"),
        "stranger": (("dispatcher", "supervisor", "inspector", "handler"), "elsewhere", "none"),
    }

    def __init__(self, district, make_user, make_team):
        self.district, self.code, self._make_user = district, district["code"], make_user
        self.team = make_team(kind="enforcement", area_codes=[self.code])
        self.other_team = make_team(kind="community", area_codes=[self.code])

    def __getattr__(self, name):
        if name not in self.PEOPLE:
            raise AttributeError(name)
        roles, where, team = self.PEOPLE[name]
        api = self._make_user(*roles, scope=[self.code if where == "district" else OTHER_DISTRICT],
                              teams=[getattr(self, team)] if team != "none" else [])
        setattr(self, name, api)
        return api


@pytest.fixture
def w(district, make_user, make_team):
    return World(district, make_user, make_team)


@pytest.fixture
def calendar(app):
    from gridpatrol.catalog import services as catalog
    with app.app_context():
        return catalog.work_calendar()


def t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def report(w, i=4, **body):
    lon, lat = w.district["point"](i)
    return w.inspector.report(lon=lon, lat=lat, **body)


def action(api, case_id, name, body=None, if_match=None):
    """The raw response of an action (for the error statuses)."""
    headers = {} if if_match is False else {"If-Match": if_match or f'"{api.case(case_id)["version"]}"'}
    return api.post(f"/api/v1/cases/{case_id}/actions/{name}", json=body if body is not None else {},
                    headers=headers)


def handle(w, case_id, api=None):
    api = api or w.handler
    photo = api.photo(case_id, "after")
    return api.act(case_id, "handle", {"note": "cleaned up", "photo_ids": [photo["id"]]})


def verify_pass(w, case_id, api=None):
    api = api or w.verifier
    photo = api.photo(case_id, "verification")
    loc = api.case(case_id)["location"]
    return api.act(case_id, "verify_pass", {"photo_ids": [photo["id"]], "lon": loc["lon"], "lat": loc["lat"],
                                            "accuracy_m": 5})


NEXT = {
    "reported": lambda w, cid: w.dispatcher.act(cid, "register"),
    "registered": lambda w, cid: w.dispatcher.act(cid, "dispatch", {"team_id": w.team}),
    "dispatched": lambda w, cid: w.handler.act(cid, "accept"),
    "in_progress": handle,
    "handled": verify_pass,
}


def advance(w, case_id, to):
    """Take a case along the happy path until it is `to` (or returned / rejected)."""
    if to == "returned":
        advance(w, case_id, "dispatched")
        return w.handler.act(case_id, "return", {"reason_code": "not_competent", "note": "not ours"})
    if to == "rejected":
        return w.dispatcher.act(case_id, "reject", {"reason": "not a city problem"})
    case = w.dispatcher.case(case_id)
    while case["status"] != to:
        case = NEXT[case["status"]](w, case_id)
    return case


def new_case(w, state="reported", i=4, **body):
    return advance(w, report(w, i, **body)["id"], state)


def events(api, case_id):
    r = api.get(f"/api/v1/cases/{case_id}/events")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def listed(api, **query):
    r = api.get("/api/v1/cases", query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def ids(page) -> set[int]:
    return {c["id"] for c in page["items"]}


def named(problem_body) -> set[str]:
    """The fields a 422 names (an item of a list is named "photo_ids.0")."""
    return {name.split(".")[0] for name in problem_body["errors"]}


def problem(r, status):
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.headers["Content-Type"].startswith(PROBLEM)
    body = r.get_json()
    assert body["status"] == status
    return body


# ---------------------------------------------------------------- the loop

def test_the_closed_loop_with_one_rework(w, calendar):
    created = report(w, description="loop")
    cid = created["id"]
    steps = [created]

    def step(api, name, body=None):
        case = api.act(cid, name, body)
        assert case["version"] == steps[-1]["version"] + 1, name
        got = w.dispatcher.get(f"/api/v1/cases/{cid}")
        assert got.headers["ETag"] == f'"{case["version"]}"'
        steps.append(case)
        return case

    assert created["status"] == "reported" and created["version"] == 1 and created["rework_count"] == 0
    assert created["deadlines"]["register"] is not None
    assert {k for k, v in created["deadlines"].items() if v is None} == {"dispatch", "handle", "verify"}
    assert t(created["deadlines"]["register"]) == calendar.deadline(t(created["reported_at"]), 1, "hour", False)
    assert created["timer"] in COLOURS

    c = step(w.dispatcher, "register")
    assert c["status"] == "registered" and c["timer"] in COLOURS
    assert t(c["deadlines"]["dispatch"]) == calendar.deadline(t(c["registered_at"]), 1, "hour", False)

    c = step(w.dispatcher, "dispatch", {"team_id": w.team, "assisting_team_ids": [w.other_team]})
    assert c["status"] == "dispatched" and c["lead_team_id"] == w.team and c["assisting_team_ids"] == [w.other_team]
    # category 0701, urgency B: 4 working hours
    assert t(c["deadlines"]["handle"]) == calendar.deadline(t(c["dispatched_at"]), 4, "hour", False)
    assert c["timer"] in COLOURS

    c = step(w.handler, "accept")
    assert c["status"] == "in_progress" and c["timer"] in COLOURS

    after = w.handler.photo(cid, "after")
    c = step(w.handler, "handle", {"note": "cleaned", "photo_ids": [after["id"]]})
    assert c["status"] == "handled" and c["timer"] in COLOURS
    assert t(c["deadlines"]["verify"]) == calendar.deadline(t(c["handled_at"]), 2, "hour", False)

    first_handle_deadline = c["deadlines"]["handle"]
    c = step(w.verifier, "verify_fail", {"reason": "garbage still there"})
    assert c["status"] == "dispatched" and c["rework_count"] == 1 and c["lead_team_id"] == w.team
    assert t(c["deadlines"]["handle"]) == calendar.deadline(t(c["dispatched_at"]), 4, "hour", False)
    assert t(c["deadlines"]["handle"]) >= t(first_handle_deadline)

    c = step(w.handler, "accept")
    after = w.handler.photo(cid, "after")
    c = step(w.handler, "handle", {"note": "cleaned again", "photo_ids": [after["id"]]})
    assert c["status"] == "handled"

    photo = w.verifier.photo(cid, "verification")
    loc = c["location"]
    c = step(w.verifier, "verify_pass", {"photo_ids": [photo["id"]], "lon": loc["lon"] + 0.0001, "lat": loc["lat"],
                                         "accuracy_m": 8})
    assert c["status"] == "closed" and c["rework_count"] == 1 and c["version"] == 9
    assert c["timer"] is None and c["closed_at"] is not None
    assert c["allowed_actions"] == []
    assert w.dispatcher.case(cid)["allowed_actions"] == [] and w.supervisor.case(cid)["allowed_actions"] == []

    log = events(w.supervisor, cid)
    assert [e["seq"] for e in log] == list(range(1, 10))
    assert [(e["action"], e["from_status"], e["to_status"], e["actor_id"]) for e in log] == [
        ("report", None, "reported", w.inspector.id),
        ("register", "reported", "registered", w.dispatcher.id),
        ("dispatch", "registered", "dispatched", w.dispatcher.id),
        ("accept", "dispatched", "in_progress", w.handler.id),
        ("handle", "in_progress", "handled", w.handler.id),
        ("verify_fail", "handled", "dispatched", w.verifier.id),
        ("accept", "dispatched", "in_progress", w.handler.id),
        ("handle", "in_progress", "handled", w.handler.id),
        ("verify_pass", "handled", "closed", w.verifier.id),
    ]
    ats = [t(e["at"]) for e in log]
    assert ats == sorted(ats)
    assert [e["team_id"] for e in log if e["actor_id"] == w.handler.id] == [w.team] * 4
    assert log[2]["payload"]["team_id"] == w.team
    assert log[5]["payload"]["reason"] == "garbage still there"
    assert log[8]["payload"]["distance_m"] > 5
    assert len({e["hash"] for e in log}) == 9


def test_allowed_actions_follow_the_table_and_the_lead_team(w):
    cid = new_case(w, "dispatched")["id"]
    assert w.handler.case(cid)["allowed_actions"] == ["accept", "return", "request_extension"]
    assert w.other_handler.case(cid)["allowed_actions"] == []
    assert w.dispatcher.case(cid)["allowed_actions"] == ["suspend"]
    assert w.supervisor.case(cid)["allowed_actions"] == ["escalate"]


def test_client_time_is_kept_on_the_event(w):
    cid = report(w)["id"]
    w.dispatcher.act(cid, "register", {"client_time": "2026-11-26T10:00:00+08:00"})
    assert t(events(w.dispatcher, cid)[1]["client_time"]) == datetime(2026, 11, 26, 2, tzinfo=timezone.utc)


def test_register_may_correct_category_and_urgency(w, calendar):
    cid = report(w)["id"]
    c = w.dispatcher.act(cid, "register", {"category_code": "0101", "urgency": "A"})
    assert (c["category_code"], c["urgency"]) == ("0101", "A")
    c = w.dispatcher.act(cid, "dispatch", {"team_id": w.team})
    # 0101, urgency A: 2 clock hours
    assert t(c["deadlines"]["handle"]) == calendar.deadline(t(c["dispatched_at"]), 2, "hour", True)
    problem(action(w.dispatcher, report(w)["id"], "register", {"category_code": "9999"}), 422)


def test_return_and_redispatch_to_another_team(w):
    c = new_case(w, "in_progress")
    cid = c["id"]
    c = w.handler.act(cid, "return", {"reason_code": "not_competent", "note": "not ours"})
    assert c["status"] == "returned" and c["timer"] in COLOURS and c["deadlines"]["dispatch"] is not None
    problem(action(w.handler, cid, "accept"), 409)
    c = w.dispatcher.act(cid, "dispatch", {"team_id": w.other_team})
    assert c["status"] == "dispatched" and c["lead_team_id"] == w.other_team
    problem(action(w.handler, cid, "accept"), 403)
    assert w.other_handler.act(cid, "accept")["status"] == "in_progress"
    assert [e["action"] for e in events(w.dispatcher, cid)][-3:] == ["return", "dispatch", "accept"]


def test_reject(w):
    cid = report(w)["id"]
    c = w.dispatcher.act(cid, "reject", {"reason": "not a city problem"})
    assert c["status"] == "rejected" and c["closed_at"] is not None and c["timer"] is None
    assert c["allowed_actions"] == []
    problem(action(w.dispatcher, cid, "register"), 409)
    last = events(w.dispatcher, cid)[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("reject", "reported", "rejected")
    assert last["payload"]["reason"] == "not a city problem"


# ---------------------------------------------------------------- errors, in order

def test_unknown_action_is_404(w):
    cid = report(w)["id"]
    body = problem(action(w.dispatcher, cid, "approve", {}), 404)
    assert "register" in body["detail"]
    assert w.dispatcher.case(cid)["version"] == 1


def test_unknown_case_is_404(w):
    problem(w.dispatcher.post("/api/v1/cases/999999999/actions/register", json={}, headers={"If-Match": '"1"'}), 404)
    problem(w.dispatcher.post("/api/v1/cases/999999999/actions/register", json={}), 404)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_case_outside_scope_is_404_for_every_action(w, name):
    cid = report(w)["id"]
    problem(action(w.stranger, cid, name, SOME_BODY[name], if_match='"1"'), 404)
    problem(action(w.stranger, cid, name, {}, if_match=False), 404)
    problem(w.stranger.get(f"/api/v1/cases/{cid}"), 404)
    problem(w.stranger.get(f"/api/v1/cases/{cid}/events"), 404)
    assert w.dispatcher.case(cid)["version"] == 1


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_role_never_allowed_is_403_whatever_the_body(w, name):
    cid = report(w)["id"]
    problem(action(w.admin, cid, name, SOME_BODY[name]), 403)
    problem(action(w.admin, cid, name, {}, if_match=False), 403)
    assert w.dispatcher.case(cid)["version"] == 1


@pytest.mark.parametrize("role,name", [("inspector", "register"), ("handler", "dispatch"), ("supervisor", "accept"),
                                       ("dispatcher", "verify_pass"), ("inspector", "escalate"),
                                       ("handler", "decide_extension"), ("dispatcher", "request_extension")])
def test_roles_of_the_table(w, make_user, role, name):
    cid = report(w)["id"]
    api = make_user(role, scope=[w.code], teams=[w.team])
    problem(action(api, cid, name, SOME_BODY[name]), 403)


def test_if_match_missing_is_428(w):
    cid = report(w)["id"]
    problem(action(w.dispatcher, cid, "register", {}, if_match=False), 428)
    assert w.dispatcher.case(cid)["status"] == "reported"


def test_stale_or_malformed_if_match_is_412(w):
    cid = report(w)["id"]
    w.dispatcher.act(cid, "register")
    r = action(w.dispatcher, cid, "dispatch", {"team_id": w.team}, if_match='"1"')
    problem(r, 412)
    assert r.headers["ETag"] == '"2"'
    problem(action(w.dispatcher, cid, "dispatch", {"team_id": w.team}, if_match="three"), 412)
    c = w.dispatcher.case(cid)
    assert c["status"] == "registered" and c["version"] == 2
    # the weak form of the current ETag is accepted
    assert action(w.dispatcher, cid, "dispatch", {"team_id": w.team}, if_match='W/"2"').status_code == 200


@pytest.mark.parametrize("state,api,name", [
    ("reported", "handler", "accept"), ("reported", "dispatcher", "dispatch"), ("registered", "dispatcher", "register"),
    ("dispatched", "handler", "handle"), ("in_progress", "inspector", "verify_pass"),
    ("handled", "dispatcher", "decide_extension"), ("registered", "dispatcher", "resume"),
    ("closed", "dispatcher", "suspend"), ("closed", "supervisor", "escalate"), ("rejected", "dispatcher", "merge"),
])
def test_an_action_not_allowed_in_the_state_is_409(w, state, api, name):
    c = new_case(w, state)
    body = dict(SOME_BODY[name])
    if name == "dispatch":
        body["team_id"] = w.team
    r = action(getattr(w, api), c["id"], name, body)
    assert problem(r, 409)["errors"] == {"status": [state]}
    assert w.dispatcher.case(c["id"])["version"] == c["version"]


@pytest.mark.parametrize("name,body", [
    ("accept", {}), ("return", {"reason_code": "other", "note": "no"}),
    ("request_extension", {"hours": 2, "reason": "parts"}),
])
def test_a_handler_not_in_the_lead_team_is_403(w, name, body):
    c = new_case(w, "dispatched")
    problem(action(w.other_handler, c["id"], name, body), 403)
    assert w.dispatcher.case(c["id"])["version"] == c["version"]


def test_a_handler_not_in_the_lead_team_may_not_handle(w):
    c = new_case(w, "in_progress")
    problem(action(w.other_handler, c["id"], "handle", {"note": "x", "photo_ids": [1]}), 403)


@pytest.mark.parametrize("name", ["verify_pass", "verify_fail"])
def test_the_handler_may_not_verify_their_own_work(w, make_user, name):
    both = make_user("inspector", "handler", scope=[w.code], teams=[w.team])
    cid = new_case(w, "dispatched")["id"]
    both.act(cid, "accept")
    c = handle(w, cid, api=both)
    photo = w.verifier.photo(cid, "verification")
    body = {"verify_pass": {"photo_ids": [photo["id"]], "lon": c["location"]["lon"], "lat": c["location"]["lat"]},
            "verify_fail": {"reason": "not done"}}[name]
    problem(action(both, cid, name, body), 403)
    # a member of the lead team who did not handle it is not neutral either
    colleague = make_user("inspector", "handler", scope=[w.code], teams=[w.team])
    problem(action(colleague, cid, name, body), 403)
    assert w.verifier.act(cid, name, body)["status"] == {"verify_pass": "closed", "verify_fail": "dispatched"}[name]


@pytest.mark.parametrize("name,body,field", [
    ("reject", {}, "reason"),
    ("reject", {"reason": ""}, "reason"),
    ("merge", {}, "parent_id"),
    ("merge", {"parent_id": "x"}, "parent_id"),
    ("suspend", {}, "reason"),
    ("escalate", {"level": 9, "note": "n"}, "level"),
    ("escalate", {"level": 1}, "note"),
    ("register", {"urgency": "Z"}, "urgency"),
    ("register", {"colour": "red"}, "colour"),
    ("register", {"client_time": "yesterday"}, "client_time"),
])
def test_body_errors_on_a_reported_case_are_422_naming_the_field(w, name, body, field):
    cid = report(w)["id"]
    api = w.supervisor if name == "escalate" else w.dispatcher
    assert field in problem(action(api, cid, name, body), 422)["errors"]
    assert w.dispatcher.case(cid)["version"] == 1


def test_dispatch_team_errors_are_422_naming_team_id(w, make_team):
    cid = new_case(w, "registered")["id"]
    patrol = make_team(kind="patrol", area_codes=[w.code])
    elsewhere = make_team(kind="enforcement", area_codes=[OTHER_DISTRICT])
    for body, field in [({}, "team_id"), ({"team_id": "abc"}, "team_id"), ({"team_id": 999999999}, "team_id"),
                        ({"team_id": 2**40}, "team_id"), ({"team_id": w.team, "assisting_team_ids": [2**40]},
                                                          "assisting_team_ids"),
                        ({"team_id": patrol}, "team_id"), ({"team_id": elsewhere}, "team_id"),
                        ({"team_id": w.team, "assisting_team_ids": [w.team]}, "assisting_team_ids"),
                        ({"team_id": w.team, "assisting_team_ids": [999999999]}, "assisting_team_ids"),
                        ({"team_id": w.team, "assisting_team_ids": [elsewhere]}, "assisting_team_ids")]:
        assert field in named(problem(action(w.dispatcher, cid, "dispatch", body), 422)), body
    c = w.dispatcher.case(cid)
    assert c["status"] == "registered" and c["version"] == 2 and c["lead_team_id"] is None


def test_handle_photo_errors_are_422_naming_photo_ids(w):
    cid = new_case(w, "in_progress")["id"]
    other = new_case(w, "dispatched", i=0)["id"]
    before = w.inspector.photo(cid, "before")
    after_of_other = w.handler.photo(other, "after")
    for photo_ids in ([], [before["id"]], [after_of_other["id"]], [999999999], [2**70]):
        body = problem(action(w.handler, cid, "handle", {"note": "done", "photo_ids": photo_ids}), 422)
        assert "photo_ids" in named(body), photo_ids
    assert "note" in problem(action(w.handler, cid, "handle", {"photo_ids": [before["id"]]}), 422)["errors"]
    assert w.dispatcher.case(cid)["status"] == "in_progress"


def test_verify_pass_errors_are_422(w):
    c = new_case(w, "handled")
    cid, loc = c["id"], c["location"]
    photo = w.verifier.photo(cid, "verification")
    after = [p for p in w.verifier.get(f"/api/v1/cases/{cid}/photos").get_json()["items"] if p["kind"] == "after"]
    far = problem(action(w.verifier, cid, "verify_pass", {"photo_ids": [photo["id"]], "lon": loc["lon"] + 0.01,
                                                          "lat": loc["lat"], "accuracy_m": 5}), 422)
    assert {"lon", "lat"} <= set(far["errors"])
    wrong_kind = problem(action(w.verifier, cid, "verify_pass", {"photo_ids": [after[0]["id"]], "lon": loc["lon"],
                                                                 "lat": loc["lat"]}), 422)
    assert "photo_ids" in wrong_kind["errors"]
    assert "photo_ids" in problem(action(w.verifier, cid, "verify_pass", {"photo_ids": [], "lon": loc["lon"],
                                                                          "lat": loc["lat"]}), 422)["errors"]
    assert "lat" in problem(action(w.verifier, cid, "verify_pass", {"photo_ids": [photo["id"]], "lon": loc["lon"],
                                                                    "lat": 91}), 422)["errors"]
    assert "reason" in problem(action(w.verifier, cid, "verify_fail", {}), 422)["errors"]
    assert "photo_ids" in problem(action(w.verifier, cid, "verify_fail", {"reason": "r", "photo_ids": [after[0]["id"]]}),
                                  422)["errors"]
    c = w.dispatcher.case(cid)
    assert c["status"] == "handled" and c["rework_count"] == 0


def test_return_errors_are_422(w):
    cid = new_case(w, "dispatched")["id"]
    assert "reason_code" in problem(action(w.handler, cid, "return", {"reason_code": "bored", "note": "n"}),
                                    422)["errors"]
    assert "note" in problem(action(w.handler, cid, "return", {"reason_code": "other"}), 422)["errors"]


@pytest.mark.parametrize("data", ["{not json", '{"reason": "x"', "\xff\xfe"])
def test_malformed_json_is_400(w, data):
    cid = report(w)["id"]
    r = w.dispatcher.post(f"/api/v1/cases/{cid}/actions/reject", data=data, content_type="application/json",
                          headers={"If-Match": '"1"'})
    problem(r, 400)
    assert w.dispatcher.case(cid)["status"] == "reported"


def test_a_body_of_another_media_type_is_415(w):
    cid = report(w)["id"]
    r = w.dispatcher.post(f"/api/v1/cases/{cid}/actions/reject", data='{"reason": "x"}', content_type="text/plain",
                          headers={"If-Match": '"1"'})
    problem(r, 415)
    assert w.dispatcher.case(cid)["status"] == "reported"


def test_a_body_that_is_not_an_object_is_refused(w):
    cid = report(w)["id"]
    r = w.dispatcher.post(f"/api/v1/cases/{cid}/actions/reject", json=["reason"], headers={"If-Match": '"1"'})
    problem(r, 422)
    assert w.dispatcher.case(cid)["status"] == "reported"


# ---------------------------------------------------------------- requests: extension, escalation

def test_extension_approved_moves_the_handling_deadline_by_working_hours(w, calendar):
    c = new_case(w, "in_progress")
    cid, deadline = c["id"], t(c["deadlines"]["handle"])
    problem(action(w.dispatcher, cid, "decide_extension", {"approve": True}), 409)
    c = w.handler.act(cid, "request_extension", {"hours": 3, "reason": "waiting for a new cover"})
    assert c["status"] == "in_progress" and c["pending_extension"]["hours"] == 3
    assert t(c["deadlines"]["handle"]) == deadline
    assert "request_extension" not in c["allowed_actions"]
    problem(action(w.handler, cid, "request_extension", {"hours": 1, "reason": "again"}), 409)
    assert "decide_extension" in w.dispatcher.case(cid)["allowed_actions"]
    c = w.dispatcher.act(cid, "decide_extension", {"approve": True, "note": "ok"})
    assert c["pending_extension"] is None and c["extension_hours"] == 3 and c["status"] == "in_progress"
    assert t(c["deadlines"]["handle"]) == calendar.add_working_hours(deadline, 3)
    assert t(c["stage_deadline"]) == t(c["deadlines"]["handle"])
    problem(action(w.dispatcher, cid, "decide_extension", {"approve": True}), 409)
    log = events(w.dispatcher, cid)[-2:]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in log] == [
        ("request_extension", "in_progress", "in_progress"), ("decide_extension", "in_progress", "in_progress")]
    assert log[0]["payload"]["hours"] == 3 and log[1]["payload"]["approve"] is True


def test_extension_on_a_clock_limit_moves_the_deadline_by_clock_hours(w):
    from datetime import timedelta
    c = new_case(w, "dispatched", urgency="A")
    deadline = t(c["deadlines"]["handle"])
    w.handler.act(c["id"], "request_extension", {"hours": 1.5, "reason": "crane"})
    c = w.dispatcher.act(c["id"], "decide_extension", {"approve": True})
    assert t(c["deadlines"]["handle"]) == deadline + timedelta(hours=1.5)


def test_extension_denied_leaves_the_deadline(w):
    c = new_case(w, "dispatched")
    cid, deadline = c["id"], c["deadlines"]["handle"]
    w.handler.act(cid, "request_extension", {"hours": 8, "reason": "parts"})
    c = w.dispatcher.act(cid, "decide_extension", {"approve": False, "note": "do it today"})
    assert c["deadlines"]["handle"] == deadline and c["extension_hours"] == 0 and c["pending_extension"] is None
    assert events(w.dispatcher, cid)[-1]["payload"]["approve"] is False
    # a new request may follow a decision
    assert w.handler.act(cid, "request_extension", {"hours": 2, "reason": "parts"})["pending_extension"]["hours"] == 2


def test_extension_body_errors(w):
    cid = new_case(w, "dispatched")["id"]
    assert "hours" in problem(action(w.handler, cid, "request_extension", {"hours": 0, "reason": "r"}), 422)["errors"]
    assert "reason" in problem(action(w.handler, cid, "request_extension", {"hours": 2}), 422)["errors"]
    w.handler.act(cid, "request_extension", {"hours": 2, "reason": "r"})
    assert "approve" in problem(action(w.dispatcher, cid, "decide_extension", {}), 422)["errors"]


def test_escalate_shows_the_level_and_filters(w):
    a = report(w, i=0)["id"]
    b = report(w, i=1)["id"]
    c = w.supervisor.act(a, "escalate", {"level": 2, "note": "third complaint"})
    assert c["escalation_level"] == 2 and c["escalation_note"] == "third complaint"
    assert c["status"] == "reported" and c["version"] == 2
    assert ids(listed(w.dispatcher, escalated="true")) == {a}
    assert ids(listed(w.dispatcher, escalated="false")) == {b}
    last = events(w.dispatcher, a)[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("escalate", "reported", "reported")
    assert last["payload"] == {"level": 2, "note": "third complaint"}


# ---------------------------------------------------------------- suspend, resume, merge

@pytest.mark.parametrize("state", ["reported", "registered", "dispatched", "in_progress", "handled", "returned"])
def test_suspend_and_resume_restore_the_state(w, state):
    c = new_case(w, state, urgency="A")
    cid, version = c["id"], c["version"]
    c = w.dispatcher.act(cid, "suspend", {"reason": "road works"})
    assert c["status"] == "suspended" and c["suspended_from"] == state and c["timer"] is None
    assert c["allowed_actions"] == ["resume"]
    problem(action(w.dispatcher, cid, "suspend", {"reason": "again"}), 409)
    assert ids(listed(w.dispatcher, overdue="true")) == set()
    c = w.dispatcher.act(cid, "resume")
    assert c["status"] == state and c["suspended_from"] is None and c["timer"] in COLOURS
    assert c["version"] == version + 2
    log = events(w.dispatcher, cid)[-2:]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in log] == [
        ("suspend", state, "suspended"), ("resume", "suspended", state)]
    assert log[1]["payload"]["resumed_to"] == state


def _suspended_between(w, cid):
    """Suspend and resume a case; the case after, and the moments it was suspended and resumed."""
    w.dispatcher.act(cid, "suspend", {"reason": "flooding"})
    problem(action(w.handler, cid, "handle", {"note": "n", "photo_ids": [1]}), 409)
    case = w.dispatcher.act(cid, "resume")
    suspend, resume = events(w.dispatcher, cid)[-2:]
    return case, t(suspend["at"]), t(resume["at"])


def test_resume_shifts_a_clock_deadline_by_the_time_suspended(w):
    # urgency A of 0701 runs on the clock (24×7)
    c = new_case(w, "in_progress", urgency="A")
    deadline = t(c["deadlines"]["handle"])
    c, suspended, resumed = _suspended_between(w, c["id"])
    assert t(c["deadlines"]["handle"]) == deadline + (resumed - suspended)
    assert t(c["deadlines"]["handle"]) > deadline
    assert t(c["stage_deadline"]) == t(c["deadlines"]["handle"])


def test_resume_shifts_a_working_time_deadline_by_the_working_hours_suspended(w, calendar):
    c = new_case(w, "in_progress")
    deadline = t(c["deadlines"]["handle"])
    c, suspended, resumed = _suspended_between(w, c["id"])
    paused = calendar.working_hours_between(suspended, resumed)
    assert t(c["deadlines"]["handle"]) == calendar.add_working_hours(deadline, paused)
    assert t(c["stage_deadline"]) == t(c["deadlines"]["handle"])
    assert events(w.dispatcher, c["id"])[-1]["payload"]["paused_hours"] == round(
        (resumed - suspended).total_seconds() / 3600, 3)


def test_merge_into_an_open_parent(w):
    parent = new_case(w, "dispatched", i=0)["id"]
    child = report(w, i=0)["id"]
    c = w.dispatcher.act(child, "merge", {"parent_id": parent})
    assert c["status"] == "merged" and c["parent_id"] == parent and c["timer"] is None and c["closed_at"]
    last = events(w.dispatcher, child)[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("merge", "reported", "merged")
    assert last["payload"]["parent_id"] == parent
    assert w.dispatcher.case(parent)["status"] == "dispatched"


def test_merge_refuses_itself_a_closed_an_unknown_or_an_invisible_parent(w, make_user):
    child = report(w)["id"]
    closed = new_case(w, "rejected")["id"]
    merged = report(w)["id"]
    w.dispatcher.act(merged, "merge", {"parent_id": report(w)["id"]})
    # a case of a district without grids (its reporter's), which the dispatcher cannot see
    elsewhere = make_user("inspector", scope=[UNGRIDDED_DISTRICT]).report()["id"]
    for parent in (child, closed, merged, 999999999, 2**70, elsewhere):
        assert "parent_id" in problem(action(w.dispatcher, child, "merge", {"parent_id": parent}), 422)["errors"]
    c = w.dispatcher.case(child)
    assert c["status"] == "reported" and c["parent_id"] is None and c["version"] == 1


# ---------------------------------------------------------------- GET /cases

@pytest.fixture
def listing(app, w):
    """Four cases in the district: registered, dispatched, reported and one overdue since 2025."""
    from gridpatrol.auth.models import User
    from gridpatrol.cases import services
    from gridpatrol.core.db import clock_at
    from gridpatrol.extensions import db

    marker = uuid.uuid4().hex[:10]
    registered = new_case(w, "registered", i=0, description=f"overflowing bin {marker}")
    dispatched = new_case(w, "dispatched", i=1, category_code="0101", description="loose cover")
    reported = new_case(w, "reported", i=8, description="100% blocked")
    # a case reported long ago and never registered: past its register deadline
    lon, lat = w.district["point"](4)
    with app.app_context(), clock_at(datetime(2025, 6, 2, 2, 0, tzinfo=timezone.utc)):
        overdue = services.report(db.session.get(User, w.inspector.id), {
            "category_code": "0701", "description": "old", "lon": lon, "lat": lat, "accuracy_m": 5,
            "observed_at": datetime(2025, 6, 2, 1, 0, tzinfo=timezone.utc)})
        db.session.commit()
        overdue_id = overdue.id
    return SimpleNamespace(marker=marker, registered=registered, dispatched=dispatched, reported=reported,
                           overdue=w.dispatcher.case(overdue_id))


def test_list_filters(w, listing):
    L = listing
    d = w.dispatcher
    everything = {L.registered["id"], L.dispatched["id"], L.reported["id"], L.overdue["id"]}
    page = listed(d)
    assert page["total"] == 4 and ids(page) == everything and page["page"] == 1 and page["per_page"] == 50
    assert ids(listed(d, status="reported")) == {L.reported["id"], L.overdue["id"]}
    assert ids(listed(d, status="registered,dispatched")) == {L.registered["id"], L.dispatched["id"]}
    assert listed(d, status="closed")["total"] == 0
    assert ids(listed(d, grid=w.district["grids"][0])) == {L.registered["id"]}
    assert ids(listed(d, grid=f"{w.district['grids'][1]},{w.district['grids'][8]}")) == {
        L.dispatched["id"], L.reported["id"]}
    assert ids(listed(d, street=w.code + "001")) == everything
    assert listed(d, street=w.code + "002")["total"] == 0
    assert ids(listed(d, team=str(w.team))) == {L.dispatched["id"]}
    assert ids(listed(d, category="0101")) == {L.dispatched["id"]}
    assert ids(listed(d, category="0701")) == everything - {L.dispatched["id"]}
    lon, lat = w.district["point"](0)
    q = w.district["d"] / 4
    assert ids(listed(d, bbox=f"{lon - q},{lat - q},{lon + q},{lat + q}")) == {L.registered["id"]}
    assert ids(listed(d, overdue="true")) == {L.overdue["id"]}
    assert ids(listed(d, overdue="false")) == everything - {L.overdue["id"]}
    assert L.overdue["timer"] == "red"
    assert ids(listed(d, escalated="true")) == set()
    assert ids(listed(d, q=L.marker)) == {L.registered["id"]}
    assert ids(listed(d, q=L.marker.upper())) == {L.registered["id"]}
    assert ids(listed(d, q=L.reported["number"])) == {L.reported["id"]}
    assert ids(listed(d, q="100%")) == {L.reported["id"]}
    assert listed(d, q="%")["total"] == 1  # a literal percent sign, not a wildcard
    assert ids(listed(d, status="reported", grid=w.district["grids"][4])) == {L.overdue["id"]}
    assert ids(listed(d, to="2026-01-01T00:00:00+08:00")) == {L.overdue["id"]}
    assert ids(listed(d, **{"from": "2026-01-01T00:00:00+08:00"})) == everything - {L.overdue["id"]}
    # the field client's task list (field_client/js/views/tasks.js)
    assert ids(listed(d, team=f"{w.team},{w.other_team}", status="dispatched,in_progress", per_page=200,
                      sort="oldest")) == {L.dispatched["id"]}
    # a list may also come as repeated parameters
    r = d.get("/api/v1/cases", query_string=[("status", "reported"), ("status", "registered")])
    assert ids(r.get_json()) == {L.reported["id"], L.overdue["id"], L.registered["id"]}


@pytest.mark.parametrize("query,field", [
    ({"status": "open"}, "status"), ({"grid": "123"}, "grid"), ({"street": "12"}, "street"),
    ({"team": "x"}, "team"), ({"team": str(2**40)}, "team"), ({"reporter": str(2**40)}, "reporter"),
    ({"category": "1"}, "category"), ({"bbox": "1,2,3"}, "bbox"),
    ({"overdue": "maybe"}, "overdue"), ({"per_page": "501"}, "per_page"), ({"per_page": "0"}, "per_page"),
    ({"page": "0"}, "page"), ({"status": "reported,open"}, "status"),
])
def test_list_query_errors_are_422(w, query, field):
    body = problem(w.dispatcher.get("/api/v1/cases", query_string=query), 422)
    assert named(body) == {field}


def test_list_paging(w, listing):
    d = w.dispatcher
    first, second = listed(d, per_page=3, page=1), listed(d, per_page=3, page=2)
    assert (first["total"], len(first["items"]), first["per_page"]) == (4, 3, 3)
    assert (second["total"], len(second["items"]), second["page"]) == (4, 1, 2)
    assert not ids(first) & ids(second)
    # newest first
    reported = [t(c["reported_at"]) for c in first["items"] + second["items"]]
    assert reported == sorted(reported, reverse=True)
    assert second["items"][0]["id"] == listing.overdue["id"]
    beyond = listed(d, per_page=3, page=50)
    assert beyond["items"] == [] and beyond["total"] == 4
    assert listed(d, per_page=500)["per_page"] == 500


def test_list_and_case_stay_within_scope(w, listing):
    assert listed(w.stranger)["total"] == 0
    for query in ({"q": listing.marker}, {"grid": w.district["grids"][0]}, {"street": w.code + "001"},
                  {"team": str(w.team)}, {"status": "reported"}, {"overdue": "true"}):
        page = listed(w.stranger, **query)
        assert page["total"] == 0 and page["items"] == [], query
    problem(w.stranger.get(f"/api/v1/cases/{listing.registered['id']}"), 404)
    problem(w.stranger.get(f"/api/v1/cases/{listing.registered['id']}/events"), 404)
    # the inspector and the supervisor of the district see all of it
    assert listed(w.inspector)["total"] == 4 and listed(w.supervisor)["total"] == 4
