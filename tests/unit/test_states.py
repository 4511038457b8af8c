"""The case workflow table (cases/states.py) against domain.md, every (state, action, role)."""
import itertools

import pytest

from gridpatrol.auth.models import ROLES
from gridpatrol.cases import states
from gridpatrol.cases.schemas import ACTION_SCHEMAS
from gridpatrol.cases.states import CLOSED, OPEN, RESUME, SAME, STATES

OPEN_STATES = {"reported", "registered", "dispatched", "in_progress", "handled", "returned", "suspended"}
CLOSED_STATES = {"closed", "rejected", "merged"}
ALL_ACTIONS = {"register", "reject", "merge", "dispatch", "accept", "return", "handle", "verify_pass",
               "verify_fail", "suspend", "resume", "request_extension", "decide_extension", "escalate"}

# domain.md, "States": (from, action) -> (to, the one role that may, who among the role)
EXPECTED = {
    ("reported", "register"): ("registered", "dispatcher", None),
    ("reported", "reject"): ("rejected", "dispatcher", None),
    ("reported", "merge"): ("merged", "dispatcher", None),
    ("registered", "dispatch"): ("dispatched", "dispatcher", None),
    ("returned", "dispatch"): ("dispatched", "dispatcher", None),
    ("dispatched", "accept"): ("in_progress", "handler", "lead_team"),
    ("dispatched", "return"): ("returned", "handler", "lead_team"),
    ("in_progress", "return"): ("returned", "handler", "lead_team"),
    ("in_progress", "handle"): ("handled", "handler", "lead_team"),
    ("handled", "verify_pass"): ("closed", "inspector", "not_handler"),
    ("handled", "verify_fail"): ("dispatched", "inspector", "not_handler"),
    ("suspended", "resume"): (RESUME, "dispatcher", None),
    **{(s, "suspend"): ("suspended", "dispatcher", None) for s in OPEN_STATES - {"suspended"}},
    # requests on an open case: the state stays
    ("dispatched", "request_extension"): (SAME, "handler", "lead_team"),
    ("in_progress", "request_extension"): (SAME, "handler", "lead_team"),
    ("dispatched", "decide_extension"): (SAME, "dispatcher", None),
    ("in_progress", "decide_extension"): (SAME, "dispatcher", None),
    **{(s, "escalate"): (SAME, "supervisor", None) for s in OPEN_STATES},
}

# domain.md, "required" column and api-contract.md's bodies
REQUIRED = {
    "register": set(), "reject": {"reason"}, "merge": {"parent_id"}, "dispatch": {"team_id"}, "accept": set(),
    "return": {"reason_code", "note"}, "handle": {"note", "photo_ids"}, "verify_pass": {"photo_ids", "lon", "lat"},
    "verify_fail": {"reason"}, "suspend": {"reason"}, "resume": set(), "request_extension": {"hours", "reason"},
    "decide_extension": {"approve"}, "escalate": {"level", "note"},
}

EVERY_ROW = list(itertools.product(sorted(OPEN_STATES | CLOSED_STATES), sorted(ALL_ACTIONS), ROLES))


def test_state_groups():
    assert OPEN == OPEN_STATES
    assert CLOSED == CLOSED_STATES
    assert STATES == OPEN_STATES | CLOSED_STATES
    assert not OPEN & CLOSED
    assert states.FIXED == {"closed"}


def test_actions_are_the_documented_ones():
    assert states.ACTIONS == ALL_ACTIONS
    assert set(ACTION_SCHEMAS) == ALL_ACTIONS


def test_the_table_has_exactly_the_documented_rows():
    assert set(states.TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("state,action,role", EVERY_ROW)
def test_allowed(state, action, role):
    t = states.allowed(state, action, [role])
    expected = EXPECTED.get((state, action))
    if expected is None or expected[1] != role:
        assert t is None
    else:
        assert t is not None
        assert t.to == expected[0]
        assert t.relation == expected[2]


@pytest.mark.parametrize("state,action", sorted(EXPECTED))
def test_allowed_for_a_person_with_several_roles(state, action):
    to, role, _ = EXPECTED[(state, action)]
    others = [r for r in ROLES if r != role]
    assert states.allowed(state, action, others) is None
    assert states.allowed(state, action, [*others, role]).to == to
    assert states.allowed(state, action, []) is None


def test_closed_states_allow_nothing():
    for state, action, role in EVERY_ROW:
        if state in CLOSED_STATES:
            assert states.allowed(state, action, [role]) is None, (state, action, role)
    for state in CLOSED_STATES:
        assert states.actions_for(state, ROLES) == []


@pytest.mark.parametrize("state", sorted(OPEN_STATES - {"suspended"}))
def test_suspend_from_every_open_state_and_only_there(state):
    assert states.allowed(state, "suspend", ["dispatcher"]).to == "suspended"
    assert states.allowed(state, "resume", ["dispatcher"]) is None


def test_suspended_resumes_to_where_it_left_and_cannot_be_suspended_again():
    assert states.allowed("suspended", "suspend", ["dispatcher"]) is None
    assert states.allowed("suspended", "resume", ["dispatcher"]).to == RESUME
    assert RESUME not in STATES


def test_requests_do_not_change_the_state():
    for (state, action), t in states.TRANSITIONS.items():
        if action in ("request_extension", "decide_extension", "escalate"):
            assert t.to is SAME, (state, action)
        else:
            assert t.to is not SAME, (state, action)


@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_required_fields(action):
    rows = [t for (s, a), t in states.TRANSITIONS.items() if a == action]
    assert rows
    for t in rows:
        assert set(t.required) == REQUIRED[action]
    schema_required = {name for name, f in ACTION_SCHEMAS[action]().fields.items() if f.required}
    assert schema_required == REQUIRED[action]


@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_roles_for(action):
    assert states.roles_for(action) == {role for (s, a), (to, role, rel) in EXPECTED.items() if a == action}


@pytest.mark.parametrize("state,role", list(itertools.product(sorted(STATES), ROLES)))
def test_actions_for(state, role):
    expected = {a for (s, a), (to, r, rel) in EXPECTED.items() if s == state and r == role}
    got = states.actions_for(state, [role])
    assert len(got) == len(set(got))
    assert set(got) == expected


def test_actions_for_several_roles_is_the_union_in_table_order():
    got = states.actions_for("in_progress", ["handler", "dispatcher", "supervisor"])
    assert set(got) == {"return", "handle", "request_extension", "decide_extension", "suspend", "escalate"}
    table_order = [a for (s, a) in states.TRANSITIONS if s == "in_progress"]
    assert got == [a for a in table_order if a in got]


def test_every_open_state_but_suspended_has_a_running_stage():
    assert set(states.STAGE_OF) == OPEN_STATES - {"suspended"}
    assert states.STAGE_OF["reported"] == "register"
    assert states.STAGE_OF["registered"] == states.STAGE_OF["returned"] == "dispatch"
    assert states.STAGE_OF["dispatched"] == states.STAGE_OF["in_progress"] == "handle"
    assert states.STAGE_OF["handled"] == "verify"
