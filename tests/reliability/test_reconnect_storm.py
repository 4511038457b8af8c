"""Item 15: field clients coming back online together, each replaying its queue of 20 reports against the
product as deployed (gunicorn, 2 workers). The first items of every queue had already reached the server once
(their answers were lost), so the replay must not double them. Figures: latency per request and per item."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from _procs import Tally, percentile, send_until_answered
from _util import scalar

QUEUED = 20
ALREADY_SENT = 5  # of each queue, sent before the storm with their answers lost
CLIENTS_PER_USER = 10


def _storm(app, live_server, district, make_user, n_clients):
    code = district["code"]
    users = [make_user("inspector", scope=[code]) for _ in range((n_clients + CLIENTS_PER_USER - 1)
                                                                   // CLIENTS_PER_USER)]
    run = uuid.uuid4().hex[:12]
    lon, lat = district["point"](5)
    queues = [[(str(uuid.uuid4()), {"category_code": "0701", "description": f"storm-{run}-{c:03d}-{j:02d}",
                                    "lon": lon, "lat": lat, "accuracy_m": 5,
                                    "observed_at": "2026-11-26T09:00:00+08:00"}) for j in range(QUEUED)]
              for c in range(n_clients)]
    token = [users[c // CLIENTS_PER_USER].token for c in range(n_clients)]

    before = Tally()
    with ThreadPoolExecutor(8) as pool:
        first = dict(pool.map(lambda cj: ((cj[0], cj[1]), send_until_answered(
            [live_server], "/api/v1/reports", queues[cj[0]][cj[1]][0], token[cj[0]], before,
            json_body=queues[cj[0]][cj[1]][1], timeout=120)[0].json()["id"]),
            [(c, j) for c in range(n_clients) for j in range(ALREADY_SENT)]))

    tally, latencies, item_times, results = Tally(), [], [], {}
    lock = threading.Lock()
    barrier = threading.Barrier(n_clients)

    def client(c):
        session = requests.Session()

        class Timed:  # every attempt's latency, as the client's session sees it
            @staticmethod
            def post(*args, **kw):
                t = time.perf_counter()
                try:
                    return session.post(*args, **kw)
                finally:
                    with lock:
                        latencies.append(time.perf_counter() - t)

        barrier.wait()
        for j, (key, body) in enumerate(queues[c]):
            t = time.perf_counter()
            r, _ = send_until_answered([live_server], "/api/v1/reports", key, token[c], tally, json_body=body,
                                       timeout=300, session=Timed, retry_5xx=False)
            with lock:
                item_times.append(time.perf_counter() - t)
                results[(c, j)] = (r.status_code, r.json().get("id"), r.json().get("description"))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started

    total = n_clients * QUEUED
    prefix = f"storm-{run}-%"
    cases = scalar(app, "SELECT count(*) FROM cases WHERE description LIKE :p", p=prefix)
    distinct = scalar(app, "SELECT count(DISTINCT description) FROM cases WHERE description LIKE :p", p=prefix)
    statuses = {}
    for s, _, _ in results.values():
        statuses[s] = statuses.get(s, 0) + 1
    replayed_same = sum(results[k][1] == case_id for k, case_id in first.items())
    right_marker = sum(results[(c, j)][2] == queues[c][j][1]["description"]
                       for c in range(n_clients) for j in range(QUEUED))
    server_errors = tally.count(lambda s: s >= 500)
    waited = {s: n for s, n in tally.answers.items() if s in (409, 429, 503)}
    print(f"\n[reconnect storm] clients={n_clients} x {QUEUED} queued ({ALREADY_SENT} of each sent before, answers "
          f"lost) released together; wall {wall:.1f} s, {len(latencies)} requests, {total / wall:.0f} items/s | "
          f"request latency p50={percentile(latencies, 50) * 1000:.0f} ms p95={percentile(latencies, 95) * 1000:.0f} "
          f"ms max={max(latencies) * 1000:.0f} ms; item (until answered) p95="
          f"{percentile(item_times, 95) * 1000:.0f} ms | answers={dict(sorted(tally.answers.items()))} "
          f"5xx={server_errors} retried_after_retry_after={tally.retried_with_retry_after} ({waited}) "
          f"connection_errors={tally.connection_errors} | cases={cases} distinct={distinct} "
          f"duplicates={cases - distinct} pre-sent answered with their case={replayed_same}/{len(first)}")
    assert statuses == {201: total}, statuses
    assert server_errors == 0, tally.answers
    assert cases == total and distinct == total
    assert right_marker == total
    assert replayed_same == len(first) == n_clients * ALREADY_SENT


def test_reconnect_storm_50_clients(app, live_server, district, make_user):
    _storm(app, live_server, district, make_user, 50)


@pytest.mark.long
def test_reconnect_storm_200_clients(app, live_server, district, make_user):
    _storm(app, live_server, district, make_user, 200)
