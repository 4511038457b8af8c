"""A report reads the catalog and the calendar as committed, whoever changed them: a category retired
or its limits changed, and a calendar day listed or unlisted, by another app server count from the
very next report of this one (the calendar a process keeps is checked by the caller read, the category
by the statement that writes the case). And a statement prepared before a migration changed its result
type answers 503 with Retry-After, once, not 500.

Everything here runs on a database of its own (`make_app`): the calendar and the users table change."""
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from helpers import DEMO_DISTRICT, PASSWORD, Api, served, sql

SHANGHAI = ZoneInfo("Asia/Shanghai")
LIMITS = {"A": {"amount": 2, "unit": "hour", "clock": True}, "B": {"amount": 3, "unit": "hour", "clock": True},
          "C": {"amount": 5, "unit": "day", "clock": False}}


@pytest.fixture(scope="module")
def fresh(make_app):
    return make_app("fresh")


@pytest.fixture(scope="module")
def owner_url(fresh, database_url):
    """The fresh database as its owner (DDL), as a libpq URL."""
    name = make_url(fresh.config["SQLALCHEMY_DATABASE_URI"]).database
    return make_url(database_url).set(database=name, drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def other_server(fresh, tmp_path_factory):
    """Another app server on the same database: `gridpatrol serve` in a process of its own, so what
    it changes is never in this process's memory."""
    with served(fresh.config["SQLALCHEMY_DATABASE_URI"], fresh.config["PHOTO_STORAGE"],
                tmp_path_factory.mktemp("other_server"), "gridpatrol-fresh-other") as base:
        yield base


def signed_in(app, *roles, scope=(DEMO_DISTRICT,)) -> Api:
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db
    name = f"f_{uuid.uuid4().hex[:8]}"
    with app.app_context():
        auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles), scope=list(scope))
        db.session.commit()
    client = app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return Api(client, r.get_json()["access_token"], r.get_json()["user"])


class Remote:
    """An administrator calling the other server over HTTP."""
    def __init__(self, base, token):
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}

    def __call__(self, method, path, json=None, expect=200):
        r = requests.request(method, self.base + path, json=json, headers=self.headers, timeout=30)
        assert r.status_code == expect, (method, path, r.status_code, r.text[:500])
        return r.json() if r.content else None


@pytest.fixture(scope="module")
def remote_admin(fresh, other_server):
    return Remote(other_server, signed_in(fresh, "admin").token)


@pytest.fixture(scope="module")
def inspector(fresh):
    return signed_in(fresh, "inspector", "dispatcher")


def report(api, code, expect=201, **body):
    payload = {"category_code": code, "description": "fresh", "lon": 121.46, "lat": 31.22, "accuracy_m": 5,
               "observed_at": "2026-11-26T09:00:00+08:00", "urgency": "B", **body}
    r = api.post("/api/v1/reports", json=payload, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == expect, r.get_json()
    if expect >= 400:
        assert r.mimetype == "application/problem+json"
    return r.get_json()


def serial(case) -> int:
    """The deployment-wide sequence part of a case number (after the local date)."""
    return int(case["number"][8:])


def category(code) -> dict:
    return {"code": code, "kind": "event", "name_zh": "测试", "name_en": "Freshness", "team_kind": "enforcement",
            "filing_condition": "seen", "closure_condition": "gone", "limits": LIMITS}


def new_category(remote_admin, code) -> int:
    """A category made by the other server; the catalog version it came in."""
    return remote_admin("POST", "/api/v1/categories", category(code), expect=201)["since_version"]


def test_a_category_retired_by_another_server_is_refused_by_the_next_report(fresh, remote_admin, inspector):
    new_category(remote_admin, "9701")
    first = report(inspector, "9701")  # taken, and whatever this process keeps is warm
    assert first["category_code"] == "9701" and first["status"] == "reported"

    remote_admin("DELETE", "/api/v1/categories/9701", expect=204)
    retired_in = sql(fresh, "SELECT retired_in_version FROM categories WHERE code = '9701'")[0][0]
    assert retired_in is not None

    refused = report(inspector, "9701", expect=422)
    assert refused["errors"] == {"category_code": [f"category 9701 was retired in catalog version {retired_in}"]}
    # with the catalog version the retirement came in, still refused; from an older catalog, taken
    report(inspector, "9701", expect=422, catalog_version=retired_in)
    older = report(inspector, "9701", catalog_version=retired_in - 1)
    assert older["category_code"] == "9701"
    assert sql(fresh, "SELECT catalog_version FROM cases WHERE id = :id", id=older["id"])[0][0] == retired_in - 1
    unknown = report(inspector, "9798", expect=422)
    assert unknown["errors"] == {"category_code": ["unknown category 9798"]}
    # a refused report makes no case and takes no case number
    assert sql(fresh, "SELECT count(*) FROM cases WHERE category_code IN ('9701', '9798')")[0][0] == 2
    after = report(inspector, "0701")
    assert serial(after) == serial(older) + 1

    # brought back by the other server: taken again by the very next report
    remote_admin("POST", "/api/v1/categories", category("9701"), expect=201)
    assert report(inspector, "9701")["category_code"] == "9701"


def test_limits_changed_by_another_server_count_for_the_next_report(fresh, remote_admin, inspector):
    from gridpatrol.extensions import db
    from gridpatrol.teams.models import Team
    new_category(remote_admin, "9702")
    with fresh.app_context():
        team = Team(name=f"team {uuid.uuid4().hex[:8]}", kind="enforcement", agencies=["城管"],
                    area_codes=[DEMO_DISTRICT], grid_codes=[], category_codes=["9702"])
        db.session.add(team)
        db.session.commit()
        team_id = team.id

    def handle_limit(case_id) -> timedelta:
        inspector.act(case_id, "register")
        case = inspector.act(case_id, "dispatch", {"team_id": team_id})
        return datetime.fromisoformat(case["deadlines"]["handle"]) - datetime.fromisoformat(case["dispatched_at"])

    assert handle_limit(report(inspector, "9702")["id"]) == timedelta(hours=3)
    remote_admin("PATCH", "/api/v1/categories/9702", {"limits": {**LIMITS, "B": {"amount": 7, "unit": "hour",
                                                                                   "clock": True}}})
    assert handle_limit(report(inspector, "9702")["id"]) == timedelta(hours=7)


def test_a_calendar_day_changed_by_another_server_counts_for_the_next_report(fresh, remote_admin, inspector):
    from gridpatrol.core.db import clock_at
    # a Tuesday afternoon: one working hour (the register limit) ends the same day, at 17:30
    now = datetime(2031, 6, 10, 16, 30, tzinfo=SHANGHAI)
    same_day = datetime(2031, 6, 10, 17, 30, tzinfo=SHANGHAI)
    next_day = datetime(2031, 6, 11, 10, 0, tzinfo=SHANGHAI)

    def register_deadline():
        with clock_at(now):
            case = report(inspector, "0701")
        assert case["number"].startswith("20310610")
        return datetime.fromisoformat(case["deadlines"]["register"])

    assert register_deadline() == same_day
    remote_admin("PUT", "/api/v1/calendar/days/2031-06-10", {"workday": False, "name": "test holiday"})
    assert register_deadline() == next_day  # no working time left that day: from 09:00 the next
    assert register_deadline() == next_day
    remote_admin("DELETE", "/api/v1/calendar/days/2031-06-10", expect=204)
    assert register_deadline() == same_day
    # the week's working periods too: Tuesday afternoons off
    week = remote_admin("GET", "/api/v1/calendar")["work_periods"]
    try:
        remote_admin("PUT", "/api/v1/calendar/work-periods",
                     {**{d: p for d, p in week.items() if p}, "tue": [["09:00", "12:00"]]})
        assert register_deadline() == next_day
    finally:
        remote_admin("PUT", "/api/v1/calendar/work-periods", {d: p for d, p in week.items() if p})
    assert register_deadline() == same_day


def test_a_statement_prepared_before_a_migration_changed_its_result_type_answers_503(fresh, owner_url):
    """The caller read runs on every request, so a connection prepares it (psycopg, from its fifth
    run) and keeps it across requests; a migration changing the type of a column it answers makes
    PostgreSQL refuse the prepared statement (0A000, "cached plan must not change result type")."""
    from gridpatrol.extensions import db
    user = signed_in(fresh, "inspector")
    with fresh.app_context():
        db.engine.dispose()  # one pooled connection from here: every request below runs on it
    for _ in range(8):
        assert user.get("/api/v1/me").status_code == 200
    original = sql(fresh, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                          "WHERE attrelid = 'users'::regclass AND attname = 'display_name'")[0][0]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ALTER COLUMN display_name TYPE text")
    try:
        r = user.get("/api/v1/me")
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.mimetype == "application/problem+json" and r.get_json()["status"] == 503
        assert int(r.headers["Retry-After"]) >= 1
        # the failed request dropped the connection's prepared statements: the retry is answered
        for _ in range(3):
            r = user.get("/api/v1/me")
            assert r.status_code == 200 and r.get_json()["username"] == user.user["username"]
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE users ALTER COLUMN display_name TYPE {original}")
        with fresh.app_context():
            db.engine.dispose()
