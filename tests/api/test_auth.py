"""Sign-in, tokens, the sign-in limiter, users and /me."""
import hashlib
import itertools
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from helpers import PASSWORD

_addresses = itertools.count(1)


def fresh_address() -> dict:
    """A client address of its own, so the per-address limiter of one test never throttles another."""
    n = next(_addresses) + uuid.uuid4().int % 50_000
    return {"REMOTE_ADDR": f"10.{(n >> 16) % 256}.{(n >> 8) % 256}.{n % 256}"}


def sign_in(client, username, password, environ=None):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base=environ or fresh_address())


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def assert_problem(r, status):
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# ------------------------------------------------------------------ sign-in and tokens

def test_sign_in_answers_a_bearer_token_with_the_user(client, make_user):
    api = make_user("inspector", "handler", scope=["310199001"])
    r = sign_in(client, api.username, PASSWORD)
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) >= {"access_token", "token_type", "expires_at", "user"}
    assert body["token_type"] == "Bearer"
    assert len(body["access_token"]) >= 32
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.tzinfo is not None and expires > datetime.now(expires.tzinfo) + timedelta(hours=1)
    assert body["user"]["username"] == api.username
    assert sorted(body["user"]["roles"]) == ["handler", "inspector"]
    assert body["user"]["scope"] == ["310199001"]
    assert "password" not in str(body["user"]) and "password_hash" not in body["user"]
    # the new token works
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == api.id


def test_username_is_matched_without_regard_to_case(client, make_user):
    api = make_user("inspector")
    assert sign_in(client, api.username.upper(), PASSWORD).status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(client, make_user):
    api = make_user("inspector")
    wrong = sign_in(client, api.username, "not-the-password")
    unknown = sign_in(client, f"nobody_{uuid.uuid4().hex[:8]}", "not-the-password")
    body = assert_problem(wrong, 401)
    assert assert_problem(unknown, 401) == body
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")
    assert "access_token" not in body


def test_sign_in_validates_its_body(client):
    r = client.post("/api/v1/auth/token", json={"username": "x"}, environ_base=fresh_address())
    body = assert_problem(r, 422)
    assert "password" in body["errors"]


def test_sign_out_kills_the_token(client, make_user):
    api = make_user("inspector")
    assert api.get("/api/v1/me").status_code == 200
    r = api.delete("/api/v1/auth/token")
    assert r.status_code == 204 and r.data == b""
    after = api.get("/api/v1/me")
    assert_problem(after, 401)
    assert after.headers["WWW-Authenticate"].startswith("Bearer")
    # another token of the same user lives on
    other = sign_in(client, api.username, PASSWORD).get_json()["access_token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_an_expired_token_is_refused(app, client, make_user):
    api = make_user("inspector")
    assert api.get("/api/v1/me").status_code == 200
    digest = hashlib.sha256(api.token.encode()).hexdigest()
    sql(app, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE token_hash = :h", h=digest)
    assert_problem(api.get("/api/v1/me"), 401)


def test_a_deactivated_user_is_refused(app, client, make_user):
    api = make_user("inspector")
    sql(app, "UPDATE users SET active = false WHERE id = :id", id=api.id)
    assert_problem(api.get("/api/v1/me"), 401)
    assert_problem(sign_in(client, api.username, PASSWORD), 401)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer garbage-token",
                                    "Token abc", "bearer " + "x" * 500])
def test_no_or_bad_authorization_is_401_problem(client, header):
    headers = {"Authorization": header} if header is not None else {}
    for path in ("/api/v1/me", "/api/v1/cases", "/api/v1/categories"):
        r = client.get(path, headers=headers)
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_401_comes_before_validation_and_role_checks(client):
    assert_problem(client.post("/api/v1/users", json={"id": 1}), 401)
    assert_problem(client.get("/api/v1/kpis?group_by=nonsense"), 401)


# ------------------------------------------------------------------ the limiter

def test_the_eleventh_failed_attempt_on_an_account_is_429_even_with_the_right_password(client, make_user):
    api = make_user("inspector")
    for i in range(10):
        # each attempt from its own address: only the account's count grows
        assert sign_in(client, api.username, "wrong-password", fresh_address()).status_code == 401, i
    r = sign_in(client, api.username, PASSWORD, fresh_address())
    body = assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) > 0
    assert "access_token" not in body
    # another account is not held up by it
    other = make_user("inspector")
    assert sign_in(client, other.username, PASSWORD).status_code == 200


def test_the_limiter_counts_per_address_across_accounts(client, make_user):
    address = fresh_address()
    for i in range(10):
        r = sign_in(client, f"nobody_{uuid.uuid4().hex[:10]}", "wrong-password", address)
        assert r.status_code == 401, i
    real = make_user("inspector")
    assert_problem(sign_in(client, real.username, PASSWORD, address), 429)
    # the same account from another address is fine: its own count is low
    assert sign_in(client, real.username, PASSWORD, fresh_address()).status_code == 200


def test_successful_sign_ins_do_not_use_up_the_allowance(client, make_user):
    api = make_user("inspector")
    address = fresh_address()
    for _ in range(12):
        assert sign_in(client, api.username, PASSWORD, address).status_code == 200


def test_failed_attempts_are_remembered_by_the_database(app, client):
    name = f"probe_{uuid.uuid4().hex[:8]}"
    address = fresh_address()
    for _ in range(3):
        sign_in(client, name, "wrong-password", address)
    rows = sql(app, "SELECT key FROM login_attempts WHERE key IN (:u, :a)", u=f"user:{name}",
               a=f"addr:{address['REMOTE_ADDR']}")
    assert sorted(k for (k,) in rows) == [f"addr:{address['REMOTE_ADDR']}"] * 3 + [f"user:{name}"] * 3


# ------------------------------------------------------------------ storage of secrets

def test_passwords_are_stored_as_argon2id(app, make_user):
    api = make_user("inspector")
    (stored,), = sql(app, "SELECT password_hash FROM users WHERE id = :id", id=api.id)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_password_hashes_take_19_mib_and_older_settings_are_made_again_at_sign_in(app, client, make_user):
    from argon2 import PasswordHasher
    api = make_user("inspector")
    (stored,), = sql(app, "SELECT password_hash FROM users WHERE id = :id", id=api.id)
    assert "$m=19456,t=2,p=1$" in stored
    # a hash made with the library's default (64 MiB, 3 passes, 4 lanes), as earlier versions stored
    old = PasswordHasher().hash(PASSWORD)
    assert "$m=65536,t=3,p=4$" in old
    sql(app, "UPDATE users SET password_hash = :h WHERE id = :id", h=old, id=api.id)
    r = client.post("/api/v1/auth/token", json={"username": api.username, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    (again,), = sql(app, "SELECT password_hash FROM users WHERE id = :id", id=api.id)
    assert "$m=19456,t=2,p=1$" in again and again != old
    assert client.post("/api/v1/auth/token", json={"username": api.username, "password": PASSWORD}).status_code == 200


def test_tokens_are_stored_hashed(app, make_user):
    api = make_user("inspector")
    rows = sql(app, "SELECT token_hash FROM tokens WHERE user_id = :id", id=api.id)
    assert hashlib.sha256(api.token.encode()).hexdigest() in [h for (h,) in rows]
    leaked = sql(app, "SELECT count(*) FROM tokens t WHERE position(:s IN row_to_json(t)::text) > 0", s=api.token)
    assert leaked == [(0,)]


# ------------------------------------------------------------------ users

def new_user_body(**overrides):
    body = {"username": f"new_{uuid.uuid4().hex[:10]}", "password": "a-long-enough-password",
            "display_name": "新用户", "roles": ["inspector"], "scope": ["310199001"], "team_ids": []}
    body.update(overrides)
    return body


def test_admin_creates_a_user_who_can_sign_in(client, make_user, make_team):
    admin = make_user("admin")
    team = make_team(area_codes=["310199001"])
    body = new_user_body(roles=["handler", "inspector"], team_ids=[team])
    r = admin.post("/api/v1/users", json=body)
    assert r.status_code == 201, r.get_json()
    user = r.get_json()
    assert user["username"] == body["username"] and user["display_name"] == "新用户"
    assert sorted(user["roles"]) == ["handler", "inspector"] and user["scope"] == ["310199001"]
    assert user["team_ids"] == [team] and isinstance(user["id"], int)
    assert "password" not in user and "password_hash" not in user
    token = sign_in(client, body["username"], body["password"]).get_json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["id"] == user["id"] and me["team_ids"] == [team]


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("inspector",), ("handler",)])
def test_only_an_admin_creates_users(make_user, roles):
    api = make_user(*roles)
    body = new_user_body()
    assert_problem(api.post("/api/v1/users", json=body), 403)
    admin = make_user("admin")
    # nothing was made: the name is still free
    assert admin.post("/api/v1/users", json=body).status_code == 201


def test_a_taken_username_is_409(make_user):
    admin = make_user("admin")
    body = new_user_body()
    assert admin.post("/api/v1/users", json=body).status_code == 201
    r = admin.post("/api/v1/users", json=new_user_body(username=body["username"].upper()))
    assert_problem(r, 409)


@pytest.mark.parametrize("field, value", [
    ("roles", ["overlord"]),
    ("roles", []),
    ("password", "short"),
    ("scope", ["31019"]),
    ("scope", ["abcdef"]),
    ("scope", []),
    ("username", "a b"),
    ("team_ids", ["x"]),
    ("grid_codes", ["12345"]),
])
def test_invalid_user_values_are_422_naming_the_field(make_user, field, value):
    admin = make_user("admin")
    body = assert_problem(admin.post("/api/v1/users", json=new_user_body(**{field: value})), 422)
    assert any(k == field or k.startswith(field + ".") for k in body["errors"]), body


@pytest.mark.parametrize("field, value", [("id", 1), ("password_hash", "$argon2id$v=19$x"), ("active", False),
                                          ("is_admin", True)])
def test_unknown_fields_are_refused_not_assigned(make_user, field, value):
    admin = make_user("admin")
    body = assert_problem(admin.post("/api/v1/users", json=new_user_body(**{field: value})), 422)
    assert field in body["errors"]


def test_a_missing_required_field_is_422(make_user):
    admin = make_user("admin")
    body = new_user_body()
    del body["roles"]
    assert "roles" in assert_problem(admin.post("/api/v1/users", json=body), 422)["errors"]


def test_an_admin_cannot_give_a_scope_beyond_their_own(make_user):
    admin = make_user("admin", scope=["310199001"])
    r = admin.post("/api/v1/users", json=new_user_body(scope=["310199"]))
    assert "scope" in assert_problem(r, 422)["errors"]
    r = admin.post("/api/v1/users", json=new_user_body(scope=["310199001002"]))
    assert r.status_code == 201


def test_an_unknown_team_is_422(make_user):
    admin = make_user("admin")
    r = admin.post("/api/v1/users", json=new_user_body(team_ids=[2_000_000_000]))
    assert "team_ids" in assert_problem(r, 422)["errors"]


def test_an_admin_cannot_join_a_user_to_a_team_of_another_district(make_user, make_team, district):
    admin = make_user("admin", scope=["310199"])
    foreign = make_team(area_codes=[district["code"]])
    r = admin.post("/api/v1/users", json=new_user_body(team_ids=[foreign]))
    assert "team_ids" in assert_problem(r, 422)["errors"]


def test_responsibility_grids_must_be_known_grids_in_scope(make_user, district):
    admin = make_user("admin", scope=["310199"])
    r = admin.post("/api/v1/users", json=new_user_body(scope=["310199"], grid_codes=[district["grids"][0]]))
    assert "grid_codes" in assert_problem(r, 422)["errors"]
    r = admin.post("/api/v1/users", json=new_user_body(scope=["310199"], grid_codes=["310199999999001"]))
    assert "grid_codes" in assert_problem(r, 422)["errors"]
    local = make_user("admin", scope=[district["code"]])
    r = local.post("/api/v1/users", json=new_user_body(scope=[district["code"]], grid_codes=district["grids"][:2]))
    assert r.status_code == 201 and r.get_json()["grid_codes"] == district["grids"][:2]


def test_me_describes_the_caller(make_user, make_team):
    team = make_team()
    api = make_user("handler", scope=["310199001", "310199002"], teams=[team])
    r = api.get("/api/v1/me")
    assert r.status_code == 200
    me = r.get_json()
    assert {"id", "username", "display_name", "roles", "scope", "team_ids"} <= set(me)
    assert me["id"] == api.id and me["username"] == api.username
    assert me["roles"] == ["handler"] and me["scope"] == ["310199001", "310199002"] and me["team_ids"] == [team]
    assert "password_hash" not in me


def test_a_change_to_the_caller_counts_from_their_very_next_request(make_user, make_team):
    """Nothing about the caller is kept between requests: roles, scope and teams changed by an
    administrator apply to the token already held, at once."""
    team = make_team()
    admin = make_user("admin", scope=["310199"])
    api = make_user("dispatcher", "inspector", scope=["310199001"])
    assert api.get("/api/v1/cases/999999999/duplicates").status_code == 404  # a dispatcher may search
    r = admin.client.patch(f"/api/v1/users/{api.id}", json={"roles": ["inspector"], "scope": ["310199002"],
                                                             "team_ids": [team]}, headers=admin._headers(None))
    assert r.status_code == 200, r.get_json()
    assert_problem(api.get("/api/v1/cases/999999999/duplicates"), 403)
    me = api.get("/api/v1/me").get_json()
    assert me["roles"] == ["inspector"] and me["scope"] == ["310199002"] and me["team_ids"] == [team]
