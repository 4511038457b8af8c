"""The case's closed loop (七步闭环) as one table.

The API, the console, the field client's buttons and the tests all read this table; the one
guard function `allowed()` answers whether a role may take an action in a state.
"""
from dataclasses import dataclass, field

OPEN = frozenset({"reported", "registered", "dispatched", "in_progress", "handled", "returned", "suspended"})
CLOSED = frozenset({"closed", "rejected", "merged"})
STATES = OPEN | CLOSED
# cases counted as fixed and verified
FIXED = frozenset({"closed"})

# the stage whose deadline runs in each open state (suspended: none, the clock is paused)
STAGE_OF = {
    "reported": "register",
    "registered": "dispatch",
    "returned": "dispatch",
    "dispatched": "handle",
    "in_progress": "handle",
    "handled": "verify",
}

SAME = None  # a request on the case: the state does not change
RESUME = "resume"  # back to the state the case was suspended from


@dataclass(frozen=True)
class Transition:
    to: str | None
    roles: frozenset[str]
    # who among the role, beyond holding it: "lead_team" (a member of the lead team),
    # "not_handler" (neither a person who reported the case handled nor a handler of its lead team)
    relation: str | None = None
    required: tuple[str, ...] = field(default=())


def _t(to, roles, relation=None, required=()):
    return Transition(to, frozenset(roles), relation, tuple(required))


_SUSPENDABLE = OPEN - {"suspended"}

TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("reported", "register"): _t("registered", {"dispatcher"}),
    ("reported", "reject"): _t("rejected", {"dispatcher"}, required=("reason",)),
    ("reported", "merge"): _t("merged", {"dispatcher"}, required=("parent_id",)),
    ("registered", "dispatch"): _t("dispatched", {"dispatcher"}, required=("team_id",)),
    ("returned", "dispatch"): _t("dispatched", {"dispatcher"}, required=("team_id",)),
    ("dispatched", "accept"): _t("in_progress", {"handler"}, "lead_team"),
    ("dispatched", "return"): _t("returned", {"handler"}, "lead_team", ("reason_code", "note")),
    ("in_progress", "return"): _t("returned", {"handler"}, "lead_team", ("reason_code", "note")),
    ("in_progress", "handle"): _t("handled", {"handler"}, "lead_team", ("note", "photo_ids")),
    ("handled", "verify_pass"): _t("closed", {"inspector"}, "not_handler", ("photo_ids", "lon", "lat")),
    ("handled", "verify_fail"): _t("dispatched", {"inspector"}, "not_handler", ("reason",)),
    ("suspended", "resume"): _t(RESUME, {"dispatcher"}),
    # requests on an open case: they write an event and change fields, not the state
    ("dispatched", "request_extension"): _t(SAME, {"handler"}, "lead_team", ("hours", "reason")),
    ("in_progress", "request_extension"): _t(SAME, {"handler"}, "lead_team", ("hours", "reason")),
    ("dispatched", "decide_extension"): _t(SAME, {"dispatcher"}, required=("approve",)),
    ("in_progress", "decide_extension"): _t(SAME, {"dispatcher"}, required=("approve",)),
    **{(s, "suspend"): _t("suspended", {"dispatcher"}, required=("reason",)) for s in _SUSPENDABLE},
    **{(s, "escalate"): _t(SAME, {"supervisor"}, required=("level", "note")) for s in OPEN},
}

ACTIONS = frozenset(action for _, action in TRANSITIONS)


def roles_for(action: str) -> frozenset[str]:
    """Every role that may take `action` in some state."""
    return frozenset().union(*(t.roles for (_, a), t in TRANSITIONS.items() if a == action))


def allowed(state: str, action: str, roles) -> Transition | None:
    """The transition when one of `roles` may take `action` in `state`, else None."""
    t = TRANSITIONS.get((state, action))
    if t is None or not (t.roles & set(roles)):
        return None
    return t


def actions_for(state: str, roles) -> list[str]:
    """The actions the roles may take in this state, in table order (relations not checked)."""
    return [a for (s, a), t in TRANSITIONS.items() if s == state and t.roles & set(roles)]
