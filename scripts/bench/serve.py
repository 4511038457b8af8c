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
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import generate  # noqa: E402
import openloop  # noqa: E402

# the bench inspector's cases with an id above `top` (its reports while serving), and their first events
WRITTEN_SQL = """
SELECT count(*), extract(epoch FROM max(c.reported_at) - min(c.reported_at)),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.action = 'report'))
FROM cases c WHERE c.id > %(top)s AND c.reporter_id = %(user)s
"""


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop serving and count."""


def _stop(*_):
    for sig in (signal.SIGINT, signal.SIGTERM):  # once: the server is stopped whatever is pressed meanwhile
        signal.signal(sig, signal.SIG_IGN)
    raise Stop


def written(dsn: str, top: int, user: int) -> dict:
    with psycopg.connect(dsn) as c:
        n, span, events = c.execute(WRITTEN_SQL, {"top": top, "user": user}).fetchone()
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
    user = bench.bench_user_id(args.dsn)  # refuses a database without the bench's inspector
    top = bench.count(bench.TOP_CASE_SQL, args.dsn)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    try:
        with bench.Server(args.dsn, args.port) as server:
            print(instructions(args.port, server.token()), flush=True)
            end = None if args.seconds is None else time.monotonic() + args.seconds
            while server.proc.poll() is None and (end is None or time.monotonic() < end):
                time.sleep(0.2)
            if server.proc.poll() is not None:
                raise SystemExit(f"gridpatrol serve stopped by itself; see {server.log.name}")
    except Stop:
        pass
    # counted once the server has stopped: nothing in flight is left out
    out = written(args.dsn, top, user)
    rate = "too few for a rate" if out["reports_per_s"] is None else f"{out['reports_per_s']} reports/s"
    print(f"{out['reports']} reports written ({out['events']} events), {out['seconds']} s from the first to the"
          f" last: {rate}")
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
