"""Administering users: the list an administrator manages, and changes to a user (roles, scope, teams,
responsibility grids, deactivation, a new password), each within the administrator's own scope."""
import uuid
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from helpers import PASSWORD

ROLES = ("inspector", "dispatcher", "handler", "supervisor", "admin")


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def patch(api, path, body):
    return api.client.patch(path, json=body, headers=api._headers(None))


def address() -> dict:
    """A client address of its own, so failed sign-ins here never throttle another test's."""
    n = uuid.uuid4().int
    return {"REMOTE_ADDR": f"172.{16 + n % 16}.{(n >> 8) % 256}.{(n >> 16) % 256}"}


def sign_in(client, username, password):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base=address())


def row(app, user_id):
    """The user as stored, to show that a refused change changed nothing."""
    (found,) = sql(app, "SELECT username, display_name, roles, scope, grid_codes, active, password_hash, "
                        "array(SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id) AS teams "
                        "FROM users u WHERE id = :id", id=user_id)
    return tuple(found)


def live_tokens(app, user_id):
    return sql(app, "SELECT count(*) FROM tokens WHERE user_id = :id AND revoked_at IS NULL", id=user_id)[0][0]


def listed(api, **query):
    r = api.get(f"/api/v1/users?{urlencode({'per_page': 500, **query})}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# ------------------------------------------------------------------ the list

def test_an_admin_lists_the_users_whose_scope_lies_in_theirs(make_user, district):
    code = district["code"]
    admin = make_user("admin", scope=[code])
    street = make_user("inspector", scope=[f"{code}001"], username=f"l_street_{uuid.uuid4().hex[:6]}")
    whole = make_user("dispatcher", "supervisor", scope=[code], username=f"l_whole_{uuid.uuid4().hex[:6]}")
    wider = make_user("supervisor", scope=[code, "310199"])       # partly outside: not this admin's
    everywhere = make_user("admin", scope=["*"])                   # the whole deployment
    elsewhere = make_user("inspector", scope=["310199001"])

    body = listed(admin)
    ids = [u["id"] for u in body["items"]]
    assert set(ids) == {admin.id, street.id, whole.id}
    assert body["total"] == 3 and (body["page"], body["per_page"]) == (1, 500)
    by_id = {u["id"]: u for u in body["items"]}
    assert by_id[street.id] == {"id": street.id, "username": street.username, "display_name": street.username,
                                "roles": ["inspector"], "scope": [f"{code}001"], "team_ids": [], "grid_codes": [],
                                "active": True, "created_at": by_id[street.id]["created_at"]}
    assert sorted(by_id[whole.id]["roles"]) == ["dispatcher", "supervisor"]
    # ordered by username
    names = [u["username"] for u in body["items"]]
    assert names == sorted(names, key=str.lower)
    # the whole deployment's administrator sees them all
    for user in (admin, street, whole, wider, everywhere, elsewhere):
        assert [u["id"] for u in listed(everywhere, q=user.username)["items"]] == [user.id]
    # and a district's administrator does not see the one of the whole deployment, nor one of a wider scope
    assert listed(admin, q=everywhere.username)["total"] == listed(admin, q=wider.username)["total"] == 0


def test_the_list_filters_by_role_and_text_and_pages(make_user, district):
    code = district["code"]
    admin = make_user("admin", scope=[code])
    tag = uuid.uuid4().hex[:6]
    inspectors = [make_user("inspector", scope=[code], username=f"insp_{tag}_{i}") for i in range(3)]
    handler = make_user("handler", "inspector", scope=[code], username=f"hand_{tag}")
    dispatcher = make_user("dispatcher", scope=[code], username=f"disp_{tag}")

    assert {u["id"] for u in listed(admin, role="inspector")["items"]} == {u.id for u in inspectors} | {handler.id}
    assert [u["id"] for u in listed(admin, role="dispatcher")["items"]] == [dispatcher.id]
    assert [u["id"] for u in listed(admin, q=f"INSP_{tag}_1")["items"]] == [inspectors[1].id]
    assert {u["id"] for u in listed(admin, q=f"_{tag}")["items"]} == {u.id for u in (*inspectors, handler, dispatcher)}
    # % and _ are plain characters in the search, not wildcards
    assert listed(admin, q="%")["items"] == []

    first = listed(admin, role="inspector", per_page=2)
    second = listed(admin, role="inspector", per_page=2, page=2)
    assert first["total"] == second["total"] == 4
    assert len(first["items"]) == 2 and len(second["items"]) == 2
    assert {u["id"] for u in first["items"] + second["items"]} == {u.id for u in inspectors} | {handler.id}


def test_display_names_are_searched_too(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    user = make_user("inspector", scope=[district["code"]])
    assert patch(admin, f"/api/v1/users/{user.id}", {"display_name": "网格员 王小明"}).status_code == 200
    assert [u["id"] for u in listed(admin, q="王小明")["items"]] == [user.id]


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("inspector",), ("handler",)])
def test_only_an_admin_lists_and_changes_users(app, make_user, roles, district):
    api = make_user(*roles, scope=[district["code"]])
    target = make_user("inspector", scope=[district["code"]])
    before = row(app, target.id)
    assert api.get("/api/v1/users").status_code == 403
    assert api.get(f"/api/v1/users/{target.id}").status_code == 403
    r = patch(api, f"/api/v1/users/{target.id}", {"roles": ["admin"], "active": False})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert row(app, target.id) == before and live_tokens(app, target.id) == 1


def test_users_need_a_signed_in_caller(anon):
    assert anon.get("/api/v1/users").status_code == 401
    assert anon.client.patch("/api/v1/users/1", json={"display_name": "x"}).status_code == 401


@pytest.mark.parametrize("query, field", [("role=overlord", "role"), ("per_page=501", "per_page"),
                                          ("page=0", "page"), ("q=", "q"), ("q=" + "x" * 101, "q")])
def test_bad_list_queries_are_422(make_user, query, field):
    r = make_user("admin").get(f"/api/v1/users?{query}")
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]


# ------------------------------------------------------------------ changing a user

def test_an_admin_changes_a_user(app, client, make_user, make_team, district):
    code, grids = district["code"], district["grids"]
    admin = make_user("admin", scope=[code])
    team = make_team(area_codes=[code])
    user = make_user("inspector", scope=[f"{code}001"])
    body = {"display_name": "李四", "roles": ["handler", "inspector", "handler"], "scope": [code],
            "team_ids": [team], "grid_codes": grids[:2]}
    r = patch(admin, f"/api/v1/users/{user.id}", body)
    assert r.status_code == 200, r.get_json()
    changed = r.get_json()
    assert changed["id"] == user.id and changed["username"] == user.username
    assert changed["display_name"] == "李四" and changed["roles"] == ["handler", "inspector"]
    assert changed["scope"] == [code] and changed["team_ids"] == [team] and changed["grid_codes"] == grids[:2]
    assert changed["active"] is True and "password" not in changed and "password_hash" not in changed
    # stored, and seen by the user themselves
    assert admin.get(f"/api/v1/users/{user.id}").get_json() == changed
    me = user.get("/api/v1/me").get_json()
    assert (me["display_name"], me["roles"], me["scope"], me["team_ids"]) == ("李四", ["handler", "inspector"],
                                                                              [code], [team])
    # a change of roles does not sign anyone out
    assert live_tokens(app, user.id) == 1
    # only what is sent changes
    r = patch(admin, f"/api/v1/users/{user.id}", {"display_name": "李四四"})
    assert r.get_json() == {**changed, "display_name": "李四四"}
    # an empty change is no change
    assert patch(admin, f"/api/v1/users/{user.id}", {}).get_json() == {**changed, "display_name": "李四四"}


def test_deactivating_a_user_signs_them_out_everywhere(app, client, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    user = make_user("inspector", scope=[district["code"]])
    second = sign_in(client, user.username, PASSWORD).get_json()["access_token"]
    assert live_tokens(app, user.id) == 2
    r = patch(admin, f"/api/v1/users/{user.id}", {"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert live_tokens(app, user.id) == 0
    assert user.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert sign_in(client, user.username, PASSWORD).status_code == 401
    assert [u["active"] for u in listed(admin)["items"] if u["id"] == user.id] == [False]
    # back again: they sign in anew, the old tokens stay dead
    r = patch(admin, f"/api/v1/users/{user.id}", {"active": True})
    assert r.status_code == 200 and r.get_json()["active"] is True
    assert user.get("/api/v1/me").status_code == 401
    assert sign_in(client, user.username, PASSWORD).status_code == 200


def test_a_new_password_revokes_the_users_tokens(app, client, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    user = make_user("dispatcher", scope=[district["code"]])
    hash_before = row(app, user.id)[6]
    r = patch(admin, f"/api/v1/users/{user.id}", {"password": "a-brand-new-password"})
    assert r.status_code == 200 and "password" not in r.get_json()
    stored = row(app, user.id)[6]
    assert stored != hash_before and stored.startswith("$argon2id$") and "a-brand-new-password" not in stored
    assert user.get("/api/v1/me").status_code == 401
    assert sign_in(client, user.username, PASSWORD).status_code == 401
    assert sign_in(client, user.username, "a-brand-new-password").status_code == 200
    # the administrator's own tokens are untouched
    assert admin.get("/api/v1/me").status_code == 200


def test_an_admin_keeps_their_own_admin_role_and_access(app, make_user, district):
    admin = make_user("admin", "supervisor", scope=[district["code"]])
    before = row(app, admin.id)
    r = patch(admin, f"/api/v1/users/{admin.id}", {"roles": ["supervisor"]})
    assert r.status_code == 422 and "roles" in r.get_json()["errors"]
    r = patch(admin, f"/api/v1/users/{admin.id}", {"active": False, "display_name": "gone"})
    assert r.status_code == 422 and "active" in r.get_json()["errors"]
    assert row(app, admin.id) == before and admin.get("/api/v1/me").status_code == 200
    # anything else about themselves they may change
    r = patch(admin, f"/api/v1/users/{admin.id}", {"roles": ["admin"], "display_name": "管理员"})
    assert r.status_code == 200 and r.get_json()["roles"] == ["admin"]
    # another admin may take the role away
    other = make_user("admin", scope=[district["code"]])
    assert patch(other, f"/api/v1/users/{admin.id}", {"roles": ["supervisor"]}).status_code == 200
    assert admin.get("/api/v1/users").status_code == 403


def test_users_outside_the_admins_scope_do_not_exist(app, make_user, district):
    code = district["code"]
    admin = make_user("admin", scope=[f"{code}001"])
    wider = make_user("inspector", scope=[code])                   # the district: wider than the admin's street
    elsewhere = make_user("inspector", scope=["310199001"])
    everywhere = make_user("admin", scope=["*"])
    for target in (wider, elsewhere, everywhere):
        before = row(app, target.id)
        got = admin.get(f"/api/v1/users/{target.id}")
        r = patch(admin, f"/api/v1/users/{target.id}", {"display_name": "taken over", "active": False})
        assert got.status_code == 404 and r.status_code == 404 and r.mimetype == "application/problem+json"
        assert row(app, target.id) == before and live_tokens(app, target.id) == 1
    missing = patch(admin, "/api/v1/users/999999999", {"display_name": "x"})
    assert missing.status_code == 404
    assert {k: v for k, v in missing.get_json().items() if k != "detail"} == {
        k: v for k, v in patch(admin, f"/api/v1/users/{wider.id}", {"display_name": "x"}).get_json().items()
        if k != "detail"}
    assert patch(admin, "/api/v1/users/99999999999999999999", {"display_name": "x"}).status_code == 404


def new_target(make_user, district):
    return make_user("inspector", scope=[f"{district['code']}001"], grid_codes=[district["grids"][0]])


@pytest.mark.parametrize("field, value", [
    ("roles", ["overlord"]),
    ("roles", []),
    ("roles", "inspector"),
    ("scope", []),
    ("scope", ["31019"]),
    ("scope", ["abcdef"]),
    ("scope", ["310199"]),            # outside the admin's scope
    ("scope", ["*"]),                 # wider than the admin's scope
    ("grid_codes", ["12345"]),
    ("grid_codes", ["310199001001001"]),   # a grid outside the user's scope
    ("grid_codes", ["{code}001001777"]),   # no such grid
    ("team_ids", ["x"]),
    ("team_ids", [2_000_000_000]),
    ("password", "short"),
    ("display_name", ""),
    ("display_name", "x" * 101),
    ("active", "perhaps"),
    ("active", "no"),                 # a JSON boolean, not a word for one
    ("username", "renamed"),
    ("id", 1),
    ("password_hash", "$argon2id$v=19$x"),
    ("created_at", "2026-01-01T00:00:00+00:00"),
])
def test_invalid_changes_are_422_naming_the_field_and_change_nothing(app, make_user, district, field, value):
    admin = make_user("admin", scope=[district["code"]])
    user = new_target(make_user, district)
    if isinstance(value, list):
        value = [v.format(code=district["code"]) if isinstance(v, str) else v for v in value]
    before = row(app, user.id)
    r = patch(admin, f"/api/v1/users/{user.id}", {"display_name": "changed", field: value})
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"]), r.get_json()
    assert row(app, user.id) == before and live_tokens(app, user.id) == 1


def test_a_team_of_another_district_cannot_be_given(app, make_user, make_team, district):
    admin = make_user("admin", scope=[district["code"]])
    user = new_target(make_user, district)
    foreign = make_team(area_codes=["310199"])
    before = row(app, user.id)
    r = patch(admin, f"/api/v1/users/{user.id}", {"team_ids": [foreign]})
    assert r.status_code == 422 and "team_ids" in r.get_json()["errors"]
    assert row(app, user.id) == before


def test_a_narrower_scope_must_keep_the_responsibility_grids(app, make_user, district):
    code, grids = district["code"], district["grids"]
    admin = make_user("admin", scope=[code])
    user = make_user("inspector", scope=[code], grid_codes=[grids[0]])
    before = row(app, user.id)
    # a scope in which the user's grid no longer lies
    r = patch(admin, f"/api/v1/users/{user.id}", {"scope": [f"{code}001002"]})
    assert r.status_code == 422 and "scope" in r.get_json()["errors"] and grids[0] in r.get_json()["detail"]
    assert row(app, user.id) == before
    # with the grids changed too it is fine
    r = patch(admin, f"/api/v1/users/{user.id}", {"scope": [f"{code}001001"], "grid_codes": grids[3:5]})
    assert r.status_code == 200 and r.get_json()["grid_codes"] == grids[3:5]


def test_teams_the_admin_cannot_see_stay_with_the_user(app, make_user, make_team, district):
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db

    code = district["code"]
    mine, other = make_team(area_codes=[code]), make_team(area_codes=[code])
    foreign = make_team(area_codes=["310199001"])
    with app.app_context():  # a city-level administrator put them in a team of another district
        user_id = auth.create_user(username=f"two_{uuid.uuid4().hex[:8]}", password=PASSWORD, display_name="两地",
                                   roles=["handler"], scope=[code], team_ids=[mine, foreign]).id
        db.session.commit()
    admin = make_user("admin", scope=[code])
    r = patch(admin, f"/api/v1/users/{user_id}", {"team_ids": [other]})
    assert r.status_code == 200, r.get_json()
    assert sorted(r.get_json()["team_ids"]) == sorted([other, foreign])
    assert row(app, user_id)[7] == sorted([other, foreign])


def test_the_openapi_document_describes_the_user_endpoints(app):
    from gridpatrol.auth.schemas import UserPatch, UserQuery

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/users/{user_id}"]["patch"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == set(UserPatch().load_fields) and not schema.get("required")
    assert schema["additionalProperties"] is False
    assert "200" in op["responses"]
    params = {p["name"] for p in spec["paths"]["/api/v1/users"]["get"]["parameters"] if p["in"] == "query"}
    assert params == set(UserQuery().load_fields)
