"""Item 8: every /api/v1 endpoint × every role, in scope and from another district: no unexpected 2xx;
and unknown fields on write bodies (mass assignment) refused with 422.

The endpoint list comes from the app's url_map, so a new endpoint fails
test_every_endpoint_has_an_expectation until someone says here who may call it."""
import io
import re
import uuid

import pytest

from helpers import png

ROLES = ("inspector", "dispatcher", "handler", "supervisor", "admin")
PUBLIC, ANY = "public", "any"
ADMIN, DISPATCH = {"admin"}, {"dispatcher"}
READERS = {"supervisor", "dispatcher"}

# (method, rule) -> who may call it, from docs/api-contract.md and domain.md
EXPECTED = {
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("DELETE", "/api/v1/auth/token"): ANY,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/me"): ANY,
    ("GET", "/api/v1/calendar"): ANY,
    ("PUT", "/api/v1/calendar/days/<day>"): ADMIN,
    ("DELETE", "/api/v1/calendar/days/<day>"): ADMIN,
    ("PUT", "/api/v1/calendar/work-periods"): ADMIN,
    ("GET", "/api/v1/cases"): ANY,
    ("GET", "/api/v1/cases/queue-counts"): ANY,
    ("GET", "/api/v1/cases/<int:case_id>"): ANY,
    ("GET", "/api/v1/cases/<int:case_id>/events"): ANY,
    ("GET", "/api/v1/cases/<int:case_id>/photos"): ANY,
    ("POST", "/api/v1/cases/<int:case_id>/photos"): "per kind",
    ("POST", "/api/v1/cases/<int:case_id>/actions/<action>"): "per action",
    ("GET", "/api/v1/cases/<int:case_id>/dispatch-suggestions"): DISPATCH,
    ("GET", "/api/v1/cases/<int:case_id>/duplicates"): READERS,
    ("GET", "/api/v1/categories"): ANY,
    ("POST", "/api/v1/categories"): ADMIN,
    ("PATCH", "/api/v1/categories/<code>"): ADMIN,
    ("DELETE", "/api/v1/categories/<code>"): ADMIN,
    ("GET", "/api/v1/grids"): ANY,
    ("GET", "/api/v1/grids/locate"): ANY,
    ("POST", "/api/v1/grids/import"): ADMIN,
    ("GET", "/api/v1/kpis"): READERS,
    ("GET", "/api/v1/kpis/inspectors"): READERS,
    ("GET", "/api/v1/kpis/inspectors/<int:inspector_id>/verifications"): READERS,
    ("GET", "/api/v1/kpis/inspectors/<int:inspector_id>/coverage"): READERS,
    ("GET", "/api/v1/kpis/trend"): READERS,
    ("GET", "/api/v1/kpis/export.xlsx"): {"supervisor"},
    ("GET", "/api/v1/map/areas"): ANY,
    ("GET", "/api/v1/map/extent"): ANY,
    ("GET", "/api/v1/map/grid-names"): ANY,
    ("GET", "/api/v1/open311/keys"): ADMIN,
    ("POST", "/api/v1/open311/keys"): ADMIN,
    ("DELETE", "/api/v1/open311/keys/<int:key_id>"): ADMIN,
    ("GET", "/api/v1/patrols"): READERS,
    ("POST", "/api/v1/patrols"): {"inspector"},
    ("POST", "/api/v1/patrols/<int:patrol_id>/points"): {"inspector"},
    ("POST", "/api/v1/patrols/<int:patrol_id>/end"): {"inspector"},
    ("GET", "/api/v1/patrols/coverage"): READERS,
    ("GET", "/api/v1/photos/<int:photo_id>"): ANY,
    ("POST", "/api/v1/reports"): {"inspector", "dispatcher"},
    ("GET", "/api/v1/teams"): ANY,
    ("POST", "/api/v1/teams"): ADMIN,
    ("GET", "/api/v1/teams/<int:team_id>"): ANY,
    ("PATCH", "/api/v1/teams/<int:team_id>"): ADMIN,
    ("GET", "/api/v1/tiles/cases/<int:z>/<int:x>/<int:y>.mvt"): ANY,
    ("GET", "/api/v1/tiles/grids/<int:z>/<int:x>/<int:y>.mvt"): ANY,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/<int:user_id>"): ADMIN,
    ("PATCH", "/api/v1/users/<int:user_id>"): ADMIN,
    ("GET", "/api/v1/webhooks"): ADMIN,
    ("POST", "/api/v1/webhooks"): ADMIN,
    ("GET", "/api/v1/webhooks/<int:webhook_id>"): ADMIN,
    ("PATCH", "/api/v1/webhooks/<int:webhook_id>"): ADMIN,
    ("DELETE", "/api/v1/webhooks/<int:webhook_id>"): ADMIN,
    ("GET", "/api/v1/webhooks/<int:webhook_id>/deliveries"): ADMIN,
    ("POST", "/api/v1/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/retry"): ADMIN,
    ("GET", "/api/v1/exports/cases.geojson"): ANY,
    ("GET", "/api/v1/exports/cases.csv"): ANY,
    ("GET", "/api/v1/exports/grids.geojson"): ANY,
    ("GET", "/api/v1/exports/grids.gpkg"): ANY,
    ("GET", "/api/v1/exports/patrols.geojson"): READERS,
}
ACTIONS = {"register": DISPATCH, "reject": DISPATCH, "merge": DISPATCH, "dispatch": DISPATCH,
           "suspend": DISPATCH, "resume": DISPATCH, "decide_extension": DISPATCH,
           "accept": {"handler"}, "return": {"handler"}, "handle": {"handler"}, "request_extension": {"handler"},
           "verify_pass": {"inspector"}, "verify_fail": {"inspector"}, "escalate": {"supervisor"}}
PHOTO_KINDS = {"before": {"inspector", "dispatcher"}, "after": {"handler"}, "verification": {"inspector"}}
# the objects a caller from another district must not find
OBJECT_ARGS = {"case_id", "photo_id", "patrol_id", "webhook_id"}


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_every_endpoint_has_an_expectation(app):
    routes = set(_api_rules(app))
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(m.upper(), "/api/v1" + p if not p.startswith("/api/v1") else p) for p, ops in spec["paths"].items()
                  for m in ops if m.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}}
    as_openapi = {(m, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)) for m, rule in routes}
    print(f"\n[authz matrix] url_map endpoints={len(routes)} openapi operations={len(documented)} "
          f"expectations={len(EXPECTED)}")
    assert routes - set(EXPECTED) == set(), "endpoints with no expectation: say who may call them"
    assert set(EXPECTED) - routes == set(), "expectations for endpoints that are gone"
    # the two lists agree, so an endpoint added to either is covered here
    assert as_openapi - documented <= {("GET", "/api/v1/openapi.json")}, as_openapi - documented
    assert documented - as_openapi == set(), documented - as_openapi


@pytest.fixture
def world(app, district, make_user, make_team):
    """A case with a photo, a patrol, a team, a user, a key in one district; callers of every role in it
    and in another district."""
    code = district["code"]
    team = make_team(kind="enforcement", area_codes=[code])
    inside = {r: make_user(r, scope=[code], teams=[team] if r == "handler" else ()) for r in ROLES}
    lon, lat = district["point"](4)
    hook = inside["admin"].post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.get_json()
    case = inside["inspector"].report(lon=lon, lat=lat)
    photo = inside["inspector"].photo(case["id"], "before")
    patrol = inside["inspector"].post("/api/v1/patrols", json={})
    assert patrol.status_code == 201, patrol.get_json()
    key = inside["admin"].post("/api/v1/open311/keys", json={"name": f"k {uuid.uuid4().hex[:6]}"})
    assert key.status_code == 201, key.get_json()
    delivery = inside["admin"].get(f"/api/v1/webhooks/{hook.get_json()['id']}/deliveries").get_json()
    return {"webhook": hook.get_json()["id"], "delivery": delivery["items"][0]["id"],
            "code": code, "team": team, "inside": inside, "case": case["id"], "photo": photo["id"],
            "patrol": patrol.get_json()["id"], "key": key.get_json()["id"], "user": inside["inspector"].id}


def _path(rule, w):
    values = {"case_id": w["case"], "photo_id": w["photo"], "patrol_id": w["patrol"], "team_id": w["team"],
              "user_id": w["user"], "key_id": w["key"], "webhook_id": w["webhook"], "inspector_id": w["user"],
              "delivery_id": w["delivery"], "code": "0701", "day": "2026-12-01",
              "z": 0, "x": 0, "y": 0, "action": "register"}
    path = rule
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in path, path
    return path


def _call(api, method, path, body=None):
    headers = {"If-Match": '"1"', "Idempotency-Key": str(uuid.uuid4())}
    return api.client.open(path, method=method, json=body if body is not None else ({} if method != "GET" else None),
                           headers=api._headers(headers))


def test_every_endpoint_every_role_in_scope(world):
    unexpected, tried = [], 0
    for (method, rule), allowed in EXPECTED.items():
        if allowed in (PUBLIC, ANY) or not isinstance(allowed, set):
            continue
        path = _path(rule, world)
        for role in ROLES:
            if role in allowed:
                continue
            r = _call(world["inside"][role], method, path)
            tried += 1
            if r.status_code != 403:
                unexpected.append((role, method, path, r.status_code))
    for action, allowed in ACTIONS.items():
        for role in sorted(set(ROLES) - allowed):
            r = _call(world["inside"][role], "POST", f"/api/v1/cases/{world['case']}/actions/{action}", {})
            tried += 1
            if r.status_code != 403:
                unexpected.append((role, "POST", f"actions/{action}", r.status_code))
    for kind, allowed in PHOTO_KINDS.items():
        for role in sorted(set(ROLES) - allowed):
            api = world["inside"][role]
            r = api.client.post(f"/api/v1/cases/{world['case']}/photos", content_type="multipart/form-data",
                                data={"kind": kind, "file": (io.BytesIO(png()), "p.png")},
                                headers=api._headers({"Idempotency-Key": str(uuid.uuid4())}))
            tried += 1
            if r.status_code != 403:
                unexpected.append((role, "POST", f"photos kind={kind}", r.status_code))
    print(f"\n[authz in scope] refused-role requests={tried} unexpected={len(unexpected)} {unexpected}")
    assert unexpected == []


def test_every_readable_endpoint_answers_its_roles(world):
    """The allowed roles are not refused (no 401/403), and nothing answers 5xx, on every GET."""
    bad, tried = [], 0
    for (method, rule), allowed in EXPECTED.items():
        if method != "GET" or allowed == PUBLIC:
            continue
        roles = ROLES if allowed == ANY else sorted(allowed)
        for role in roles:
            r = _call(world["inside"][role], method, _path(rule, world))
            tried += 1
            if r.status_code in (401, 403) or r.status_code >= 500:
                bad.append((role, rule, r.status_code))
    print(f"\n[authz allowed reads] requests={tried} refused_or_5xx={bad}")
    assert bad == []


def _outsider_call(api, method, path):
    """A well-formed request, so that only the object's existence can decide the answer."""
    if method == "POST" and path.endswith("/photos"):
        return api.client.post(path, content_type="multipart/form-data",
                               data={"kind": "before", "file": (io.BytesIO(png()), "p.png")},
                               headers=api._headers({"Idempotency-Key": str(uuid.uuid4())}))
    if method == "POST" and path.endswith("/points"):
        return _call(api, method, path, {"seq": 1, "points": [{"lon": 100.0, "lat": 30.0, "accuracy_m": 5,
                                                                "recorded_at": "2026-11-26T09:00:00+08:00"}]})
    return _call(api, method, path)


def test_outsiders_find_no_objects(world, make_user, make_team, app):
    other = f"97{uuid.uuid4().int % 10000:04d}"
    other_team = make_team(kind="enforcement", area_codes=[other])
    outsiders = {r: make_user(r, scope=[other], teams=[other_team] if r == "handler" else ()) for r in ROLES}
    unexpected, tried, leaks = [], 0, []
    for (method, rule), allowed in EXPECTED.items():
        if not any(f"<int:{a}>" in rule for a in OBJECT_ARGS):
            continue
        path = _path(rule, world)
        for role in ROLES:
            if method == "POST" and rule.endswith("/actions/<action>"):
                paths = [path.replace("register", a) for a in ACTIONS]
            else:
                paths = [path]
            for p in paths:
                action = p.rsplit("/", 1)[1] if "/actions/" in p else None
                may = allowed == ANY or role in (ACTIONS[action] if action else
                                                 PHOTO_KINDS["before"] if rule.endswith("/photos") and method == "POST"
                                                 else allowed)
                r = _outsider_call(outsiders[role], method, p)
                tried += 1
                # a role never allowed here may learn only that (403); a role allowed learns nothing exists
                if r.status_code != 404 and (may or r.status_code != 403):
                    unexpected.append((role, method, p, r.status_code))
    # lists, counts and maps hold nothing of the district either
    for role in ROLES:
        api = outsiders[role]
        cases = api.get("/api/v1/cases?per_page=500").get_json()
        if any(c["id"] == world["case"] for c in cases["items"]):
            leaks.append((role, "/cases"))
        grids = api.get(f"/api/v1/grids/locate?lon=0&lat=0")
        if grids.status_code >= 500:
            leaks.append((role, "locate", grids.status_code))
    print(f"\n[authz outsiders] object requests={tried} non-404={unexpected} list leaks={leaks}")
    assert unexpected == [] and leaks == []


def _post_json(api, path, body, **headers):
    return api.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4()), **headers})


FORBIDDEN_FIELDS = {"id": 1, "version": 99, "status": "closed", "reporter_id": 1, "password_hash": "x",
                    "roles": ["admin"], "created_at": "2020-01-01T00:00:00+00:00", "is_admin": True}


def test_mass_assignment_refused(world, district):
    inside = world["inside"]
    lon, lat = district["point"](1)
    u = uuid.uuid4().hex[:8]
    writes = [
        (inside["inspector"], "/api/v1/reports", {"category_code": "0701", "description": "mass", "lon": lon,
                                                   "lat": lat, "accuracy_m": 5,
                                                   "observed_at": "2026-11-26T09:00:00+08:00"}, {}),
        (inside["inspector"], "/api/v1/patrols", {}, {}),
        (inside["admin"], "/api/v1/teams", {"name": f"t {u}", "kind": "community", "agencies": ["居委会"],
                                             "area_codes": [world["code"]], "grid_codes": [], "category_codes": []}, {}),
        (inside["admin"], "/api/v1/users", {"username": f"m{u}", "password": "Long-enough-pass-1!", "display_name": "m",
                                             "roles": ["inspector"], "scope": [world["code"]], "team_ids": []}, {}),
        (inside["admin"], "/api/v1/open311/keys", {"name": f"k{u}"}, {}),
        (inside["dispatcher"], f"/api/v1/cases/{world['case']}/actions/register", {}, {"If-Match": '"{v}"'}),
    ]
    refused, wrong = 0, []
    for api, path, body, headers in writes:
        for field, value in FORBIDDEN_FIELDS.items():
            if field in body:
                continue
            h = {k: v.replace("{v}", str(inside["dispatcher"].case(world["case"])["version"])) for k, v in headers.items()}
            r = _post_json(api, path, dict(body, **{field: value}), **h)
            if r.status_code == 422 and field in (r.get_json().get("errors") or {}):
                refused += 1
            else:
                wrong.append((path, field, r.status_code, (r.get_json() or {}).get("errors")))
        # and the clean body is accepted: the 422s were for the extra field
        h = {k: v.replace("{v}", str(inside["dispatcher"].case(world["case"])["version"])) for k, v in headers.items()}
        r = _post_json(api, path, body, **h)
        assert r.status_code in (200, 201), (path, r.status_code, r.get_json())
    print(f"\n[mass assignment] refused 422 with the field named: {refused}, wrong: {wrong}")
    assert wrong == []
