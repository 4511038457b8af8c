"""Item 4: PostgreSQL SIGKILLed under load. Every report the API acknowledged (201) is there after the restart;
while the database is down the API answers 503 with Retry-After (no hang, no 500); the app server comes back by
itself when the database does; and a report whose answer was lost is made exactly once when retried."""
import threading
import time
import uuid
from dataclasses import dataclass, field

import psycopg
import pytest
import requests

from helpers import PASSWORD

from _procs import Cluster, Server, Tally, prepare_database, send_until_answered, wait_healthy

DATABASE = "gp_faults_test"
N_CLIENTS = 6
TIMEOUT = 30  # a request not answered by then counts as hanging


@pytest.fixture
def deployment(tmp_path):
    """A cluster of its own (initdb under /tmp), a database on it, and `gridpatrol serve` on that database."""
    cluster = Cluster()
    server = None
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres", "postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        url = cluster.url(DATABASE)
        username = prepare_database(url)
        photos = tmp_path / "photos"
        photos.mkdir()
        server = Server(url, str(photos), tmp_path).start()
        r = requests.post(f"{server.base}/api/v1/auth/token", json={"username": username, "password": PASSWORD},
                          timeout=60)
        assert r.status_code == 200, r.text
        yield cluster, server, r.json()["access_token"], url, username, tmp_path
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


class Load:
    """Clients posting reports without pause, each with its own key and marker; every answer is kept."""

    def __init__(self, base, token, run):
        self.base, self.token, self.run = base, token, run
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.sent = []  # (key, body, status, case id or None, retry_after, problem+json, seconds, phase)
        self.phase = "up"
        self.seq = 0

    def _next(self):
        with self.lock:
            self.seq += 1
            return self.seq, self.phase

    def client(self):
        session = requests.Session()
        while not self.halt.is_set():
            n, phase = self._next()
            key = str(uuid.uuid4())
            body = {"category_code": "0701", "description": f"pgkill-{self.run}-{n:06d}", "lon": 121.46,
                    "lat": 31.22, "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00"}
            t = time.perf_counter()
            try:
                r = session.post(self.base + "/api/v1/reports", json=body, timeout=TIMEOUT,
                                 headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})
                answer = (r.status_code, r.json().get("id") if r.status_code == 201 else None,
                          r.headers.get("Retry-After"),
                          r.headers.get("Content-Type", "").startswith("application/problem+json"))
            except requests.RequestException as exc:
                answer = (type(exc).__name__, None, None, False)
            with self.lock:
                self.sent.append((key, body, *answer, time.perf_counter() - t, phase))
            if answer[0] == 503:
                time.sleep(0.2)  # a client would wait Retry-After; a short pause keeps the samples coming

    def __enter__(self):
        self.threads = [threading.Thread(target=self.client) for _ in range(N_CLIENTS)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for t in self.threads:
            t.join()


def _acknowledged(load):
    return sum(s == 201 for _, _, s, *_ in load.sent)


def _wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _health(base):
    r = requests.get(base + "/healthz", timeout=TIMEOUT)
    return r.status_code, r.headers.get("Retry-After")


def _probes(base, token, username):
    """Other doors while the database is away: (name, status, Retry-After, problem+json)."""
    auth = {"Authorization": f"Bearer {token}"}
    calls = [("GET /me", lambda: requests.get(base + "/api/v1/me", headers=auth, timeout=TIMEOUT)),
             ("GET /cases", lambda: requests.get(base + "/api/v1/cases?per_page=5", headers=auth, timeout=TIMEOUT)),
             ("POST /auth/token", lambda: requests.post(base + "/api/v1/auth/token", timeout=TIMEOUT,
                                                        json={"username": username, "password": PASSWORD}))]
    out = []
    for name, call in calls:
        r = call()
        out.append((name, r.status_code, r.headers.get("Retry-After"),
                    r.headers.get("Content-Type", "").startswith("application/problem+json")))
    return out


def _listening(base, seconds=60):
    """Wait until the server answers at all (it cannot be healthy without its database)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _health(base)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"{base} did not listen in {seconds} s"
            time.sleep(0.1)


@dataclass
class Seen:
    """What the test observed around the kills."""
    health_down: list = field(default_factory=list)  # /healthz of the running server while the database was down
    health_back: list = field(default_factory=list)
    recovery: list = field(default_factory=list)  # seconds from `pg_ctl start` to 20 new acknowledged reports
    probes: list = field(default_factory=list)
    late_down: tuple | None = None  # /healthz of a server started while the database was down
    late_back: tuple | None = None


def _kill_and_restart(cluster, server, load, kills, down_seconds, late, token, username, seen):
    for n in range(kills):
        start = _acknowledged(load)
        _wait_for(lambda: _acknowledged(load) >= start + 100)  # under load
        cluster.kill()
        load.phase = "down"  # from here on every request starts with the database gone
        if n == 0:
            late.start(wait=False)
            seen.late_down = _listening(late.base)
            seen.probes = _probes(server.base, token, username)
        else:
            time.sleep(down_seconds / 2)
        seen.health_down.append(_health(server.base))
        time.sleep(down_seconds / 2)
        load.phase = "restarting"  # 503 until the database accepts connections, then 201
        t = time.perf_counter()
        cluster.start()
        load.phase = "back"  # from here on every request starts with the database accepting connections
        acked = _acknowledged(load)
        _wait_for(lambda: _acknowledged(load) >= acked + 20)  # the server took new reports by itself
        seen.recovery.append(time.perf_counter() - t)
        seen.health_back.append(_health(server.base))
        load.phase = "up"


def _cases(url, run) -> dict:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return {"stored": dict(conn.execute("SELECT description, id FROM cases WHERE description LIKE %s",
                                            (f"pgkill-{run}-%",)).fetchall()),
                "rows": conn.execute("SELECT count(*) FROM cases WHERE description LIKE %s",
                                     (f"pgkill-{run}-%",)).fetchone()[0]}


def _cycle(deployment, kills, down_seconds=3.0):
    cluster, server, token, url, username, tmp = deployment
    server_pid = server.proc.pid
    run = uuid.uuid4().hex[:12]
    seen = Seen()
    late = Server(url, str(tmp / "photos"), tmp)  # started while the database is down
    try:
        with Load(server.base, token, run) as load:
            _kill_and_restart(cluster, server, load, kills, down_seconds, late, token, username, seen)
        seen.late_back = _health(late.base)
    finally:
        late.stop()
    server_alive = server.proc.poll() is None and server.proc.pid == server_pid

    sent = load.sent
    acked = {body["description"]: case_id for _, body, s, case_id, *_ in sent if s == 201}
    before = _cases(url, run)
    lost = [d for d, case_id in acked.items() if before["stored"].get(d) != case_id]
    not_acked = [(key, body) for key, body, s, *_ in sent if s != 201]
    made_anyway = sum(body["description"] in before["stored"] for _, body in not_acked)
    bad = [(s, ra, pj, ph) for _, _, s, _, ra, pj, _, ph in sent if s != 201 and not (s == 503 and ra and pj)]
    statuses = {}
    for _, _, s, *_, phase in sent:
        statuses.setdefault(phase, {}).setdefault(s, 0)
        statuses[phase][s] += 1
    slowest_503 = max((sec for _, _, s, _, _, _, sec, _ in sent if s == 503), default=0)

    # the reports answered 503: retried with their keys now, each is made exactly once
    tally = Tally()
    retried = [send_until_answered([server.base], "/api/v1/reports", key, token, tally, json_body=body,
                                   timeout=TIMEOUT)[0] for key, body in not_acked]
    after = _cases(url, run)
    fresh = requests.post(server.base + "/api/v1/reports", timeout=TIMEOUT, json={
        "category_code": "0701", "description": f"pgkill-after-{run}", "lon": 121.46, "lat": 31.22, "accuracy_m": 5,
        "observed_at": "2026-11-26T09:00:00+08:00"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())})

    print(f"\n[database kill x{kills}] postmaster SIGKILLed under {N_CLIENTS} clients, down ~{down_seconds:.0f} s "
          f"each time | answers by phase={statuses} | acknowledged={len(acked)} found after restart="
          f"{len(acked) - len(lost)} lost={len(lost)} | unacknowledged={len(not_acked)} (committed anyway: "
          f"{made_anyway}) retried -> {sorted({r.status_code for r in retried})}, cases={after['rows']} for "
          f"{len(sent)} reports, distinct={len(after['stored'])} | slowest 503={slowest_503 * 1000:.0f} ms | "
          f"/healthz down={seen.health_down} back={seen.health_back} | new reports within "
          f"{', '.join(f'{x:.1f}' for x in seen.recovery)} s of the restart, app server not restarted={server_alive} "
          f"| fresh report after={fresh.status_code} | other doors while down={seen.probes} | a server started "
          f"while down: /healthz {seen.late_down}, after {seen.late_back}")
    assert lost == [], lost[:10]
    assert len(acked) >= kills * 100
    assert bad == [], bad[:10]
    assert set(statuses["down"]) == {503} and set(statuses["back"]) == {201}, statuses
    assert all(h[0] == 503 and h[1] for h in seen.health_down), seen.health_down
    assert all(h[0] == 200 for h in seen.health_back), seen.health_back
    assert server_alive
    assert {r.status_code for r in retried} <= {201}
    assert after["rows"] == len(after["stored"]) == len(sent)
    assert fresh.status_code == 201, fresh.text
    assert [(s, bool(ra), pj) for _, s, ra, pj in seen.probes] == [(503, True, True)] * 3, seen.probes
    assert seen.late_down[0] == 503 and seen.late_down[1] and seen.late_back[0] == 200
    wait_healthy(server.base, 5)


def test_database_killed_once_under_load(deployment):
    _cycle(deployment, kills=1)


@pytest.mark.long
def test_database_killed_five_times_under_load(deployment):
    _cycle(deployment, kills=5)
