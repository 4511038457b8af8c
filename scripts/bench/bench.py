"""GridPatrol benchmark: baselines and measures in one run, ratios and PASS/FAIL against the issue's targets.

Run through scripts/bench/run [--quick]. Prints a table and writes var/bench/summary-<stamp>.json
(and var/bench/summary-latest.json) with every figure.
"""
import argparse
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

PG = {"host": "127.0.0.1", "port": "54329", "user": "postgres", "db": "gridpatrol_bench"}
DSN = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['db']}"
HTTP_PORT = int(os.environ.get("BENCH_HTTP_PORT", "5077"))
WORKERS = int(os.environ.get("WORKERS", "4"))  # scripts/run's default
THREADS = int(os.environ.get("THREADS", "4"))  # gridpatrol serve's default
CONNECTIONS = 8

# (name, measure, baseline, minimum ratio) from issue 6
TARGETS = [
    ("report ingest >= 20% of pgbench of its own SQL (8 clients)", "http_post_reports", "pgbench_report_c8", 0.20),
    ("report ingest >= 40% of GET /healthz", "http_post_reports", "http_healthz", 0.40),
    ("grid lookup (100k grids) >= 80% of pgbench -S (1 client)", "pgbench_locate_c1", "pgbench_select_c1", 0.80),
]
# the same lookup target, both sides with prepared statements (informative: printed, not a target of the issue)
EXTRA = [("grid lookup >= 80% of pgbench -S, both -M prepared", "pgbench_locate_c1_prepared",
          "pgbench_select_c1_prepared", 0.80)]


def percentiles(latencies_us: list[float]) -> dict:
    xs = sorted(latencies_us)
    if not xs:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}

    def pct(p):
        return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))] / 1000, 3)
    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


def pgbench(name: str, args: list[str], clients: int, seconds: int) -> dict:
    """One pgbench run with per-transaction logs, for percentiles."""
    logdir = Path(tempfile.mkdtemp(prefix="bench-pgbench-"))
    cmd = ["pgbench", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-n", "-c", str(clients),
           "-j", str(min(clients, 2)), "-T", str(seconds), "-l", "--log-prefix", str(logdir / "tx"), *args, PG["db"]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    failed = int(re.search(r"number of failed transactions: (\d+)", out).group(1))
    latencies = []
    for f in glob.glob(str(logdir / "tx*")):
        with open(f) as fh:
            latencies.extend(float(line.split()[2]) for line in fh)
    shutil.rmtree(logdir)
    return {"name": name, "kind": "pgbench", "clients": clients, "seconds": seconds, "throughput_per_s": round(tps, 1),
            "transactions": len(latencies), "failed": failed, **percentiles(latencies)}


def wrk(name: str, script: str, seconds: int, env: dict) -> dict:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(HERE / "wrk" / script),
           f"http://127.0.0.1:{HTTP_PORT}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, "BENCH_LUA_DIR": str(HERE / "wrk"), **env}).stdout
    data = json.loads(out.split("WRKJSON ", 1)[1].splitlines()[0])
    secs = data["duration_us"] / 1e6
    errors = sum(v for k, v in data.items() if k.startswith("errors_"))
    ok = data["requests"] - data["errors_status"]
    return {"name": name, "kind": "http", "clients": CONNECTIONS, "seconds": seconds,
            "throughput_per_s": round(ok / secs, 1), "requests": data["requests"], "errors": errors,
            "non_2xx": data["errors_status"], "p50_ms": data["p50_us"] / 1000, "p95_ms": data["p95_us"] / 1000,
            "p99_ms": data["p99_us"] / 1000}


class Server:
    """`gridpatrol serve` on the bench database, with the workers config scripts/run uses."""

    def __enter__(self):
        env = {**os.environ, "DATABASE_URL": DSN.replace("postgresql://", "postgresql+psycopg://", 1)}
        self.log = tempfile.NamedTemporaryFile("w", prefix="bench-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(["gridpatrol", "serve", "--host", "127.0.0.1", "--port", str(HTTP_PORT),
                                      "--workers", str(WORKERS), "--threads", str(THREADS)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(120):
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"gridpatrol serve did not come up; see {self.log.name}")

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()

    @staticmethod
    def request(method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def token(self) -> str:
        status, data = self.request("POST", "/api/v1/auth/token",
                                    {"username": generate.BENCH_USER, "password": generate.BENCH_PASSWORD})
        if status != 200:
            raise RuntimeError(f"sign-in failed: {status} {data[:200]!r}")
        return json.loads(data)["access_token"]


def count(sql: str) -> int:
    with psycopg.connect(DSN) as c:
        return c.execute(sql).fetchone()[0]


def explain_cases_list(token_user_scope=generate.DISTRICTS) -> dict:
    """EXPLAIN ANALYZE of the page and count queries list_cases() sends for the HTTP filter used below."""
    from gridpatrol.cases import services as cases
    from gridpatrol.cases.models import Case
    from sqlalchemy import func, select
    from sqlalchemy.dialects import postgresql
    from types import SimpleNamespace
    user = SimpleNamespace(scope=list(token_user_scope))
    q = cases._filters(select(Case).where(cases.scoped(user)), CASES_FILTER_ARGS)
    page = q.order_by(Case.reported_at.desc(), Case.id.desc()).offset(0).limit(50)
    total = select(func.count()).select_from(q.subquery())

    def sql(stmt):
        return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    plans = {}
    with psycopg.connect(DSN) as c:
        for label, stmt in (("page", page), ("count", total)):
            text = sql(stmt)
            rows = c.execute("EXPLAIN (ANALYZE, BUFFERS) " + text).fetchall()
            plans[label] = {"sql": text, "plan": [r[0] for r in rows]}
    plans["seq_scan_on_cases"] = any("Seq Scan on cases" in line for p in ("page", "count") for line in plans[p]["plan"])
    return plans


CASES_FILTER_ARGS = {"status": ["registered", "reported"], "street": ["310202005"]}
CASES_FILTER_QUERY = "/api/v1/cases?status=registered,reported&street=310202005&per_page=50"


def fmt(r: dict, baseline: dict | None) -> str:
    ratio = f"{r['throughput_per_s'] / baseline['throughput_per_s']:7.1%}" if baseline else "      -"
    return (f"{r['name']:<28} {r['kind']:<8} {r['clients']:>3} {r['throughput_per_s']:>10.1f}/s "
            f"{r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f}  {ratio}"
            f"  {('vs ' + baseline['name']) if baseline else ''}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k cases and 10 s runs (full: 1M cases, 30 s runs)")
    ap.add_argument("--no-generate", action="store_true", help="reuse an existing gridpatrol_bench")
    ap.add_argument("--keep", action="store_true", help="keep gridpatrol_bench afterwards (default: drop it)")
    args = ap.parse_args(argv)
    seconds = 10 if args.quick else 30
    summary = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "mode": "quick" if args.quick else "full", "seconds_per_run": seconds, "cpus": os.cpu_count(),
               "loadavg_at_start": os.getloadavg(), "server": {"workers": WORKERS, "threads": THREADS},
               "results": {}}
    if not args.no_generate:
        summary["generate"] = generate.main(["--quick"] if args.quick else [])
    res = summary["results"]

    def run(r, baseline=None):
        res[r["name"]] = r
        print(fmt(r, res.get(baseline)), flush=True)

    print(f"\nload average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"gridpatrol serve --workers {WORKERS} --threads {THREADS}; wrk -t2 -c{CONNECTIONS}")
    print(f"\n{'measure':<28} {'kind':<8} {'c':>3} {'throughput':>12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
          f"  ratio", flush=True)
    subprocess.run(["pgbench", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-i", "-q", "-s", "10",
                    PG["db"]], check=True, capture_output=True)
    run(pgbench("pgbench_select_c1", ["-S"], 1, seconds))
    run(pgbench("pgbench_select_c8", ["-S"], 8, seconds), "pgbench_select_c1")
    run(pgbench("pgbench_locate_c1", ["-f", str(HERE / "pgbench" / "locate.sql")], 1, seconds),
        "pgbench_select_c1")
    run(pgbench("pgbench_locate_c8", ["-f", str(HERE / "pgbench" / "locate.sql")], 8, seconds),
        "pgbench_select_c8")
    run(pgbench("pgbench_report_c8", ["-f", str(HERE / "pgbench" / "report.sql")], 8, seconds))
    # the application's driver (psycopg 3) prepares a statement after 5 uses: the same pair, prepared
    run(pgbench("pgbench_select_c1_prepared", ["-S", "-M", "prepared"], 1, seconds), "pgbench_select_c1")
    run(pgbench("pgbench_locate_c1_prepared", ["-M", "prepared", "-f", str(HERE / "pgbench" / "locate.sql")], 1,
                seconds), "pgbench_select_c1_prepared")

    with Server() as server:
        token = server.token()
        wrk("warmup", "get.lua", 2, {"BENCH_PATH": "/healthz"})
        run(wrk("http_healthz", "get.lua", seconds, {"BENCH_PATH": "/healthz"}))
        before = count("SELECT count(*) FROM cases")
        r = wrk("http_post_reports", "report.lua", seconds, {"BENCH_TOKEN": token})
        r["rows_written"] = count("SELECT count(*) FROM cases") - before
        # requests still in flight when wrk stops are committed but not counted by wrk: up to one per connection
        r["rows_match_2xx"] = 0 <= r["rows_written"] - (r["requests"] - r["non_2xx"]) <= CONNECTIONS
        run(r, "pgbench_report_c8")
        print(f"{'':<28} vs http_healthz: {r['throughput_per_s'] / res['http_healthz']['throughput_per_s']:.1%};"
              f" cases written {r['rows_written']} for {r['requests'] - r['non_2xx']} 2xx"
              f" ({r['non_2xx']} non-2xx)", flush=True)
        run(wrk("http_grids_locate", "get.lua", seconds,
                {"BENCH_TOKEN": token, "BENCH_PATH": "/api/v1/grids/locate?lon={lon}&lat={lat}"}),
            "pgbench_locate_c8")
        run(wrk("http_cases_list", "get.lua", seconds, {"BENCH_TOKEN": token, "BENCH_PATH": CASES_FILTER_QUERY}),
            "http_healthz")
    res["http_cases_list"]["query"] = CASES_FILTER_QUERY
    summary["cases_list_explain"] = explain_cases_list()
    print(f"{'':<28} cases list EXPLAIN: seq scan on cases = {summary['cases_list_explain']['seq_scan_on_cases']}")

    print("\ntargets (issue 6)")
    summary["targets"] = []
    for target in TARGETS + EXTRA:
        label, measure, baseline, minimum = target
        ratio = res[measure]["throughput_per_s"] / res[baseline]["throughput_per_s"]
        ok, informative = ratio >= minimum, target in EXTRA
        summary["targets"].append({"target": label, "measure": measure, "baseline": baseline, "ratio": round(ratio, 4),
                                   "minimum": minimum, "pass": ok, "informative": informative})
        print(f"  {'PASS' if ok else 'FAIL'}  {label}: {ratio:.1%}{'  (informative)' if informative else ''}")
    summary["loadavg_at_end"] = os.getloadavg()

    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"summary-{stamp}.json", "summary-latest.json"):
        (out / name).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\nJSON summary: {out / f'summary-{stamp}.json'}")

    if not args.keep:
        with psycopg.connect(DSN.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS gridpatrol_bench WITH (FORCE)")
        print("dropped gridpatrol_bench")


if __name__ == "__main__":
    main()
