"""The category catalog, teams, and the dispatch suggestions that route a case to them."""
import uuid

import pytest


# ------------------------------------------------------------------ categories

def test_the_catalog_lists_parts_and_events_with_limits(make_user):
    api = make_user("inspector")
    r = api.get("/api/v1/categories")
    assert r.status_code == 200
    body = r.get_json()
    assert isinstance(body["version"], int) and body["version"] >= 1
    items = body["items"]
    assert len(items) >= 40
    assert {i["kind"] for i in items} == {"part", "event"}
    codes = [i["code"] for i in items]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    for item in items:
        assert len(item["code"]) == 4 and item["code"].isdigit()
        assert item["name_zh"] and item["name_en"] and item["name_zh"] != item["name_en"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in item["name_zh"]), item
        assert item["team_kind"] in ("patrol", "enforcement", "community", "supervision")
        assert set(item["limits"]) == {"A", "B", "C"}
        for cls, limit in item["limits"].items():
            assert set(limit) >= {"amount", "unit", "clock"}, (item["code"], cls)
            assert limit["amount"] > 0 and limit["unit"] in ("hour", "day") and isinstance(limit["clock"], bool)
        assert isinstance(item["active"], bool)
    garbage = next(i for i in items if i["code"] == "0701")
    assert garbage["kind"] == "event" and garbage["active"] is True


def test_urgent_limits_run_on_the_clock_and_slow_ones_on_working_days(make_user):
    items = make_user("dispatcher").get("/api/v1/categories").get_json()["items"]
    assert all(i["limits"]["A"]["clock"] for i in items if i["active"])
    assert any(i["limits"]["C"]["unit"] == "day" and not i["limits"]["C"]["clock"] for i in items)


def test_the_catalog_needs_a_signed_in_user(anon):
    assert anon.get("/api/v1/categories").status_code == 401


# ------------------------------------------------------------------ teams

def team_body(**overrides):
    body = {"name": f"综合执法队 {uuid.uuid4().hex[:8]}", "kind": "enforcement", "agencies": ["城管", "市场监管"],
            "area_codes": ["310199001"], "grid_codes": [], "category_codes": ["0701", "0101"]}
    body.update(overrides)
    return body


def test_an_admin_creates_a_team_and_everyone_in_scope_sees_it(make_user):
    admin = make_user("admin", scope=["310199"])
    body = team_body()
    r = admin.post("/api/v1/teams", json=body)
    assert r.status_code == 201, r.get_json()
    team = r.get_json()
    assert {k: team[k] for k in body} == body and isinstance(team["id"], int)
    for roles in (("handler",), ("inspector",), ("supervisor",)):
        teams = make_user(*roles, scope=["310199001"]).get("/api/v1/teams?per_page=500").get_json()
        assert team["id"] in [t["id"] for t in teams["items"]]
        assert teams["total"] == len(teams["items"]) and (teams["page"], teams["per_page"]) == (1, 500)
    one = make_user("inspector", scope=["310199001001"]).get(f"/api/v1/teams/{team['id']}")
    assert one.status_code == 200 and one.get_json()["name"] == body["name"]


def test_the_team_list_is_paged(make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    made = [admin.post("/api/v1/teams", json=team_body(area_codes=[district["code"]])).get_json()["id"]
            for _ in range(3)]
    first = admin.get("/api/v1/teams?per_page=2").get_json()
    second = admin.get("/api/v1/teams?per_page=2&page=2").get_json()
    assert first["total"] == second["total"] == 3
    assert [t["id"] for t in first["items"] + second["items"]] == made
    assert admin.get("/api/v1/teams?per_page=501").status_code == 422


@pytest.mark.parametrize("kind", ["patrol", "enforcement", "community", "supervision"])
def test_every_team_kind_is_accepted(make_user, kind):
    admin = make_user("admin")
    r = admin.post("/api/v1/teams", json=team_body(kind=kind))
    assert r.status_code == 201 and r.get_json()["kind"] == kind


def test_a_team_serving_single_grids(make_user):
    admin = make_user("admin")
    r = admin.post("/api/v1/teams", json=team_body(area_codes=[], grid_codes=["310199001001001"]))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["grid_codes"] == ["310199001001001"]


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("handler",), ("inspector",)])
def test_only_an_admin_creates_teams(make_user, roles):
    body = team_body()
    assert make_user(*roles).post("/api/v1/teams", json=body).status_code == 403
    assert body["name"] not in [t["name"] for t in make_user("admin").get("/api/v1/teams?per_page=500").get_json()["items"]]


@pytest.mark.parametrize("field, value", [
    ("kind", "police"),
    ("category_codes", ["9999"]),
    ("category_codes", ["07"]),
    ("grid_codes", ["310199009009009"]),
    ("grid_codes", ["3101990010010"]),
    ("area_codes", ["12"]),
    ("area_codes", ["310199077"]),
    ("area_codes", ["*"]),
    ("name", ""),
    ("agencies", "城管"),
])
def test_invalid_team_values_are_422_naming_the_field(make_user, field, value):
    admin = make_user("admin", scope=["*"])
    r = admin.post("/api/v1/teams", json=team_body(**{field: value}))
    assert r.status_code == 422, r.get_json()
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"])


def test_a_team_needs_an_area(make_user):
    r = make_user("admin").post("/api/v1/teams", json=team_body(area_codes=[], grid_codes=[]))
    assert r.status_code == 422


@pytest.mark.parametrize("field", ["id", "active", "created_at"])
def test_unknown_team_fields_are_refused(make_user, field):
    r = make_user("admin").post("/api/v1/teams", json=team_body(**{field: 1}))
    assert r.status_code == 422 and field in r.get_json()["errors"]


def test_an_admin_cannot_make_a_team_outside_their_scope(make_user, district):
    admin = make_user("admin", scope=["310199001"])
    r = admin.post("/api/v1/teams", json=team_body(area_codes=["310199"]))
    assert r.status_code == 422 and "area_codes" in r.get_json()["errors"]
    r = admin.post("/api/v1/teams", json=team_body(area_codes=["310199002"]))
    assert r.status_code == 422 and "area_codes" in r.get_json()["errors"]
    r = admin.post("/api/v1/teams", json=team_body(area_codes=[], grid_codes=[district["grids"][0]]))
    assert r.status_code == 422 and "grid_codes" in r.get_json()["errors"]


def test_a_duplicate_team_name_is_409(make_user):
    admin = make_user("admin")
    body = team_body()
    assert admin.post("/api/v1/teams", json=body).status_code == 201
    r = admin.post("/api/v1/teams", json=team_body(name=body["name"]))
    assert r.status_code == 409 and r.mimetype == "application/problem+json"


def test_teams_of_another_district_are_invisible(make_user, make_team, district):
    mine = make_team(area_codes=[district["code"]])
    theirs = make_team(area_codes=["310199"])
    by_grid = make_team(area_codes=[], grid_codes=[district["grids"][4]])
    api = make_user("dispatcher", scope=[district["code"]])
    ids = [t["id"] for t in api.get("/api/v1/teams?per_page=500").get_json()["items"]]
    assert mine in ids and by_grid in ids and theirs not in ids
    assert api.get(f"/api/v1/teams/{theirs}").status_code == 404
    assert api.get("/api/v1/teams/2000000000").status_code == 404
    outsider = make_user("dispatcher", scope=["310199"])
    ids = [t["id"] for t in outsider.get("/api/v1/teams?per_page=500").get_json()["items"]]
    assert theirs in ids and mine not in ids and by_grid not in ids
    assert outsider.get(f"/api/v1/teams/{mine}").status_code == 404


# ------------------------------------------------------------------ dispatch suggestions

def registered_case(make_user, district, grid=4, category="0701"):
    inspector = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](grid)
    case = inspector.report(lon=lon, lat=lat, category_code=category)
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    dispatcher.act(case["id"], "register", {})
    return case, dispatcher


def test_suggestions_rank_competent_covering_and_least_loaded_teams_first(make_user, make_team, district):
    code, grids = district["code"], district["grids"]
    best = make_team(area_codes=[code], category_codes=["0701"], name=f"best {uuid.uuid4().hex[:6]}")
    busy = make_team(area_codes=[code], category_codes=["0701"], name=f"busy {uuid.uuid4().hex[:6]}")
    elsewhere = make_team(area_codes=[], grid_codes=[grids[8]], category_codes=["0701"])
    incompetent = make_team(area_codes=[code], category_codes=["0101"])
    community = make_team(kind="community", area_codes=[f"{code}001001"], category_codes=[])
    patrol = make_team(kind="patrol", area_codes=[code], category_codes=["0701"])
    foreign = make_team(area_codes=["310199"], category_codes=["0701"])

    # two open cases on the busy team
    for _ in range(2):
        other, dispatcher = registered_case(make_user, district, grid=0)
        dispatcher.act(other["id"], "dispatch", {"team_id": busy})

    case, dispatcher = registered_case(make_user, district, grid=4)
    r = dispatcher.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions")
    assert r.status_code == 200, r.get_json()
    ranked = r.get_json()
    ids = [s["team_id"] for s in ranked]
    assert ids[:5] == [best, busy, elsewhere, incompetent, community]
    assert patrol not in ids and foreign not in ids
    scores = [s["score"] for s in ranked]
    assert scores == sorted(scores, reverse=True)
    first = ranked[0]
    assert set(first) >= {"team_id", "name", "kind", "score", "reasons"}
    assert first["kind"] == "enforcement" and first["name"].startswith("best")
    assert any("competent" in reason and "0701" in reason for reason in first["reasons"])
    assert any(grids[4] in reason for reason in first["reasons"])
    assert any("0 open cases" == reason for reason in first["reasons"])
    second = ranked[1]
    assert "2 open cases" in second["reasons"] and second["score"] < first["score"]
    third = ranked[2]
    assert any("not this grid" in reason for reason in third["reasons"])
    fourth = ranked[3]
    assert any("not listed as competent" in reason for reason in fourth["reasons"])


def test_suggestions_are_for_dispatchers_only(make_user, make_team, district):
    make_team(area_codes=[district["code"]])
    case, _ = registered_case(make_user, district)
    for roles in (("inspector",), ("handler",), ("supervisor",), ("admin",)):
        api = make_user(*roles, scope=[district["code"]])
        assert api.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions").status_code == 403, roles


def test_suggestions_for_a_case_outside_scope_are_404(make_user, make_team, district):
    case, _ = registered_case(make_user, district)
    outsider = make_user("dispatcher", scope=["310199"])
    r = outsider.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert outsider.get("/api/v1/cases/9999999999/dispatch-suggestions").status_code == 404


def test_suggestions_for_a_case_outside_every_grid(make_user, make_team, district):
    team = make_team(area_codes=[district["code"]], category_codes=["0701"])
    inspector = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](0)
    case = inspector.report(lon=lon, lat=lat + 0.01)  # ~1 km north: no grid
    assert case["grid_code"] is None
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    r = dispatcher.get(f"/api/v1/cases/{case['id']}/dispatch-suggestions")
    assert r.status_code == 200, r.get_json()
    assert [s["team_id"] for s in r.get_json()] == [team]
