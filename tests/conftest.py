"""Test fixtures: a throwaway PostGIS database per run, the real app, factories with defaults.

TEST_DATABASE_URL names the database to (re)create; its name must end in `_test`. Tests do not
roll back: each one makes its own users, teams and, where counts matter, its own district, so
they can commit, race and run against a live server like real clients.
"""
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

PASSWORD = "Test-pass-2026!"
DEMO_DISTRICT = "310199"
_counter = itertools.count(1)


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run scripts/test", returncode=2)
    if not make_url(url).database.endswith("_test"):
        pytest.exit("TEST_DATABASE_URL must name a database ending in _test (it is dropped)", returncode=2)
    return url


@pytest.fixture(scope="session")
def database_url():
    url = make_url(_database_url())
    admin = url.set(database="postgres", drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{url.database}"')
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    from gridpatrol import create_app
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.grids import services as grids
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                      "PHOTO_STORAGE": str(tmp_path_factory.mktemp("photos")),
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 30, "max_overflow": 10}})
    with app.app_context():
        upgrade()
        geodata = ROOT / "geodata"
        grids.area_names(json.loads((geodata / "areas.json").read_text()))
        importer.import_grids((geodata / "demo_district.geojson").read_bytes(), "demo.geojson")
        catalog.load_catalog(json.loads((geodata / "catalog.json").read_text()))
        catalog.load_calendar(json.loads((geodata / "calendar.json").read_text()))
        db.session.commit()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """A signed-in caller of the real app (Flask's test client: the whole WSGI stack, no network)."""

    def __init__(self, client, token=None, user=None):
        self.client, self.token, self.user = client, token, user

    def _headers(self, headers):
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        return h

    def get(self, path, headers=None, **kw):
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post(path, json=json, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete(path, headers=self._headers(headers), **kw)

    def case(self, case_id):
        r = self.get(f"/api/v1/cases/{case_id}")
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def act(self, case_id, action, body=None, version=None, expect=200):
        if version is None:
            version = self.case(case_id)["version"]
        r = self.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body or {},
                      headers={"If-Match": f'"{version}"'})
        assert r.status_code == expect, (action, r.status_code, r.get_json())
        return r.get_json()

    def report(self, body=None, key=None, expect=201, **overrides):
        payload = {"category_code": "0701", "description": "exposed garbage", "lon": 121.46, "lat": 31.22,
                   "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00", "urgency": "B"}
        payload.update(body or {})
        payload.update(overrides)
        r = self.post("/api/v1/reports", json=payload, headers={"Idempotency-Key": key or str(uuid.uuid4())})
        assert r.status_code == expect, r.get_json()
        return r.get_json()

    def photo(self, case_id, kind, data=None, key=None, expect=201):
        r = self.post(f"/api/v1/cases/{case_id}/photos", data={"kind": kind,
                      "file": (__import__("io").BytesIO(data or png()), "p.png")},
                      headers={"Idempotency-Key": key or str(uuid.uuid4())}, content_type="multipart/form-data")
        assert r.status_code == expect, r.get_json()
        return r.get_json()


def png(color=None, size=(32, 32)) -> bytes:
    """A small real PNG, different for every call unless a colour is given."""
    import io

    from PIL import Image
    n = next(_counter)
    img = Image.new("RGB", size, color or ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256))
    img.putpixel((0, 0), (n % 256, (n // 256) % 256, 7))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


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


def block_geojson(district: str, x0=121.30, y0=31.10, n=3, d=0.001) -> dict:
    """An n×n block of square grids for a district of its own (street 001, community 001)."""
    feats = []
    for j in range(n):
        for i in range(n):
            x, y = x0 + i * d, y0 - j * d
            ring = [[x, y - d], [x + d, y - d], [x + d, y], [x, y], [x, y - d]]
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"code": f"{district}001001{j * n + i + 1:03d}", "name": f"g{j * n + i + 1}"}})
    return {"type": "FeatureCollection", "features": feats}


_districts = itertools.count(1)


@pytest.fixture
def district(app):
    """A fresh district of 3×3 grids (0.001° squares) far from the others: counts in it are the test's own.

    Returns a dict: code, grid codes, and `point(i)` giving the centre (lon, lat) of grid i (0–8)."""
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer

    n = next(_districts)
    code = f"98{n:04d}"
    x0, y0, d = 100.0 + n * 0.01, 30.0, 0.001
    with app.app_context():
        result = importer.import_grids(json.dumps(block_geojson(code, x0, y0, 3, d)).encode(), "block.geojson")
        db.session.commit()
        assert result.created == 9, result
    return {"code": code, "grids": [f"{code}001001{i:03d}" for i in range(1, 10)], "d": d,
            "point": lambda i: (x0 + (i % 3) * d + d / 2, y0 - (i // 3) * d - d / 2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app, database_url, tmp_path_factory):
    """The product as deployed: `gridpatrol serve` (gunicorn) on a free port, on the test database."""
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=database_url, PHOTO_STORAGE=app.config["PHOTO_STORAGE"])
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gridpatrol.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    import requests
    for _ in range(150):
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("the live server did not start")
    yield base
    proc.terminate()
    proc.wait(timeout=20)
