"""Helpers for the tests: a signed-in API caller, tiny real images, grid blocks.

Import them with `from helpers import ...` (tests/ is on the import path; a name like
`conftest` is not unique across the test folders).
"""
import contextlib
import io
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

PASSWORD = "Test-pass-2026!"
DEMO_DISTRICT = "310199"
_counter = itertools.count(1)


def libpq(url: str) -> str:
    """A SQLAlchemy URL as psycopg connects with it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
                      "file": (io.BytesIO(data or png()), "p.png")},
                      headers={"Idempotency-Key": key or str(uuid.uuid4())}, content_type="multipart/form-data")
        assert r.status_code == expect, r.get_json()
        return r.get_json()


def png(color=None, size=(32, 32)) -> bytes:
    """A small real PNG, different for every call unless a colour is given."""
    from PIL import Image
    n = next(_counter)
    img = Image.new("RGB", size, color or ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256))
    img.putpixel((0, 0), (n % 256, (n // 256) % 256, 7))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


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


# ------------------------------------------------------------------ a district's office

@pytest.fixture
def office(app, client, make_user, make_team, district):
    """A district with its admin, dispatcher, handler team and inspector; webhooks removed afterwards."""
    class Office:
        pass
    o = Office()
    o.district = district
    o.admin = make_user("admin", scope=[district["code"]])
    o.team = make_team(kind="enforcement", area_codes=[district["code"]])
    o.dispatcher = make_user("dispatcher", scope=[district["code"]])
    o.handler = make_user("handler", scope=[district["code"]], teams=[o.team])
    o.inspector = make_user("inspector", scope=[district["code"]])
    o.hooks = []

    def hook(expect=201, **body):
        body.setdefault("url", f"http://127.0.0.1:9/{uuid.uuid4().hex[:8]}")
        r = o.admin.post("/api/v1/webhooks", json=body)
        assert r.status_code == expect, r.get_json()
        if expect == 201:
            o.hooks.append(r.get_json()["id"])
        return r.get_json()

    def report(i=4):
        lon, lat = district["point"](i)
        return o.inspector.report(lon=lon, lat=lat)

    o.hook, o.report = hook, report
    yield o
    for h in o.hooks:
        o.admin.delete(f"/api/v1/webhooks/{h}")


def close_case(o, case_id):
    """Take a reported case through the whole loop to closed."""
    o.dispatcher.act(case_id, "register")
    o.dispatcher.act(case_id, "dispatch", {"team_id": o.team})
    o.handler.act(case_id, "accept")
    after = o.handler.photo(case_id, "after")
    o.handler.act(case_id, "handle", {"note": "已清理", "photo_ids": [after["id"]]})
    check = o.inspector.photo(case_id, "verification")
    where = o.inspector.case(case_id)["location"]
    lon, lat = where["lon"], where["lat"]
    return o.inspector.act(case_id, "verify_pass", {"photo_ids": [check["id"]], "lon": lon, "lat": lat})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(database_url: str, photo_storage: str, logdir: Path, appname: str, workers: int = 1):
    """`gridpatrol serve` (gunicorn) in a process of its own on a free port: its base URL, once it
    answers /healthz; stopped afterwards. Its connections are named `appname` in pg_stat_activity."""
    import requests

    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, PHOTO_STORAGE=photo_storage, PGAPPNAME=appname)
    env.pop("MIGRATE_DATABASE_URL", None)
    log = open(logdir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gridpatrol.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[1])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the server did not start; see {log.name}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@contextlib.contextmanager
def sent_statements(app):
    """The (statement, parameters) the app sends to the database while the block runs, in order."""
    from sqlalchemy import event

    from gridpatrol.extensions import db
    with app.app_context():
        engine = db.engine
    sent = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def sql(app, statement: str, **params):
    """Run one SQL statement in the app's database and commit: its rows, or None."""
    from sqlalchemy import text

    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


def put(api, path, body):
    return api.client.put(path, json=body, headers=api._headers(None))


@contextlib.contextmanager
def work_periods(admin, periods):
    """Working periods for the length of a test, the deployment's own put back after (which leaves a
    recount of the kept handling hours under way, as any change of the week does)."""
    original = admin.get("/api/v1/calendar").get_json()["work_periods"]
    r = put(admin, "/api/v1/calendar/work-periods", periods)
    assert r.status_code == 200, r.get_json()
    try:
        yield r.get_json()
    finally:
        restored = put(admin, "/api/v1/calendar/work-periods", {d: p for d, p in original.items() if p})
        assert restored.status_code == 200 and restored.get_json()["work_periods"] == original


# the kept KPI facts against the facts worked out again from the event log, over every case:
# (rows kept but not worked out again, rows worked out again but not kept)
FACTS_DIFFERENCE_SQL = """
    WITH again AS (SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases), 'infinity'))
    SELECT (SELECT count(*) FROM (SELECT * FROM kpi_facts EXCEPT ALL SELECT * FROM again) a),
           (SELECT count(*) FROM (SELECT * FROM again EXCEPT ALL SELECT * FROM kpi_facts) b)"""
