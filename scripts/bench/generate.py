"""Fill a fresh gridpatrol_bench database: 100,000 unit grids and 1M (--quick), 10M (default) or N cases.

Usage: python scripts/bench/generate.py [--quick | --cases N] [--dsn postgresql://postgres@127.0.0.1:54329/gridpatrol_bench]

The database is dropped and re-created, migrated with `gridpatrol db upgrade`, given the catalog and
calendar through the product's own loaders, one inspector account, then grids, cases and events
made set-based in SQL (INSERT ... SELECT generate_series). Cases and events go in without row triggers
(what they keep is counted afterwards by the product's own functions, and each event's hash chain is
worked out with case_event_hash, which the chain trigger calls), and the indexes of every row are made
after the rows, one sorted build each instead of an update per row and index.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
SQL = Path(__file__).resolve().parent / "sql"
BENCH_USER, BENCH_PASSWORD = "bench", "Bench-pass-2026"
DISTRICTS = ["310201", "310202", "310203", "310204"]


def step(label, fn, timings):
    t = time.perf_counter()
    fn()
    timings[label] = round(time.perf_counter() - t, 2)
    print(f"  {label:<28} {timings[label]:8.2f} s", flush=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1M cases instead of 10M")
    ap.add_argument("--cases", type=int, help="this many cases (overrides --quick)")
    ap.add_argument("--dsn", default=os.environ.get(
        "BENCH_DSN", f"postgresql://postgres@127.0.0.1:{os.environ.get('BENCH_PGPORT', '54329')}/gridpatrol_bench"))
    args = ap.parse_args(argv)
    n_cases = args.cases or (1_000_000 if args.quick else 10_000_000)
    dbname = args.dsn.rsplit("/", 1)[1]
    if dbname != "gridpatrol_bench" and not dbname.startswith("gridpatrol_bench_"):
        sys.exit("refusing: the bench database must be named gridpatrol_bench or gridpatrol_bench_<suffix>")
    admin_dsn = args.dsn.rsplit("/", 1)[0] + "/postgres"
    timings = {}

    def recreate():
        with psycopg.connect(admin_dsn, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{dbname}"')

    env = {**os.environ, "DATABASE_URL": args.dsn.replace("postgresql://", "postgresql+psycopg://", 1)}

    def migrate():
        done = subprocess.run(["gridpatrol", "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"gridpatrol db upgrade failed:\n{done.stderr}")

    def reference():
        code = (
            "import json, pathlib\n"
            "from gridpatrol import create_app\n"
            "from gridpatrol.catalog import services as catalog\n"
            "from gridpatrol.extensions import db\n"
            f"g = pathlib.Path({str(ROOT / 'geodata')!r})\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    catalog.load_catalog(json.loads((g / 'catalog.json').read_text()))\n"
            "    catalog.load_calendar(json.loads((g / 'calendar.json').read_text()))\n"
            "    db.session.commit()\n")
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)

    def areas_and_grids():
        with psycopg.connect(args.dsn) as c:
            c.execute((SQL / "grids.sql").read_text())

    def user():
        subprocess.run(["gridpatrol", "create-user", "--username", BENCH_USER, "--password", BENCH_PASSWORD,
                        "--role", "inspector", "--role", "dispatcher", "--display-name", "Bench inspector", *sum((["--scope", d] for d in DISTRICTS), [])],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def loading(c):
        """A loading transaction on `c`: no row triggers (the foreign keys' checks among them: the rows
        are made from the rows they name), sorts and temporary tables in memory."""
        c.execute("SET temp_buffers = '2GB'")
        c.execute("SET work_mem = '1GB'")
        c.execute("SET maintenance_work_mem = '1GB'")
        c.execute("SET LOCAL session_replication_role = replica")

    def indexed_after(c, table, sql):
        """`sql` run without `table`'s indexes of every row (not a constraint's own), which are made again
        afterwards from their definitions. The partial indexes on open cases (a tenth of the rows) stay: a
        predicate's definition made again is not the migration's expression (PostgreSQL's text of
        `status IN (…)` parses back to another form); those on `column IS NOT NULL` (a team's cases: most
        of the rows; the extension queue's) read back as written, and are made again like the others."""
        indexes = c.execute(r"""
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
            WHERE i.indrelid = %s::regclass
              AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) ~ '^\(\w+ IS NOT NULL\)$')
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            ORDER BY 1""", (table,)).fetchall()
        for name, _ in indexes:
            c.execute(f"DROP INDEX {name}")
        c.execute(sql)
        for _, ddl in indexes:
            c.execute(ddl)

    def cases():
        with psycopg.connect(args.dsn) as c:
            loading(c)
            indexed_after(c, "cases", (SQL / "cases.sql").read_text().replace(":n_cases", str(n_cases)))
            # the case counts (migration 0016) and each grid's open cases (0020), which the insert
            # triggers keep, counted once (with the triggers back)
            c.execute("SET LOCAL session_replication_role = origin")
            c.execute("SELECT case_counts_recount(), grid_open_cases_recount()")

    def events():
        with psycopg.connect(args.dsn) as c:
            loading(c)
            indexed_after(c, "case_events", (SQL / "events.sql").read_text())

    def kpi_facts():
        # statistics of the freshly loaded tables first: with none, a batch of the rebuild was once
        # planned in parallel over the whole event log and ran for 27 minutes instead of ~8 s
        with psycopg.connect(args.dsn, autocommit=True) as c:
            c.execute("ANALYZE cases, case_events")
        # the product's own repair command, 100,000 cases a transaction, on two connections (two cores)
        subprocess.run(["gridpatrol", "kpis", "rebuild", "--jobs", "2"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)

    def analyze():
        with psycopg.connect(args.dsn, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")

    print(f"generating {dbname}: 100000 grids, {n_cases} cases", flush=True)
    for label, fn in (("create database", recreate), ("gridpatrol db upgrade", migrate),
                      ("catalog + calendar", reference), ("admin areas + grids", areas_and_grids),
                      ("bench user", user), ("cases", cases), ("events", events),
                      ("KPI facts", kpi_facts),
                      ("vacuum analyze", analyze)):
        step(label, fn, timings)
    with psycopg.connect(args.dsn) as c:
        counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("admin_areas", "grids", "cases", "case_events", "kpi_facts")}
        counts["open_cases"] = c.execute(
            "SELECT count(*) FROM cases WHERE status NOT IN ('closed','rejected','merged')").fetchone()[0]
        counts["vertices_min_max"] = list(c.execute(
            "SELECT min(ST_NPoints(geom)), max(ST_NPoints(geom)) FROM grids").fetchone())
        counts["invalid_grids"] = c.execute("SELECT count(*) FROM grids WHERE NOT ST_IsValid(geom)").fetchone()[0]
    print("  " + json.dumps(counts), flush=True)
    return {"timings_s": timings, "counts": counts, "n_cases": n_cases}


if __name__ == "__main__":
    main()
