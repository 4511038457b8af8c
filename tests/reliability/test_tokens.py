"""Item 12: a revoked or expired bearer token is refused every time, on every kind of endpoint."""
import hashlib

from helpers import PASSWORD

from _util import execute

N = 100
PATHS = ["/api/v1/me", "/api/v1/cases", "/api/v1/teams", "/api/v1/categories"]


def _sign_in(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["access_token"]


def _refusals(client, token):
    statuses = [client.get(PATHS[i % len(PATHS)], headers={"Authorization": f"Bearer {token}"}).status_code
                for i in range(N - 1)]
    # and a write
    statuses.append(client.post("/api/v1/patrols", json={}, headers={"Authorization": f"Bearer {token}"}).status_code)
    return statuses


def test_revoked_token_refused_every_time(client, make_user):
    api = make_user("inspector", "supervisor")
    token = _sign_in(client, api.username)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204

    statuses = _refusals(client, token)
    print(f"\n[revoked token] refused {statuses.count(401)}/{N} statuses={sorted(set(statuses))}")
    assert statuses.count(401) == N, statuses
    # the user's other token still works: revocation is per token
    assert api.get("/api/v1/me").status_code == 200


def test_expired_token_refused_every_time(app, client, make_user):
    api = make_user("inspector", "supervisor")
    token = _sign_in(client, api.username)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    execute(app, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE token_hash = :h",
            h=hashlib.sha256(token.encode()).hexdigest())

    statuses = _refusals(client, token)
    print(f"\n[expired token] refused {statuses.count(401)}/{N} statuses={sorted(set(statuses))}")
    assert statuses.count(401) == N, statuses
    assert api.get("/api/v1/me").status_code == 200


def test_garbled_tokens_refused(client, make_user):
    api = make_user("inspector")
    variants = [api.token[:-1], api.token + "x", api.token.upper(), "", "null", hashlib.sha256(api.token.encode()).hexdigest()]
    statuses = [client.get("/api/v1/me", headers={"Authorization": f"Bearer {v}"}).status_code for v in variants]
    statuses += [client.get("/api/v1/me", headers={"Authorization": api.token}).status_code,
                 client.get("/api/v1/me", headers={"Authorization": f"Basic {api.token}"}).status_code]
    print(f"\n[garbled tokens] refused {statuses.count(401)}/{len(statuses)}")
    assert statuses == [401] * len(statuses), statuses


def test_a_token_revoked_elsewhere_is_refused_at_the_very_next_request(app, client, make_user):
    """No server process keeps a token: one revoked by another process (here, straight in the
    database) is refused by the next request, after a run of requests that accepted it."""
    api = make_user("inspector", "supervisor")
    token = _sign_in(client, api.username)
    headers = {"Authorization": f"Bearer {token}"}
    assert [client.get(PATHS[i % len(PATHS)], headers=headers).status_code for i in range(20)] == [200] * 20
    execute(app, "UPDATE tokens SET revoked_at = now() WHERE token_hash = :h", h=hashlib.sha256(token.encode()).hexdigest())
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.post("/api/v1/patrols", json={}, headers=headers).status_code == 401


def test_a_deactivated_user_is_refused_at_the_very_next_request(app, client, make_user):
    api = make_user("inspector", "supervisor")
    assert api.get("/api/v1/me").status_code == 200
    execute(app, "UPDATE users SET active = false WHERE id = :id", id=api.id)
    assert api.get("/api/v1/cases").status_code == 401
