"""Pooled database connections: one the server closed is replaced at checkout (the request does not
see it), or, when it dies after the checkout, its request is answered 503 with Retry-After, never
500, and the next request succeeds; prepared statements stay on a connection from one request to
the next, read requests (which roll back) included.

The requests go to a second app on the test database whose pool holds one connection, so every
request uses the same backend, and the test can look at that backend and end it."""
import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError

from gridpatrol import create_app
from gridpatrol.core import db as core_db
from gridpatrol.extensions import db
from helpers import libpq


@pytest.fixture
def pooled(app, app_database_url):
    """(app with a pool of exactly one connection, its test client)."""
    one = create_app({"SQLALCHEMY_DATABASE_URI": app_database_url, "TESTING": True,
                      "PHOTO_STORAGE": app.config["PHOTO_STORAGE"],
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}})
    yield one, one.test_client()
    with one.app_context():
        db.engine.dispose()


def _sql(app, sql, **params):
    """Rows of `sql` on the app's pooled connection."""
    with app.app_context():
        rows = db.session.execute(text(sql), params).all()
        db.session.rollback()
        return rows


def _backend(app) -> int:
    return _sql(app, "SELECT pg_backend_pid()")[0][0]


def _terminate(database_url: str, pid: int) -> None:
    """End a backend as an administrator (or a server restart) would, and wait until it has gone."""
    owner = libpq(database_url)
    with psycopg.connect(owner, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone()[0] is True


def _report(district):
    lon, lat = district["point"](4)
    return {"category_code": "0701", "description": f"conn-{uuid.uuid4().hex[:10]}", "lon": lon, "lat": lat,
            "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00"}


def _is_503_to_retry(r):
    return (r.status_code, r.headers.get("Retry-After"), r.mimetype) == (503, "2", "application/problem+json")


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it(
        pooled, database_url, make_user, district):
    app, client = pooled
    user = make_user("inspector", scope=[district["code"]])
    auth = {"Authorization": f"Bearer {user.token}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    first = _backend(app)

    _terminate(database_url, first)
    r = client.get("/api/v1/me", headers=auth)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["username"] == user.username
    second = _backend(app)
    assert second != first

    _terminate(database_url, second)
    body = _report(district)
    r = client.post("/api/v1/reports", json=body, headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["description"] == body["description"]
    assert _backend(app) not in (first, second)

    _terminate(database_url, _backend(app))
    assert client.get("/healthz").status_code == 200


def test_a_connection_lost_after_its_checkout_is_503_and_the_next_request_succeeds(
        pooled, database_url, make_user, district, monkeypatch):
    app, client = pooled
    user = make_user("inspector", scope=[district["code"]])
    auth = {"Authorization": f"Bearer {user.token}"}
    # the server goes between the checkout and the request's first statement: the checkout saw nothing
    monkeypatch.setattr(core_db, "hung_up", lambda dbapi_connection: False)

    _terminate(database_url, _backend(app))
    r = client.get("/api/v1/me", headers=auth)
    assert _is_503_to_retry(r), (r.status_code, r.headers, r.get_data(as_text=True))
    assert client.get("/api/v1/me", headers=auth).status_code == 200

    _terminate(database_url, _backend(app))
    r = client.get("/healthz")
    assert (r.status_code, r.headers.get("Retry-After"), r.get_json()) == (
        503, "2", {"status": "unavailable", "database": False})
    assert client.get("/healthz").status_code == 200

    _terminate(database_url, _backend(app))
    body, key = _report(district), str(uuid.uuid4())
    r = client.post("/api/v1/reports", json=body, headers={**auth, "Idempotency-Key": key})
    assert _is_503_to_retry(r), (r.status_code, r.headers, r.get_data(as_text=True))
    assert _sql(app, "SELECT count(*) FROM cases WHERE description = :d", d=body["description"])[0][0] == 0
    r = client.post("/api/v1/reports", json=body, headers={**auth, "Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    assert _sql(app, "SELECT count(*) FROM cases WHERE description = :d", d=body["description"])[0][0] == 1


def test_prepared_statements_stay_on_the_connection_across_read_requests(pooled, make_user):
    app, client = pooled
    user = make_user("dispatcher")
    auth = {"Authorization": f"Bearer {user.token}"}
    backend = _backend(app)
    for _ in range(8):  # psycopg prepares a statement the sixth time it runs on a connection
        r = client.get("/api/v1/me", headers=auth)
        assert r.status_code == 200
    assert _backend(app) == backend  # the same connection served every request

    prepared = [s for (s,) in _sql(app, "SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")]
    assert any("FROM tokens t JOIN users u" in s for s in prepared), prepared
    # and they are used: more requests prepare nothing new for the same statement
    for _ in range(3):
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    again = [s for (s,) in _sql(app, "SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")]
    assert sum("FROM tokens t JOIN users u" in s for s in again) == 1, again


def test_a_failed_transaction_still_clears_the_prepared_statements(pooled, make_user):
    """The rollback of a transaction in error lets psycopg forget them, as it always did: that is
    what cures a statement a migration made stale."""
    app, client = pooled
    user = make_user("dispatcher")
    auth = {"Authorization": f"Bearer {user.token}"}
    for _ in range(8):
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    with app.app_context():
        with pytest.raises(DataError):
            db.session.execute(text("SELECT 1 / 0"))
        db.session.rollback()
        left = db.session.execute(text("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")).scalar()
        db.session.rollback()
    assert left == 0
    assert client.get("/api/v1/me", headers=auth).status_code == 200
