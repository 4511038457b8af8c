"""A constant-rate (open-model) HTTP client: requests are sent at scheduled times, whatever the
server's pace, and each latency is measured from the request's *scheduled* send time, so a server
that stalls is charged for the requests that should have gone out meanwhile (no coordinated omission).

Request i is due at start + i / rate. A pool of threads (each with its own keep-alive connection)
takes the next due request, waits for its time if it is early, sends it and records
done - scheduled. The pool is large enough that a slow response does not hold the schedule back;
if every thread is busy the next request leaves late and its latency includes the wait.

    python scripts/bench/openloop.py --rate 40 --seconds 10 --token T   # POST /api/v1/reports

Used by bench.py (measure 2: report p99 at half the maximum rate).
"""
import argparse
import http.client
import json
import random
import threading
import time
import uuid


def report_request(i: int, rng: random.Random) -> tuple[str, str, bytes, dict]:
    """POST /api/v1/reports at a random point inside the bench lattice, a unique Idempotency-Key."""
    body = {"category_code": "0101", "lon": round(121.0 + rng.random() * 0.42, 7),
            "lat": round(31.0 + rng.random() * 0.225, 7), "accuracy_m": 8,
            "observed_at": "2026-11-26T05:00:00+00:00", "description": "open-loop"}
    return "POST", "/api/v1/reports", json.dumps(body).encode(), {
        "Content-Type": "application/json", "Idempotency-Key": f"ol-{uuid.uuid4()}"}


def run(rate: float, seconds: float, port: int, token: str, make=report_request, threads: int = 64,
        host: str = "127.0.0.1") -> dict:
    """Send rate × seconds requests on schedule; latencies (ms) from the scheduled time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    lock = threading.Lock()
    state = {"next": 0}
    latencies, late, statuses, errors = [], [], {}, []
    slow = {}  # second of the run (by schedule) -> requests over 50 ms due in it

    def take() -> int | None:
        with lock:
            i = state["next"]
            if i >= total:
                return None
            state["next"] = i + 1
            return i

    def worker(seed: int):
        rng = random.Random(seed)
        conn = None
        while (i := take()) is not None:
            due = start + i / rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            sent = time.perf_counter()
            method, path, body, headers = make(i, rng)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **headers})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                status = None
                conn = None
                with lock:
                    errors.append(repr(e))
            took = (time.perf_counter() - due) * 1000
            with lock:
                if took > 50:
                    slow[int(due - start)] = slow.get(int(due - start), 0) + 1
                latencies.append(took)
                late.append((sent - due) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    xs, ls = sorted(latencies), sorted(late)

    def pct(v, p):
        return round(v[min(len(v) - 1, int(p / 100 * len(v)))], 3) if v else None
    ok = sum(n for s, n in statuses.items() if s is not None and 200 <= s < 300)
    return {"target_rate_per_s": round(rate, 2), "seconds": seconds, "requests": len(xs),
            "achieved_rate_per_s": round(len(xs) / elapsed, 2), "ok_2xx": ok,
            "non_2xx": sum(n for s, n in statuses.items() if s is not None and not 200 <= s < 300),
            "errors": len(errors), "threads": threads,
            "p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95), "p99_ms": pct(xs, 99), "max_ms": pct(xs, 100),
            "over_50ms": sum(1 for x in xs if x > 50), "over_50ms_by_second": dict(sorted(slow.items())),
            # how far behind its schedule each request left (client lag or every thread busy)
            "send_lag_p99_ms": pct(ls, 99), "sent_over_10ms_late": sum(1 for x in ls if x > 10)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, required=True, help="requests per second")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--port", type=int, default=5077)
    ap.add_argument("--token", required=True)
    ap.add_argument("--threads", type=int, default=64)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.rate, args.seconds, args.port, args.token, threads=args.threads), indent=2))


if __name__ == "__main__":
    main()
