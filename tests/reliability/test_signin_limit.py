"""Item 11: the sign-in limit is shared by the server processes: against gunicorn with 2 workers, the 11th failed
attempt within a minute for one account is 429 whichever worker answers, while a signed-in client sending 50
reports quickly is never limited."""
import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from urllib.parse import urlparse

import requests

from helpers import PASSWORD

from _util import server_pids, worker_of

LIMIT = 10  # LOGIN_ATTEMPTS_PER_MINUTE, the default the live server runs with
_sources = count(2)


class _WorkerConnections:
    """Keep-alive connections, each from its own loopback address (so the per-address limit never decides),
    whose answering worker is known before the attempt is sent."""

    def __init__(self, base):
        url = urlparse(base)
        self.host, self.port = url.hostname, url.port
        self.workers = server_pids(base)[1]
        assert len(self.workers) == 2, self.workers

    def on(self, worker):
        for _ in range(200):
            n = next(_sources)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60,
                                              source_address=(f"127.0.{n // 250}.{n % 250 + 2}", 0))
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            if worker_of(conn.sock, self.workers) == worker:
                return conn
            conn.close()
        raise AssertionError(f"no connection reached worker {worker} in 200 tries")


def _sign_in(conn, username, password):
    conn.request("POST", "/api/v1/auth/token", body=json.dumps({"username": username, "password": password}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def test_eleventh_failed_sign_in_is_limited_on_every_worker(live_server, make_user):
    victim = make_user("inspector")
    pool = _WorkerConnections(live_server)
    a, b = pool.workers
    answered = []
    for i in range(LIMIT):
        worker = (a, b)[i % 2]
        answered.append((worker, _sign_in(pool.on(worker), victim.username, f"wrong-{i}")))
    after = [(w, _sign_in(pool.on(w), victim.username, "wrong-again")) for w in (a, b)]
    right_password = [(w, _sign_in(pool.on(w), victim.username, PASSWORD)) for w in (a, b)]
    other = make_user("inspector")
    unaffected = [(w, _sign_in(pool.on(w), other.username, PASSWORD)) for w in (a, b)]
    print(f"\n[sign-in limit] workers {a},{b}; attempts 1-{LIMIT}: {[s for _, s in answered]} "
          f"(worker {a}: {sum(w == a for w, _ in answered)}, worker {b}: {sum(w == b for w, _ in answered)}); "
          f"attempt 11+ per worker: {after}; right password while limited: {right_password}; "
          f"another account: {unaffected}")
    assert [s for _, s in answered] == [401] * LIMIT
    assert [s for _, s in after] == [429, 429]
    assert [s for _, s in right_password] == [429, 429]
    assert [s for _, s in unaffected] == [200, 200]


def test_a_signed_in_client_reporting_quickly_is_never_limited(live_server, district, make_user):
    inspector = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](8)
    session = requests.Session()

    def report(i):
        return session.post(f"{live_server}/api/v1/reports", timeout=120, json={
            "category_code": "0701", "description": f"burst {i}", "lon": lon, "lat": lat, "accuracy_m": 5,
            "observed_at": "2026-11-26T09:00:00+08:00"},
            headers={"Authorization": f"Bearer {inspector.token}", "Idempotency-Key": str(uuid.uuid4())})

    with ThreadPoolExecutor(10) as pool:
        statuses = [r.status_code for r in pool.map(report, range(50))]
    print(f"\n[report burst] 50 reports: 201={statuses.count(201)} 429={statuses.count(429)} "
          f"other={sorted(set(statuses) - {201})}")
    assert statuses.count(429) == 0
    assert statuses == [201] * 50
