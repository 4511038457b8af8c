"""Administering the category catalog: every change is a new catalog version; a category is retired,
never deleted, stays readable, and reports made against an older catalog are still taken."""
import copy
import itertools
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

_codes = itertools.count(9500)


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def patch(api, path, body):
    return api.client.patch(path, json=body, headers=api._headers(None))


def category_body(**overrides):
    body = {"code": str(next(_codes)), "kind": "event", "name_zh": "共享单车乱停放", "name_en": "Shared bikes parked badly",
            "major_name_zh": "街面秩序", "major_name_en": "Street order", "team_kind": "enforcement",
            "filing_condition": "共享单车占用盲道或机动车道", "closure_condition": "车辆清理归位",
            "limits": {"A": {"amount": 2, "unit": "hour", "clock": True},
                       "B": {"amount": 4, "unit": "hour", "clock": False},
                       "C": {"amount": 5, "unit": "day", "clock": False}}}
    body.update(overrides)
    return body


def catalog(api):
    r = api.get("/api/v1/categories")
    assert r.status_code == 200
    body = r.get_json()
    return body["version"], {c["code"]: c for c in body["items"]}


def stored(app, code):
    return sql(app, "SELECT kind, name_zh, name_en, team_kind, limits, public, since_version, retired_in_version "
                    "FROM categories WHERE code = :code", code=code)


def versions(app):
    return sql(app, "SELECT count(*), max(version) FROM catalog_versions")[0]


def test_an_admin_adds_a_category_in_a_new_version(app, make_user):
    admin = make_user("admin")
    version, _ = catalog(admin)
    body = category_body(public=False)
    r = admin.post("/api/v1/categories", json=body)
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert {k: made[k] for k in body if k != "limits"} == {k: v for k, v in body.items() if k != "limits"}
    assert made["limits"] == {u: {**v, "amount": float(v["amount"])} for u, v in body["limits"].items()}
    assert made["active"] is True and made["since_version"] == version + 1 and made["retired_in_version"] is None
    new_version, items = catalog(make_user("inspector"))
    assert new_version == version + 1 and items[body["code"]] == made
    (note,) = sql(app, "SELECT note FROM catalog_versions WHERE version = :v", v=new_version)[0]
    assert body["code"] in note and admin.username in note


def test_public_defaults_to_true_and_decides_the_open311_service(client, make_user):
    admin = make_user("admin")
    hidden, shown = category_body(public=False), category_body()
    assert admin.post("/api/v1/categories", json=hidden).status_code == 201
    r = admin.post("/api/v1/categories", json=shown)
    assert r.status_code == 201 and r.get_json()["public"] is True
    services = [s["service_code"] for s in client.get("/open311/v2/services.json").get_json()]
    assert shown["code"] in services and hidden["code"] not in services


def test_a_change_is_a_new_version_and_no_change_is_none(app, make_user):
    admin = make_user("admin")
    body = category_body()
    admin.post("/api/v1/categories", json=body)
    version, _ = catalog(admin)
    limits = copy.deepcopy(body["limits"])
    limits["C"] = {"amount": 10, "unit": "day", "clock": False}
    r = patch(admin, f"/api/v1/categories/{body['code']}", {"name_en": "Shared bicycles", "limits": limits,
                                                            "major_name_en": None})
    assert r.status_code == 200, r.get_json()
    changed = r.get_json()
    assert changed["name_en"] == "Shared bicycles" and changed["limits"]["C"]["amount"] == 10
    assert changed["major_name_en"] is None and changed["name_zh"] == body["name_zh"]
    after, items = catalog(admin)
    assert after == version + 1 and items[body["code"]] == changed
    # the same values again change nothing: no new version
    assert patch(admin, f"/api/v1/categories/{body['code']}", {"name_en": "Shared bicycles"}).status_code == 200
    assert patch(admin, f"/api/v1/categories/{body['code']}", {}).status_code == 200
    assert catalog(admin)[0] == after


def test_changed_limits_set_the_deadlines_of_stages_started_after(make_user, make_team, district):
    code = district["code"]
    admin = make_user("admin", scope=[code])
    body = category_body()
    admin.post("/api/v1/categories", json=body)
    limits = copy.deepcopy(body["limits"])
    limits["B"] = {"amount": 3, "unit": "hour", "clock": True}
    assert patch(admin, f"/api/v1/categories/{body['code']}", {"limits": limits}).status_code == 200
    team = make_team(area_codes=[code], category_codes=[body["code"]])
    lon, lat = district["point"](0)
    case = make_user("inspector", scope=[code]).report(lon=lon, lat=lat, category_code=body["code"], urgency="B")
    dispatcher = make_user("dispatcher", scope=[code])
    dispatcher.act(case["id"], "register", {})
    dispatched = dispatcher.act(case["id"], "dispatch", {"team_id": team})
    handle_by = datetime.fromisoformat(dispatched["deadlines"]["handle"])
    assert handle_by - datetime.fromisoformat(dispatched["updated_at"]) == timedelta(hours=3)


def test_retiring_keeps_the_category_readable_and_old_reports_accepted(app, make_user, district):
    code = district["code"]
    admin = make_user("admin", scope=[code])
    inspector = make_user("inspector", scope=[code])
    body = category_body()
    admin.post("/api/v1/categories", json=body)
    before, _ = catalog(admin)
    lon, lat = district["point"](1)
    earlier = inspector.report(lon=lon, lat=lat, category_code=body["code"], catalog_version=before)

    r = admin.delete(f"/api/v1/categories/{body['code']}")
    assert r.status_code == 204 and r.data == b""
    after, items = catalog(inspector)
    assert after == before + 1
    assert items[body["code"]]["active"] is False and items[body["code"]]["retired_in_version"] == after
    assert stored(app, body["code"])[0].retired_in_version == after
    # a case already made with it reads as before
    assert inspector.case(earlier["id"])["category_code"] == body["code"]
    # a client still holding the older catalog may report with it; one on the current catalog may not
    old = inspector.report(lon=lon, lat=lat, category_code=body["code"], catalog_version=before)
    assert old["category_code"] == body["code"]
    for version in (after, None):
        extra = {} if version is None else {"catalog_version": version}
        refused = inspector.report(lon=lon, lat=lat, category_code=body["code"], expect=422, **extra)
        assert "category_code" in refused["errors"]
    # retiring again changes nothing; changing a retired category is a conflict
    assert admin.delete(f"/api/v1/categories/{body['code']}").status_code == 204
    assert catalog(admin)[0] == after
    r = patch(admin, f"/api/v1/categories/{body['code']}", {"name_en": "revived?"})
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    assert catalog(admin)[0] == after
    # adding its code again brings it back, in a new version
    r = admin.post("/api/v1/categories", json={**body, "name_en": "Shared bikes, again"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["active"] is True and r.get_json()["since_version"] == after + 1
    assert inspector.report(lon=lon, lat=lat, category_code=body["code"])["category_code"] == body["code"]


def test_an_active_code_is_taken(app, make_user):
    admin = make_user("admin")
    body = category_body()
    assert admin.post("/api/v1/categories", json=body).status_code == 201
    count = versions(app)
    r = admin.post("/api/v1/categories", json={**body, "name_en": "Another"})
    assert r.status_code == 409 and "code" in r.get_json()["errors"]
    assert versions(app) == count and stored(app, body["code"])[0].name_en == body["name_en"]
    r = admin.post("/api/v1/categories", json=category_body(code="0701"))
    assert r.status_code == 409


def test_unknown_categories_are_404(app, make_user):
    admin = make_user("admin")
    count = versions(app)
    for code in ("9998", "12", "abcd"):
        assert patch(admin, f"/api/v1/categories/{code}", {"name_en": "x"}).status_code == 404
        assert admin.delete(f"/api/v1/categories/{code}").status_code == 404
    assert versions(app) == count


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("handler",), ("inspector",)])
def test_only_an_admin_changes_the_catalog(app, make_user, roles):
    admin = make_user("admin")
    existing = category_body()
    admin.post("/api/v1/categories", json=existing)
    api = make_user(*roles)
    count = versions(app)
    body = category_body()
    assert api.post("/api/v1/categories", json=body).status_code == 403
    assert patch(api, f"/api/v1/categories/{existing['code']}", {"name_en": "x"}).status_code == 403
    assert api.delete(f"/api/v1/categories/{existing['code']}").status_code == 403
    assert versions(app) == count and stored(app, body["code"]) == []
    assert stored(app, existing["code"])[0].name_en == existing["name_en"]
    assert stored(app, existing["code"])[0].retired_in_version is None


def test_the_catalog_needs_a_signed_in_admin(anon):
    assert anon.post("/api/v1/categories", json=category_body()).status_code == 401
    assert anon.delete("/api/v1/categories/0701").status_code == 401


def _without(key):
    body = category_body()
    del body[key]
    return body


def _limits(**changes):
    body = category_body()
    for urgency, value in changes.items():
        if value is None:
            del body["limits"][urgency]
        else:
            body["limits"][urgency] = value
    return body


@pytest.mark.parametrize("body, field", [
    (category_body(code="123"), "code"),
    (category_body(code="abcd"), "code"),
    (_without("code"), "code"),
    (category_body(kind="thing"), "kind"),
    (category_body(team_kind="police"), "team_kind"),
    (category_body(name_zh=""), "name_zh"),
    (category_body(name_en="x" * 101), "name_en"),
    (_without("name_en"), "name_en"),
    (_without("filing_condition"), "filing_condition"),
    (_without("closure_condition"), "closure_condition"),
    (_without("limits"), "limits"),
    (category_body(limits="fast"), "limits"),
    (_limits(C=None), "limits.C"),
    (_limits(A={"amount": 0, "unit": "hour", "clock": True}), "limits.A.amount"),
    (_limits(B={"amount": -4, "unit": "hour", "clock": False}), "limits.B.amount"),
    (_limits(B={"amount": "four", "unit": "hour", "clock": False}), "limits.B.amount"),
    (_limits(C={"amount": 5, "unit": "week", "clock": False}), "limits.C.unit"),
    (_limits(C={"amount": 5, "unit": "day"}), "limits.C.clock"),
    (_limits(C={"amount": 5, "unit": "day", "clock": "maybe"}), "limits.C.clock"),
    (_limits(A={"amount": 2, "unit": "hour", "clock": "true"}), "limits.A.clock"),
    (_limits(A={"amount": float("inf"), "unit": "hour", "clock": True}), "limits.A.amount"),
    (_limits(C={"amount": 5, "unit": "day", "clock": False, "grace": 1}), "limits.C.grace"),
    (_limits(D={"amount": 5, "unit": "day", "clock": False}), "limits.D"),
    (category_body(public="yes please"), "public"),
    (category_body(active=False), "active"),
    (category_body(since_version=1), "since_version"),
])
def test_invalid_categories_are_422_naming_the_field(app, make_user, body, field):
    admin = make_user("admin")
    count = versions(app)
    r = admin.post("/api/v1/categories", json=body)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"]), r.get_json()
    assert versions(app) == count
    if body.get("code", "").isdigit() and len(body["code"]) == 4:
        assert stored(app, body["code"]) == []


@pytest.mark.parametrize("change, field", [
    ({"code": "9501"}, "code"),
    ({"limits": {"A": {"amount": 2, "unit": "hour", "clock": True}}}, "limits.B"),
    ({"limits": {"A": {"amount": 2, "unit": "minute", "clock": True}, "B": {"amount": 1, "unit": "day", "clock": False},
                 "C": {"amount": 1, "unit": "day", "clock": False}}}, "limits.A.unit"),
    ({"kind": None}, "kind"),
    ({"name_zh": None}, "name_zh"),
    ({"team_kind": "police"}, "team_kind"),
    ({"filing_condition": "x" * 2001}, "filing_condition"),
    ({"retired_in_version": None}, "retired_in_version"),
])
def test_invalid_changes_are_422_and_change_nothing(app, make_user, change, field):
    admin = make_user("admin")
    body = category_body()
    admin.post("/api/v1/categories", json=body)
    before, count = stored(app, body["code"]), versions(app)
    r = patch(admin, f"/api/v1/categories/{body['code']}", {"name_en": "changed", **change})
    assert r.status_code == 422, r.get_json()
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"]), r.get_json()
    assert stored(app, body["code"]) == before and versions(app) == count


def test_the_openapi_document_describes_the_catalog_writes(app):
    from gridpatrol.catalog.schemas import CategoryIn, CategoryPatch

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    post = spec["paths"]["/api/v1/categories"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == set(CategoryIn().load_fields)
    assert set(schema["required"]) == {n for n, f in CategoryIn().load_fields.items() if f.required}
    assert "201" in post["responses"]
    limits = spec["components"]["schemas"][schema["properties"]["limits"]["$ref"].rsplit("/", 1)[1]]
    assert set(limits["required"]) == {"A", "B", "C"}
    item = spec["paths"]["/api/v1/categories/{code}"]
    ref = item["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]) == set(CategoryPatch().load_fields)
    assert "code" not in CategoryPatch().load_fields
    assert "204" in item["delete"]["responses"]
