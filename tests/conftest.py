"""Test fixtures: a throwaway PostGIS database per run, the real app, factories with defaults.

TEST_DATABASE_URL names the database to (re)create; its name must end in `_test`. Tests do not
roll back: each one makes its own users, teams and, where counts matter, its own district, so
they can commit, race and run against a live server like real clients.

The schema is migrated as TEST_DATABASE_URL's role (the owner); the app, in process and live,
serves as the restricted role `gridpatrol db app-role` makes (`<database>_app`), as deployed.
"""
import itertools
import json
import os
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

# the figures tests print ("[name] …") are gathered at the end of the run (tests/figures.py)
pytest_plugins = ["figures"]

from helpers import DEMO_DISTRICT, PASSWORD, Api, _counter, block_geojson, png, served  # noqa: F401  (also for old imports)


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run scripts/test", returncode=2)
    if not make_url(url).database.endswith("_test"):
        pytest.exit("TEST_DATABASE_URL must name a database ending in _test (it is dropped)", returncode=2)
    return url


def _fresh_database(url) -> str:
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{url.database}"')
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url():
    return _fresh_database(make_url(_database_url()))


APP_ROLE_PASSWORD = "gridpatrol-test-app"


def _app_role_url(owner_url: str) -> str:
    """The database as the application's restricted role (one role per test database: the
    sessions of other checkouts on the same cluster keep theirs)."""
    url = make_url(owner_url)
    return url.set(username=f"{url.database}_app", password=APP_ROLE_PASSWORD).render_as_string(hide_password=False)


def _migrated_app(owner_url: str, photos: Path):
    """Migrate as the owner, make the app role, and return the app serving as that role, with
    the demo district, the catalog and the calendar loaded."""
    from gridpatrol import create_app
    from gridpatrol.catalog import services as catalog
    from gridpatrol.cli import app_role
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.grids import services as grids
    from flask_migrate import upgrade

    owner = create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "TESTING": True})
    with owner.app_context():
        upgrade()
    app_url = _app_role_url(owner_url)
    result = owner.test_cli_runner().invoke(app_role, [make_url(app_url).username, "--password", APP_ROLE_PASSWORD])
    assert result.exit_code == 0, result.output
    with owner.app_context():
        db.engine.dispose()

    app = create_app({"SQLALCHEMY_DATABASE_URI": app_url, "TESTING": True, "PHOTO_STORAGE": str(photos),
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 30, "max_overflow": 10}})
    with app.app_context():
        geodata = ROOT / "geodata"
        grids.area_names(json.loads((geodata / "areas.json").read_text()))
        importer.import_grids((geodata / "demo_district.geojson").read_bytes(), "demo.geojson")
        catalog.load_catalog(json.loads((geodata / "catalog.json").read_text()))
        catalog.load_calendar(json.loads((geodata / "calendar.json").read_text()))
        db.session.commit()
    return app


@pytest.fixture(scope="session")
def app_database_url(database_url):
    return _app_role_url(database_url)


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    return _migrated_app(database_url, tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def empty_database(database_url):
    """empty_database(name) -> (owner url, app role url) of a fresh, empty database of its own (the test
    database's name with `_<name>` before `_test`); the app role is not made yet."""
    def make(name):
        url = make_url(database_url)
        owner = _fresh_database(url.set(database=f"{url.database.removesuffix('_test')}_{name}_test"))
        return owner, _app_role_url(owner)

    return make


@pytest.fixture(scope="session")
def make_app(empty_database, tmp_path_factory):
    """make_app(name) -> another app like `app` on a fresh database of its own (empty_database), for
    tests that change what every test reads (the calendar, the catalog) or would fill the shared
    database with junk (fuzzers)."""
    made = []

    def make(name):
        other, _ = empty_database(name)
        app = _migrated_app(other, tmp_path_factory.mktemp(f"photos_{name}"))
        made.append(app)
        return app

    yield make
    from gridpatrol.extensions import db
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def anon(client):
    return Api(client)


@pytest.fixture
def make_user(app, client):
    """make_user(*roles, scope=[...], teams=[...], grid_codes=[...]) -> a signed-in Api."""
    from gridpatrol.auth import services as auth
    from gridpatrol.extensions import db

    def make(*roles, scope=(DEMO_DISTRICT,), teams=(), grid_codes=(), username=None):
        name = username or f"u{next(_counter)}_{uuid.uuid4().hex[:6]}"
        with app.app_context():
            user = auth.create_user(username=name, password=PASSWORD, display_name=name, roles=list(roles or ["inspector"]),
                                    scope=list(scope), team_ids=list(teams), grid_codes=list(grid_codes))
            db.session.commit()
            user_id = user.id
        r = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.get_json()
        api = Api(client, r.get_json()["access_token"], r.get_json()["user"])
        api.id, api.username = user_id, name
        return api
    return make


@pytest.fixture
def make_team(app):
    """make_team(kind=..., area_codes=[...], category_codes=[...]) -> team id."""
    from gridpatrol.extensions import db
    from gridpatrol.teams.models import Team

    def make(kind="enforcement", area_codes=(DEMO_DISTRICT,), category_codes=None, grid_codes=(), name=None):
        with app.app_context():
            from gridpatrol.catalog import services as catalog
            cats = category_codes if category_codes is not None else [c.code for c in catalog.categories()]
            team = Team(name=name or f"team {uuid.uuid4().hex[:8]}", kind=kind, agencies=["城管"],
                        area_codes=list(area_codes), grid_codes=list(grid_codes), category_codes=list(cats))
            db.session.add(team)
            db.session.commit()
            return team.id
    return make


_districts = itertools.count(1)


@pytest.fixture
def make_district(app):
    """make_district() -> a fresh district of 3×3 grids (0.001° squares) far from the others: counts in
    it are the test's own.

    Returns a dict: code, grid codes, and `point(i)` giving the centre (lon, lat) of grid i (0–8)."""
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer

    def make():
        n = next(_districts)
        code = f"98{n:04d}"
        x0, y0, d = 100.0 + n * 0.01, 30.0, 0.001
        with app.app_context():
            result = importer.import_grids(json.dumps(block_geojson(code, x0, y0, 3, d)).encode(), "block.geojson")
            db.session.commit()
            assert result.created == 9, result
        return {"code": code, "grids": [f"{code}001001{i:03d}" for i in range(1, 10)], "d": d,
                "point": lambda i: (x0 + (i % 3) * d + d / 2, y0 - (i // 3) * d - d / 2)}
    return make


@pytest.fixture
def district(make_district):
    """A fresh district (make_district)."""
    return make_district()


@pytest.fixture(scope="session")
def live_server(app, app_database_url, tmp_path_factory):
    """The product as deployed: `gridpatrol serve` (gunicorn) on a free port, on the test database,
    as the restricted role (its connections are named `gridpatrol-live` in pg_stat_activity)."""
    with served(app_database_url, app.config["PHOTO_STORAGE"], tmp_path_factory.mktemp("server"),
                "gridpatrol-live", workers=2) as base:
        yield base
