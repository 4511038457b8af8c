"""A served request's statements run at most REQUEST_STATEMENT_TIMEOUT_S: past it the statement is
cancelled and the request answered 503 (problem+json, the limit named), nothing it wrote is kept, and
the same report sent again is taken once. The `gridpatrol` commands' connections carry no limit.

A statement is held past the limit by a lock another connection keeps on `cases` (a lock wait counts
against statement_timeout as running does), so the tests wait on nothing but the limit."""
import contextlib
import threading
import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from helpers import libpq
from helpers import Api

LIMIT_S = 0.5



@pytest.fixture
def limited(app):
    """Another app on the test database, as served, with a short statement limit."""
    from gridpatrol import create_app
    from gridpatrol.extensions import db
    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                        "PHOTO_STORAGE": app.config["PHOTO_STORAGE"], "REQUEST_STATEMENT_TIMEOUT_S": LIMIT_S,
                        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2}})
    yield other
    with other.app_context():
        db.engine.dispose()


@contextlib.contextmanager
def cases_locked(database_url, seconds=10):
    """`cases` locked by another connection, for at most `seconds` (an app without the limit waits that
    long and answers, and the test fails instead of hanging)."""
    with psycopg.connect(libpq(database_url)) as owner:
        owner.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(seconds, owner.rollback)
        release.start()
        try:
            yield
        finally:
            release.cancel()
            owner.rollback()


def _as(limited, user: Api) -> Api:
    return Api(limited.test_client(), user.token, user.user)


def _stopped(r):
    assert r.status_code == 503, r.get_data(as_text=True)
    body = r.get_json()
    assert r.mimetype == "application/problem+json" and body["status"] == 503
    assert f"{LIMIT_S:g} s" in body["detail"] and "Retry-After" not in r.headers


def test_a_read_past_the_limit_is_stopped_with_503(limited, make_user, district, database_url):
    dispatcher = _as(limited, make_user("dispatcher", scope=[district["code"]]))
    assert dispatcher.get("/api/v1/cases").status_code == 200
    with cases_locked(database_url):
        _stopped(dispatcher.get("/api/v1/cases"))
    assert dispatcher.get("/api/v1/cases").status_code == 200      # the connection serves on


def test_a_report_past_the_limit_keeps_nothing_and_is_taken_once_when_sent_again(limited, app, make_user,
                                                                                  district, database_url):
    inspector = _as(limited, make_user("inspector", scope=[district["code"]]))
    lon, lat = district["point"](4)
    key = str(uuid.uuid4())
    body = {"category_code": "0701", "description": "held past the limit", "lon": lon, "lat": lat,
            "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00", "urgency": "B"}

    def send():
        return inspector.post("/api/v1/reports", json=body, headers={"Idempotency-Key": key})

    def kept():
        from gridpatrol.extensions import db
        with app.app_context():
            return db.session.execute(text(
                "SELECT (SELECT count(*) FROM cases WHERE description = 'held past the limit'),"
                "       (SELECT count(*) FROM idempotency_keys WHERE key = :k)"), {"k": key}).one()

    with cases_locked(database_url):
        _stopped(send())
    assert tuple(kept()) == (0, 0)
    first, again = send(), send()
    assert first.status_code == 201, first.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert tuple(kept()) == (1, 1)


def test_the_open311_door_answers_503_too(limited, district, database_url):
    citizen = limited.test_client()
    assert citizen.get("/open311/v2/requests.json").status_code == 200
    with cases_locked(database_url):
        r = citizen.get("/open311/v2/requests.json")
    assert r.status_code == 503, r.get_data(as_text=True)
    assert f"{LIMIT_S:g} s" in r.get_json()[0]["description"]


def test_a_streamed_export_runs_without_the_limit(limited, make_user, district, database_url):
    """A download is the way to a large read, and once its 200 is sent a stopped statement could only
    cut it short: its rows are read without the limit."""
    inspector = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](2)
    case = inspector.report(lon=lon, lat=lat, description="exported past the limit")
    dispatcher = _as(limited, make_user("dispatcher", scope=[district["code"]]))
    with cases_locked(database_url, seconds=3 * LIMIT_S):
        r = dispatcher.get("/api/v1/exports/cases.csv")
        body = r.get_data(as_text=True)   # read while the lock holds past the limit, then released
    assert r.status_code == 200 and case["number"] in body and "exported past the limit" in body


def test_served_connections_carry_the_limit_and_the_commands_none(limited, monkeypatch, app_database_url,
                                                                  database_url):
    from gridpatrol.cli import _command_app
    from gridpatrol.extensions import db
    with limited.app_context():
        assert db.session.execute(text("SHOW statement_timeout")).scalar_one() == "500ms"
    monkeypatch.setenv("DATABASE_URL", app_database_url)
    monkeypatch.setattr("gridpatrol.config.Config.SQLALCHEMY_DATABASE_URI", app_database_url)
    role = make_url(app_database_url).username
    # behind PgBouncer the served limit is the role's default (README): the commands still lift it
    with psycopg.connect(libpq(database_url), autocommit=True) as owner:
        owner.execute(f'ALTER ROLE "{role}" SET statement_timeout = \'60s\'')
        try:
            command = _command_app()
            with command.app_context():
                assert db.session.execute(text("SHOW statement_timeout")).scalar_one() == "0"
                db.engine.dispose()
        finally:
            owner.execute(f'ALTER ROLE "{role}" RESET statement_timeout')
