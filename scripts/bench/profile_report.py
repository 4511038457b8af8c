"""Where a POST /api/v1/reports spends its time, in process (Flask test client, no HTTP server):
SQL statements per request, milliseconds per request unprofiled, then the top functions by
cumulative time under the profiler. `--duplicates` does the same for GET /cases/{id}/duplicates
(target 9) over the open cases of the database. Needs a generated database (`generate.py`), by
default gridpatrol_bench; DATABASE_URL points it at another one. It adds the cases it reports.

Usage: python scripts/bench/profile_report.py [N] [--duplicates] [--no-profile]   (default 300 requests)
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid

os.environ.setdefault("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:54329/gridpatrol_bench")
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gridpatrol import create_app  # noqa: E402
from gridpatrol.extensions import db  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import generate  # noqa: E402


def _report(client, headers):
    def one(i):
        r = client.post("/api/v1/reports", json={
            "category_code": "0101", "lon": 121.0 + (i % 400) * 0.00105 + 0.0005,
            "lat": 31.0 + (i % 250) * 0.0009 + 0.0004, "accuracy_m": 8,
            "observed_at": "2026-11-26T05:00:00+00:00", "description": "profile"},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.get_data(as_text=True)[:300]
    return one


def _duplicates(app, client, headers, n):
    with app.app_context():
        ids = db.session.execute(text(
            # the generated open cases, not the ones this script reported (they lie on 2,000 points)
            "SELECT id FROM cases WHERE status IN ('reported', 'registered') AND description <> 'profile' "
            "ORDER BY random() LIMIT :n"),
            {"n": n}).scalars().all()
        db.session.rollback()

    def one(i):
        r = client.get(f"/api/v1/cases/{ids[i % len(ids)]}/duplicates", headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return one


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=300)
    ap.add_argument("--duplicates", action="store_true", help="GET /cases/{id}/duplicates instead of reports")
    ap.add_argument("--no-profile", action="store_true", help="statements and timing only")
    args = ap.parse_args(argv)
    n = args.n
    app = create_app()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": generate.BENCH_USER,
                                                     "password": generate.BENCH_PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    one = _duplicates(app, client, headers, n) if args.duplicates else _report(client, headers)
    what = "duplicate searches" if args.duplicates else "reports"
    statements = []  # [first words, seconds from sending to the answer]
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute",
                 lambda *a: statements.append([" ".join(a[2].split()[0:3])[:40], time.perf_counter()]))
    event.listen(engine, "after_cursor_execute",
                 lambda *a: statements[-1].__setitem__(1, time.perf_counter() - statements[-1][1]))
    commits = []  # seconds from sending COMMIT to the session's after_commit
    event.listen(engine, "commit", lambda conn: commits.append(time.perf_counter()))
    event.listen(Session, "after_commit", lambda session: commits.__setitem__(-1, time.perf_counter() - commits[-1]))

    for i in range(20):  # warm up: caches, prepared statements
        one(i)
    statements.clear()
    commits.clear()
    t = time.perf_counter()
    for i in range(n):
        one(i)
    elapsed = time.perf_counter() - t
    print(f"{n} {what} in {elapsed:.2f} s: {elapsed / n * 1000:.2f} ms each, one thread, in process (unprofiled)")
    print(f"SQL statements per request: {len(statements) / n:.1f} (per request: count, ms from send to answer)")
    kinds = {}
    for k, seconds in statements:
        count, total = kinds.get(k, (0, 0.0))
        kinds[k] = (count + 1, total + seconds)
    for k, (count, total) in sorted(kinds.items(), key=lambda kv: -kv[1][0])[:15]:
        print(f"  {count / n:5.1f}  {total / n * 1000:6.2f} ms  {k}")
    print(f"  {len(commits) / n:5.1f}  {sum(commits) / n * 1000:6.2f} ms  COMMIT")
    if args.no_profile:
        return
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for i in range(n):
        one(i)
    prof.disable()
    elapsed = time.perf_counter() - t
    print(f"profiled: {elapsed / n * 1000:.2f} ms each")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
    print(out.getvalue())


if __name__ == "__main__":
    main()
