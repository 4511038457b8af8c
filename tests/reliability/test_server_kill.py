"""Item 3: app servers SIGKILLed every 1–3 s while clients submit reports, retrying each with its own
Idempotency-Key on the next server: every report becomes exactly one case, and every key answers with it."""
import queue
import threading
import time
import uuid
from datetime import datetime

import pytest

from _procs import Killer, Server, Tally, send_until_answered, wait_healthy
from _util import scalar

N_SERVERS = 3
N_CLIENTS = 8


@pytest.fixture
def servers(app, database_url, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    started = [Server(database_url, str(photos), tmp_path).start(wait=False) for _ in range(N_SERVERS)]
    try:
        for s in started:
            wait_healthy(s.base)
        yield started
    finally:
        for s in started:
            s.stop()


def _storm(app, servers, district, make_user, n_reports, max_kills=None):
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    run = uuid.uuid4().hex[:12]
    lon, lat = district["point"](4)
    todo = queue.Queue()
    for i in range(n_reports):
        todo.put(i)
    bases = [s.base for s in servers]
    tally = Tally()
    answers, attempts, failures, replayed = {}, [], [], []
    keys = {i: str(uuid.uuid4()) for i in range(n_reports)}
    bodies = {i: {"category_code": "0701", "description": f"kill-{run}-{i:05d}", "lon": lon, "lat": lat,
                  "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00"} for i in range(n_reports)}

    def client(c):
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                r, n = send_until_answered(bases, "/api/v1/reports", keys[i], inspector.token, tally,
                                           json_body=bodies[i], start=c + i, timeout=30)
            except AssertionError as exc:
                failures.append((i, str(exc)))
                continue
            attempts.append(n)
            answers[i] = (r.status_code, r.json().get("id"), r.json().get("description"))
            if n > 1 and datetime.fromisoformat(r.json()["reported_at"]).timestamp() < r.sent_at:
                replayed.append(i)  # made by an earlier attempt whose answer a kill took away

    killer = Killer(servers, 1.0, 3.0, max_kills=max_kills)
    started = time.perf_counter()
    killer.start()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(N_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    killer.stop()
    assert killer.error is None, killer.error
    for s in servers:  # the last restarted ones
        wait_healthy(s.base)

    # every key replayed once more on a calm server: the same case as the answer the client kept
    calm = Tally()
    replays = {i: send_until_answered(bases, "/api/v1/reports", keys[i], inspector.token, calm,
                                      json_body=bodies[i], start=i, timeout=60)[0] for i in range(n_reports)}
    prefix = f"kill-{run}-%"
    cases = scalar(app, "SELECT count(*) FROM cases WHERE description LIKE :p", p=prefix)
    distinct = scalar(app, "SELECT count(DISTINCT description) FROM cases WHERE description LIKE :p", p=prefix)
    doubled = cases - distinct
    keys_rows = scalar(app, "SELECT count(*) FROM idempotency_keys WHERE user_id = :u AND status_code = 201",
                       u=inspector.id)
    same = sum(answers.get(i, (None, None))[1] == replays[i].json().get("id") and replays[i].status_code == 201
               for i in range(n_reports))
    right_marker = sum(answers.get(i, (None, None, None))[2] == bodies[i]["description"] for i in range(n_reports))
    statuses = sorted({s for s, _, _ in answers.values()})
    print(f"\n[server kill x{n_reports}] wall {wall:.1f} s, servers={N_SERVERS} (2 workers each) clients={N_CLIENTS} "
          f"kills={killer.kills} restarts={sum(s.starts for s in servers) - N_SERVERS} "
          f"connection_errors={tally.connection_errors} answers={dict(sorted(tally.answers.items()))} "
          f"retried_after_retry_after={tally.retried_with_retry_after} "
          f"attempts/report max={max(attempts, default=0)} mean={sum(attempts) / max(len(attempts), 1):.2f} "
          f"answered by replaying an earlier attempt's commit={len(replayed)} | "
          f"cases={cases} lost={n_reports - distinct} doubled={doubled} final_statuses={statuses} "
          f"replay_same_case={same}/{n_reports} key_rows={keys_rows} failures={failures[:3]}")
    assert failures == []
    assert killer.kills >= 1
    assert statuses == [201]
    assert cases == n_reports and distinct == n_reports and doubled == 0
    assert right_marker == n_reports
    assert same == n_reports
    assert keys_rows == n_reports
    assert tally.count(lambda s: s >= 500 and s != 503) == 0, tally.answers  # a 503 carries Retry-After


def test_server_kill_200_reports(app, servers, district, make_user):
    """The short variant: 200 reports, at most 4 kills (each restart costs the machine seconds of CPU)."""
    _storm(app, servers, district, make_user, 200, max_kills=4)


@pytest.mark.long
def test_server_kill_1000_reports(app, servers, district, make_user):
    _storm(app, servers, district, make_user, 1000)
