"""Administering teams: changes validated as a new team is, within the administrator's scope; an
inactive team is kept but no longer offered or dispatched to."""
import uuid

import pytest
from sqlalchemy import text


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def patch(api, path, body):
    return api.client.patch(path, json=body, headers=api._headers(None))


def row(app, team_id):
    (found,) = sql(app, "SELECT name, kind, agencies, area_codes, grid_codes, category_codes, active FROM teams "
                        "WHERE id = :id", id=team_id)
    return tuple(found)


def new_team(admin, district, **overrides):
    body = {"name": f"街道综合执法队 {uuid.uuid4().hex[:8]}", "kind": "enforcement", "agencies": ["城管"],
            "area_codes": [district["code"]], "grid_codes": [], "category_codes": ["0701"]}
    body.update(overrides)
    r = admin.post("/api/v1/teams", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_an_admin_changes_a_team(app, make_user, district):
    code, grids = district["code"], district["grids"]
    admin = make_user("admin", scope=[code])
    team = new_team(admin, district)
    assert team["active"] is True
    body = {"name": f"社区治理队 {uuid.uuid4().hex[:8]}", "kind": "community", "agencies": ["居委会", "物业", "居委会"],
            "area_codes": [f"{code}001001"], "grid_codes": grids[7:9], "category_codes": ["0101", "0701"]}
    r = patch(admin, f"/api/v1/teams/{team['id']}", body)
    assert r.status_code == 200, r.get_json()
    changed = r.get_json()
    assert changed == {"id": team["id"], **body, "active": True}
    assert row(app, team["id"]) == (body["name"], "community", ["居委会", "物业", "居委会"], [f"{code}001001"],
                                    grids[7:9], ["0101", "0701"], True)
    assert admin.get(f"/api/v1/teams/{team['id']}").get_json() == changed
    # only what is sent changes; the same name in another case is still this team's own
    r = patch(admin, f"/api/v1/teams/{team['id']}", {"name": body["name"].upper(), "category_codes": ["0701", "0701"]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {**changed, "name": body["name"].upper(), "category_codes": ["0701"]}


def test_a_deactivated_team_is_kept_but_not_offered(app, make_user, make_team, district):
    code = district["code"]
    admin = make_user("admin", scope=[code])
    team = new_team(admin, district)
    inspector = make_user("inspector", scope=[code])
    lon, lat = district["point"](4)
    case = inspector.report(lon=lon, lat=lat, category_code="0701")
    dispatcher = make_user("dispatcher", scope=[code])
    dispatcher.act(case["id"], "register", {})
    offered = [s["team_id"] for s in dispatcher.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions").get_json()]
    assert team["id"] in offered

    r = patch(admin, f"/api/v1/teams/{team['id']}", {"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    listed = [t["id"] for t in dispatcher.get("/api/v1/teams?per_page=500").get_json()["items"]]
    assert team["id"] not in listed
    every = admin.get("/api/v1/teams?per_page=500&include_inactive=true").get_json()["items"]
    assert [t["active"] for t in every if t["id"] == team["id"]] == [False]
    assert admin.get(f"/api/v1/teams/{team['id']}").get_json()["active"] is False
    offered = [s["team_id"] for s in dispatcher.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions").get_json()]
    assert team["id"] not in offered
    dispatcher.act(case["id"], "dispatch", {"team_id": team["id"]}, expect=422)

    assert patch(admin, f"/api/v1/teams/{team['id']}", {"active": True}).get_json()["active"] is True
    assert dispatcher.act(case["id"], "dispatch", {"team_id": team["id"]})["lead_team_id"] == team["id"]


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("handler",), ("inspector",)])
def test_only_an_admin_changes_teams(app, make_user, make_team, district, roles):
    team = make_team(area_codes=[district["code"]])
    before = row(app, team)
    r = patch(make_user(*roles, scope=[district["code"]]), f"/api/v1/teams/{team}", {"name": "taken", "active": False})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert row(app, team) == before


def test_a_team_outside_the_admins_scope_does_not_exist(app, make_user, make_team, district):
    foreign = make_team(area_codes=["310199"])
    admin = make_user("admin", scope=[district["code"]])
    before = row(app, foreign)
    r = patch(admin, f"/api/v1/teams/{foreign}", {"name": "taken over"})
    missing = patch(admin, "/api/v1/teams/2000000000", {"name": "taken over"})
    assert r.status_code == missing.status_code == 404
    assert {k: v for k, v in r.get_json().items() if k != "detail"} == {
        k: v for k, v in missing.get_json().items() if k != "detail"}
    assert row(app, foreign) == before


def test_a_team_serving_areas_beyond_the_admins_scope_is_seen_but_not_changed(app, make_user, make_team, district):
    code = district["code"]
    shared = make_team(area_codes=[f"{code}001", "310199001"])
    admin = make_user("admin", scope=[code])
    assert admin.get(f"/api/v1/teams/{shared}").status_code == 200
    before = row(app, shared)
    r = patch(admin, f"/api/v1/teams/{shared}", {"area_codes": [f"{code}001"]})
    assert r.status_code == 403 and "outside your scope" in r.get_json()["detail"]
    assert row(app, shared) == before
    # an administrator of both changes it
    city = make_user("admin", scope=["*"])
    assert patch(city, f"/api/v1/teams/{shared}", {"area_codes": [f"{code}001"]}).status_code == 200


@pytest.mark.parametrize("field, value", [
    ("kind", "police"),
    ("category_codes", ["9999"]),
    ("category_codes", ["07"]),
    ("grid_codes", ["{code}001001777"]),
    ("grid_codes", ["3101990010010"]),
    ("grid_codes", ["310199001001001"]),      # outside the admin's scope
    ("area_codes", ["12"]),
    ("area_codes", ["{code}077"]),             # no such street
    ("area_codes", ["310199"]),               # outside the admin's scope
    ("area_codes", ["*"]),
    ("name", ""),
    ("name", "x" * 101),
    ("agencies", "城管"),
    ("agencies", [""]),
    ("active", "sometimes"),
    ("active", "false"),
    ("id", 1),
    ("created_at", "2026-01-01T00:00:00+00:00"),
])
def test_invalid_changes_are_422_naming_the_field_and_change_nothing(app, make_user, district, field, value):
    admin = make_user("admin", scope=[district["code"]])
    team = new_team(admin, district)
    if isinstance(value, list):
        value = [v.format(code=district["code"]) for v in value]
    before = row(app, team["id"])
    r = patch(admin, f"/api/v1/teams/{team['id']}", {"agencies": ["市场监管"], field: value})
    assert r.status_code == 422, r.get_json()
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"]), r.get_json()
    assert row(app, team["id"]) == before


def test_a_team_keeps_at_least_one_area(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    team = new_team(admin, district)
    before = row(app, team["id"])
    r = patch(admin, f"/api/v1/teams/{team['id']}", {"area_codes": []})
    assert r.status_code == 422 and "area_codes" in r.get_json()["errors"]
    assert row(app, team["id"]) == before
    r = patch(admin, f"/api/v1/teams/{team['id']}", {"area_codes": [], "grid_codes": [district["grids"][0]]})
    assert r.status_code == 200 and r.get_json()["grid_codes"] == [district["grids"][0]]


def test_another_teams_name_is_409(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    first, second = new_team(admin, district), new_team(admin, district)
    before = row(app, second["id"])
    r = patch(admin, f"/api/v1/teams/{second['id']}", {"name": first["name"].lower(), "kind": "community"})
    assert r.status_code == 409 and r.mimetype == "application/problem+json" and "name" in r.get_json()["errors"]
    assert row(app, second["id"]) == before


def test_the_openapi_document_describes_the_team_change(app):
    from gridpatrol.teams.schemas import TeamIn, TeamPatch

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/teams/{team_id}"]["patch"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == set(TeamPatch().load_fields) == set(TeamIn().load_fields) | {"active"}
    assert not schema.get("required") and schema["additionalProperties"] is False
    assert schema["properties"]["kind"]["enum"] == ["patrol", "enforcement", "community", "supervision"]
