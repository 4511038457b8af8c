"""Item 9: the OpenAPI document, fuzzed in process with schemathesis (positive and negative data,
then stateful sequences over the links schemathesis infers): no server error, no response that
breaks its schema, invalid input refused, authentication never ignored.

The fuzzer runs on a database of its own (`make_app`): it writes whatever the schema lets it (the
calendar, the catalog, grids), which the rest of the suite must not read. The caller holds every
role in the demo district; its token is never revoked by the fuzzer (DELETE /auth/token is left out).
A bounded number of examples per operation keeps the default run short; the long run takes more."""
import io
import logging
import traceback
import uuid
from collections import Counter, defaultdict

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, response_schema_conformance

from helpers import DEMO_DISTRICT, PASSWORD, png

CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection, ignored_auth]
# answers the API gives to a request it refuses, beyond schemathesis' defaults: a stale If-Match
# (412) and a body too large (413)
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429"]


@pytest.fixture(scope="module")
def fuzzed(make_app):
    """(app, token, known ids): the fuzzer's own app and a bearer token holding every role, with a few
    cases in several states so that ids in paths can be found."""
    from sqlalchemy import text

    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    from gridpatrol.teams.models import Team

    app = make_app("fuzz")
    with app.app_context():
        team = Team(name="fuzz team", kind="enforcement", agencies=["城管"], area_codes=[DEMO_DISTRICT],
                    grid_codes=[], category_codes=["0701"])
        db.session.add(team)
        db.session.flush()
        auth.create_user(username="fuzzer", password=PASSWORD, display_name="fuzzer",
                         roles=["admin", "dispatcher", "supervisor", "inspector", "handler"], scope=[DEMO_DISTRICT],
                         team_ids=[team.id], grid_codes=[])
        db.session.commit()
        team_id = team.id
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "fuzzer", "password": PASSWORD}).get_json()[
        "access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    other = client.post("/api/v1/users", headers=headers, json={"username": "fuzzed", "password": PASSWORD,
                        "roles": ["inspector"], "scope": [DEMO_DISTRICT]})
    assert other.status_code == 201, other.get_json()
    patrol = client.post("/api/v1/patrols", headers=headers, json={})
    assert patrol.status_code == 201, patrol.get_json()
    for i in range(4):
        r = client.post("/api/v1/reports", headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                        json={"category_code": "0701", "description": f"fuzz {i}", "lon": 121.46, "lat": 31.22,
                              "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00"})
        assert r.status_code == 201, r.get_json()
        case = r.get_json()
        for action, body in [("register", {}), ("dispatch", {"team_id": team_id}), ("accept", {})][:i]:
            case = client.post(f"/api/v1/cases/{case['id']}/actions/{action}", json=body,
                               headers={**headers, "If-Match": f'"{case["version"]}"'}).get_json()
        photo = client.post(f"/api/v1/cases/{case['id']}/photos", data={"kind": "before", "file": (
            io.BytesIO(png()), "p.png")}, headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            content_type="multipart/form-data")
        assert photo.status_code == 201, photo.get_json()
    with app.app_context():
        known = {name: [r[0] for r in db.session.execute(text(sql))] for name, sql in KNOWN.items()}
    me = client.get("/api/v1/me", headers=headers).get_json()["id"]
    known["user_id"].remove(me)  # a change to the fuzzer itself (active: false) would end the run
    return app, token, known


# ids that exist, mixed into the generated ones (which rarely hit anything)
KNOWN = {"case_id": "SELECT id FROM cases", "user_id": "SELECT id FROM users", "team_id": "SELECT id FROM teams",
         "photo_id": "SELECT id FROM photos", "patrol_id": "SELECT id FROM patrols",
         "inspector_id": "SELECT id FROM users", "code": "SELECT code FROM categories LIMIT 5"}


# in process there is no HTTP client to undo Flask-Compress's gzip: ask for plain bodies
HEADERS = {"Accept-Encoding": "identity"}


def _schema(app, token, known):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).exclude(
        method="DELETE", path="/api/v1/auth/token")  # the fuzzer's own token would die mid-run

    @schema.auth()
    class Bearer:
        """The fuzzer's token on every request (negative data may still drop or spoil it: then 401)."""
        def get(self, case, context):
            return token

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Half the valid-looking ids become ones that exist (an invalid one, negative data, stays)."""
        if not path_parameters:
            return st.just(path_parameters)
        out = {}
        for name, value in path_parameters.items():
            pool = known.get(name) or []
            plausible = (isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31
                         or name == "code" and isinstance(value, str) and value.isdigit() and len(value) == 4)
            out[name] = st.sampled_from([value, *pool]) if pool and plausible else st.just(value)
            if name == "user_id" and value not in pool and plausible:
                out[name] = st.sampled_from(pool)  # never the fuzzer itself
        return st.fixed_dictionaries(out)

    schema.config.checks.update(included_check_names=[c.__name__ for c in CHECKS])
    schema.config.checks.negative_data_rejection.expected_statuses = REFUSALS
    return schema


def _settings(n):
    return hypothesis.settings(max_examples=n, deadline=None, database=None, derandomize=True,
                               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                               print_blob=False)


class _ServerErrors(logging.Handler):
    """The app's logged tracebacks, to name where a 500 came from."""
    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen = []

    def emit(self, record):
        if record.exc_info:
            self.seen.append("".join(traceback.format_exception(*record.exc_info)[-4:]))

    def last(self):
        return self.seen.pop() if self.seen else ""


def _fuzz(app, token, known, n):
    """Every operation, n positive and n negative examples; the failures, the answers by operation."""
    schema = _schema(app, token, known)
    failures, statuses = defaultdict(list), defaultdict(Counter)
    errors = _ServerErrors()
    logging.getLogger("gridpatrol").addHandler(errors)
    operations = [r.ok() for r in schema.get_all_operations()]
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @_settings(n)
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            def one(case):
                response = case.call(headers=HEADERS)
                statuses[op.label][response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS, headers=HEADERS)
                except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup: one per check that failed
                    server = errors.last() if response.status_code >= 500 else ""
                    for failure in getattr(exc, "exceptions", [exc]):
                        failures[op.label].append(f"{mode.value}: {getattr(failure, 'title', type(failure).__name__)}"
                                                  f" — {str(failure)[:600]}\n    {case.as_curl_command(HEADERS)}"
                                                  + (f"\n    {server}" if server else ""))
            one()
    logging.getLogger("gridpatrol").removeHandler(errors)
    return operations, failures, statuses


def _report(title, operations, failures, statuses):
    total = Counter()
    for counts in statuses.values():
        total.update(counts)
    print(f"\n[{title}] {len(operations)} operations, {sum(total.values())} requests, answers "
          f"{dict(sorted(total.items()))}, failures {sum(len(f) for f in failures.values())} in {len(failures)} "
          "operations")
    for label, counts in statuses.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    for label, found in sorted(failures.items()):
        print(f"  {label}: {len(found)}")
        for f in found[:3]:
            print("    " + f.replace("\n", "\n    "))


MIN_CALLS = 100


def _stateful(app, token, known, n, steps, rounds=1):
    """Sequences of calls along the links schemathesis infers (an id a response gives, used by the
    next call). Failures are collected, not raised: a sequence replayed against a database that has
    moved on is not the same sequence, so there is nothing to shrink."""
    schema = _schema(app, token, known)
    statuses, calls, failures = Counter(), Counter(), []
    errors = _ServerErrors()
    logging.getLogger("gridpatrol").addHandler(errors)

    class Machine(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": HEADERS}

        def after_call(self, response, case):
            super().after_call(response, case)
            statuses[response.status_code] += 1
            calls[case.operation.label] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(response, checks=CHECKS, headers=HEADERS, recorder=self.recorder)
            except (Exception, BaseExceptionGroup) as exc:
                server = errors.last() if response.status_code >= 500 else ""
                for failure in getattr(exc, "exceptions", [exc]):
                    failures.append(f"{case.operation.label}: {getattr(failure, 'title', type(failure).__name__)} — "
                                    f"{str(failure)[:600]}\n    {case.as_curl_command(HEADERS)}"
                                    + (f"\n    {server}" if server else ""))

    cut_short = i = 0
    try:
        # a round cut short by a replay (below) before MIN_CALLS calls is followed by another (up to
        # 3 more), so that where the tool gave up early the API is still tried
        while i < rounds or (cut_short and i < rounds + 3 and sum(statuses.values()) <= MIN_CALLS):
            # one round is reproducible; more rounds each draw anew
            try:
                Machine.run(settings=hypothesis.settings(_settings(n), stateful_step_count=steps,
                                                         derandomize=rounds == 1 and i == 0))
            except hypothesis.errors.FlakyStrategyDefinition:
                # Hypothesis replays a prefix of calls and finds the database moved on (an id no longer
                # found): the tool's limit, not an answer of the API; the next round goes on
                cut_short += 1
            i += 1
    finally:
        logging.getLogger("gridpatrol").removeHandler(errors)
    statuses["rounds cut short"] = cut_short
    return statuses, calls, failures


def _report_stateful(title, statuses, calls, failures):
    cut_short = statuses.pop("rounds cut short")
    print(f"\n[{title}] {sum(statuses.values())} calls over {len(calls)} operations, answers "
          f"{dict(sorted(statuses.items()))}, failures {len(failures)}, rounds cut short by replay {cut_short}")
    for f in failures[:10]:
        print("    " + f.replace("\n", "\n    "))


def test_every_operation_fuzzed(fuzzed):
    app, token, known = fuzzed
    operations, failures, statuses = _fuzz(app, token, known, 25)
    _report("schemathesis x25", operations, failures, statuses)
    assert dict(failures) == {}
    assert len(operations) >= 60  # the whole document was read


def test_stateful_sequences(fuzzed):
    app, token, known = fuzzed
    statuses, calls, failures = _stateful(app, token, known, 40, 8)
    _report_stateful("schemathesis stateful x40", statuses, calls, failures)
    assert failures == []
    assert sum(statuses.values()) > MIN_CALLS and len(calls) > 10  # sequences did run, across the API


@pytest.mark.long
def test_every_operation_fuzzed_long(fuzzed):
    app, token, known = fuzzed
    operations, failures, statuses = _fuzz(app, token, known, 150)
    _report("schemathesis x150", operations, failures, statuses)
    assert dict(failures) == {}


@pytest.mark.long
def test_stateful_sequences_long(fuzzed):
    app, token, known = fuzzed
    statuses, calls, failures = _stateful(app, token, known, 30, 15, rounds=8)
    _report_stateful("schemathesis stateful 8 rounds x30", statuses, calls, failures)
    assert failures == []
    assert sum(statuses.values()) > 1000
