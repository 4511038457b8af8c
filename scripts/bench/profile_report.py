"""Where a POST /api/v1/reports spends its time, in process (Flask test client, no HTTP server):
SQL statements per request and the top functions by cumulative time. Needs gridpatrol_bench.

Usage: python scripts/bench/profile_report.py [N]   (default 300 requests)
"""
import cProfile
import io
import os
import pstats
import sys
import time
import uuid

os.environ.setdefault("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:54329/gridpatrol_bench")
from sqlalchemy import event  # noqa: E402

from gridpatrol import create_app  # noqa: E402
from gridpatrol.extensions import db  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import generate  # noqa: E402


def main(n: int = 300) -> None:
    app = create_app()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": generate.BENCH_USER,
                                                     "password": generate.BENCH_PASSWORD}).get_json()["access_token"]
    statements = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0:3]))

    def one(i):
        r = client.post("/api/v1/reports", json={
            "category_code": "0101", "lon": 121.0 + (i % 400) * 0.00105 + 0.0005,
            "lat": 31.0 + (i % 250) * 0.0009 + 0.0004, "accuracy_m": 8,
            "observed_at": "2026-11-26T05:00:00+00:00", "description": "profile"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.get_data(as_text=True)[:300]

    for i in range(20):  # warm up: caches, prepared statements
        one(i)
    statements.clear()
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for i in range(n):
        one(i)
    prof.disable()
    elapsed = time.perf_counter() - t
    print(f"{n} reports in {elapsed:.2f} s: {elapsed / n * 1000:.2f} ms each, one thread, in process (profiled)")
    print(f"SQL statements per request: {len(statements) / n:.1f}")
    kinds = {}
    for s in statements:
        k = " ".join(s)[:40]
        kinds[k] = kinds.get(k, 0) + 1
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {v / n:5.1f}  {k}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
    print(out.getvalue())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
