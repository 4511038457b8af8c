"""The product on the bench's city, served as the suite measures it, for a load generator of one's own
(issue 6: "the ingest is measured from outside with a different load generator").

Run through scripts/bench/serve. Starts `gridpatrol serve` (the suite's workers and threads) and the KPI
compaction on gridpatrol_bench, signs the bench inspector in and prints the token and a report request to
copy. When stopped (Ctrl-C, SIGTERM or --seconds) it stops the server and counts the reports written while
it ran: the ingest counted by rows written, whatever the load generator counted.
"""
import argparse
import json
import random
import signal
import sys
import threading
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import generate  # noqa: E402
import openloop  # noqa: E402

# the bench inspector's reports with an id above `top`, and their events
WRITTEN_SQL = """
SELECT count(c.id), extract(epoch FROM max(c.reported_at) - min(c.reported_at)),
       (SELECT count(*) FROM case_events e WHERE e.case_id > %(top)s AND e.actor_id = u.id)
FROM users u LEFT JOIN cases c ON c.reporter_id = u.id AND c.id > %(top)s
WHERE u.username = %(user)s GROUP BY u.id
"""


def top_case(dsn: str) -> int:
    """The highest case id now; refuses a database without the bench's inspector."""
    with psycopg.connect(dsn) as c:
        if c.execute("SELECT 1 FROM users WHERE username = %s", (generate.BENCH_USER,)).fetchone() is None:
            raise SystemExit(f"{dsn} has no bench inspector: make the city first "
                             "(scripts/bench/run --quick --keep, or scripts/bench/generate.py --quick)")
        return c.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0]


def written(dsn: str, top: int) -> dict:
    with psycopg.connect(dsn) as c:
        n, span, events = c.execute(WRITTEN_SQL, {"top": top, "user": generate.BENCH_USER}).fetchone()
    span = float(span or 0)
    return {"reports": n, "events": events, "seconds": round(span, 3),
            "reports_per_s": round((n - 1) / span, 1) if n > 1 and span > 0 else None}


def instructions(port: int, token: str) -> str:
    _, path, body, _ = openloop.report_request(0, random.Random(1))
    return f"""
GridPatrol on the bench city: http://127.0.0.1:{port} (gridpatrol serve --workers {bench.WORKERS} --threads \
{bench.THREADS}, as the suite measures it)
token {token}

A report, as the field client sends it:
  curl -i http://127.0.0.1:{port}{path} -H 'Authorization: Bearer {token}' \\
       -H 'Content-Type: application/json' -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" \\
       -d '{body.decode()}'
Each request needs its own Idempotency-Key (a key sent again answers the first answer again and writes
nothing) and a point inside the grid lattice (lon 121.0-121.42, lat 31.0-31.225). The suite's own
generator, from the checkout: BENCH_TOKEN=<token> BENCH_LUA_DIR=scripts/bench/wrk wrk -t2 -c8 -d10s \\
       -s scripts/bench/wrk/report.lua http://127.0.0.1:{port}

Stop with Ctrl-C: the reports written while this ran are counted from the database.
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=bench.DSN, help="the bench city (default: gridpatrol_bench on the private cluster)")
    ap.add_argument("--port", type=int, default=bench.HTTP_PORT)
    ap.add_argument("--seconds", type=float, help="stop by itself after this long")
    args = ap.parse_args(argv)
    top = top_case(args.dsn)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with bench.Server(args.dsn, args.port) as server:
        print(instructions(args.port, server.token()), flush=True)
        stop.wait(args.seconds)
        if server.proc.poll() is not None:
            raise SystemExit(f"gridpatrol serve stopped by itself; see {server.log.name}")
    # counted once the server has stopped: nothing in flight is left out
    out = written(args.dsn, top)
    rate = f"{out['reports_per_s']} reports/s" if out["reports_per_s"] else "too few for a rate"
    print(f"{out['reports']} reports written ({out['events']} events), {out['seconds']} s from the first to the"
          f" last: {rate}")
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
