"""The bench's generated city (scripts/bench/generate.py) is data the product serves as it serves its own:
the paths the bench times answer 2xx on it, so no figure is the speed of an error. (Generated open
cases once had a stage deadline without its start: eight of the nine list filters answered 500, and
were timed.) A small city: the 100,000 grids, 4,000 cases with their events and KPI facts. Every
one-client measure is asked (all its paths up to 12: every list filter and KPI read, a sample of the
198 tiles and the 200 duplicate searches), and the load measures' own requests once each."""
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"
sys.path.insert(0, str(BENCH))
import bench  # noqa: E402
import generate  # noqa: E402
import openloop  # noqa: E402
from helpers import FACTS_DIFFERENCE_SQL, free_port, libpq, sent_statements  # noqa: E402
from gridpatrol.cli import verify_events  # noqa: E402


@pytest.fixture(scope="module")
def city(database_url):
    url = make_url(database_url)
    # one per test database (checkouts sharing a cluster keep theirs); the generator takes no other name
    dsn = url.set(drivername="postgresql", database=f"gridpatrol_bench_{url.database}").render_as_string(
        hide_password=False)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        done = subprocess.run([sys.executable, str(BENCH / "generate.py"), "--cases", "4000", "--dsn", dsn],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        from gridpatrol import create_app
        from gridpatrol.extensions import db
        app = create_app({"SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                          "TESTING": True})
        yield app, dsn
        with app.app_context():
            db.engine.dispose()
    finally:  # also when the generator failed
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{make_url(dsn).database}" WITH (FORCE)')


def _bench_token(client) -> str:
    """The bench inspector signed in, as the bench signs in."""
    r = client.post("/api/v1/auth/token", json={"username": generate.BENCH_USER, "password": generate.BENCH_PASSWORD})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["access_token"]


def test_every_path_the_bench_times_answers_2xx(city):
    app, dsn = city
    client = app.test_client()
    headers = {"Authorization": f"Bearer {_bench_token(client)}", "Accept-Encoding": "gzip"}
    reads = bench.single_client_reads(dsn)
    assert set(reads) >= {"http1_cases_list_filters", "http1_tile_grids_z14", "http1_duplicates",
                          "http1_kpis_team_30d", "http1_kpis_trend_all_raw"}
    answers = {}
    for name, paths in reads.items():
        assert paths, name
        for path in paths[:12]:  # every list filter; a sample of the 198 tiles and the 200 duplicates
            answers[path] = client.get(path, headers=headers).status_code
    # the load measures' own requests: the first list filter, a lookup inside the lattice, and a report as
    # the constant-rate client sends it (wrk's report.lua sends the same body)
    answers[bench.CASES_FILTER_QUERY] = client.get(bench.CASES_FILTER_QUERY, headers=headers).status_code
    answers["locate"] = client.get("/api/v1/grids/locate?lon=121.05&lat=31.05", headers=headers).status_code
    method, path, body, more = openloop.report_request(0, random.Random(6))
    answers["report"] = client.open(path, method=method, data=body, headers={**headers, **more}).status_code
    assert {p: s for p, s in answers.items() if not 200 <= s < 300} == {}
    assert len(answers) >= 60
    # the list filters find cases: a filter that matches nothing measures an empty page
    plain = {"Authorization": headers["Authorization"]}
    found = [client.get(p, headers=plain).get_json()["total"] for p in reads["http1_cases_list_filters"]]
    assert sum(1 for n in found if n > 0) >= 5, found


def test_the_city_is_loaded_as_the_product_keeps_its_data(city, app, database_url):
    """The generator loads cases and events without row triggers and makes their indexes afterwards: the
    result has what the triggers and constraints would have given it (compared with the test database,
    which `app` migrates)."""
    city_app, dsn = city
    done = city_app.test_cli_runner().invoke(verify_events)
    assert done.exit_code == 0, done.output
    assert "every chain intact" in done.output
    with psycopg.connect(dsn) as conn:  # which a chain without hashes would pass: each chain is whole too
        assert conn.execute("""
            SELECT count(*) FROM (SELECT e.*, row_number() OVER (PARTITION BY case_id ORDER BY seq) AS n
                                  FROM case_events e) x
            WHERE hash IS NULL OR (prev_hash IS NULL) <> (seq = 1) OR seq <> n""").fetchone()[0] == 0
    migrated = libpq(database_url)
    shape = """SELECT c.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
               WHERE c.relname IN ('cases', 'case_events') ORDER BY 1, 2"""
    triggers = """SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger
                  WHERE tgrelid IN ('cases'::regclass, 'case_events'::regclass) AND NOT tgisinternal ORDER BY 1, 2"""
    with psycopg.connect(migrated) as conn:
        indexes, enabled = conn.execute(shape).fetchall(), conn.execute(triggers).fetchall()
    with psycopg.connect(dsn) as conn:
        assert conn.execute(shape).fetchall() == indexes  # every index as the migrations made it
        assert conn.execute(triggers).fetchall() == enabled
        assert {state for _, _, state in enabled} == {"O"}
        # every foreign key of the two tables holds (their checks are row triggers too)
        keys = conn.execute("""
            SELECT k.conrelid::regclass::text, a.attname, k.confrelid::regclass::text, b.attname
            FROM pg_constraint k
            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
            JOIN pg_attribute b ON b.attrelid = k.confrelid AND b.attnum = k.confkey[1]
            WHERE k.contype = 'f' AND k.conrelid IN ('cases'::regclass, 'case_events'::regclass)
              AND cardinality(k.conkey) = 1""").fetchall()
        assert {(t, c) for t, c, _, _ in keys} >= {("case_events", "case_id"), ("cases", "reporter_id"),
                                                   ("cases", "lead_team_id"), ("cases", "category_code")}
        broken = {(t, c): conn.execute(f"SELECT count(*) FROM {t} x WHERE x.{c} IS NOT NULL AND NOT EXISTS "
                                       f"(SELECT 1 FROM {rt} r WHERE r.{rc} = x.{c})").fetchone()[0]
                  for t, c, rt, rc in keys}
        assert set(broken.values()) == {0}, broken
        # what the insert triggers keep: the kept facts, the list's counts, the map's open cases per grid
        assert conn.execute(FACTS_DIFFERENCE_SQL).fetchone() == (0, 0)
        assert conn.execute("SELECT count(*) FROM kpi_facts").fetchone()[0] >= 4000
        counts = ("SELECT (SELECT array_agg(t ORDER BY t::text) FROM case_counts t), "
                  "(SELECT array_agg(t ORDER BY t::text) FROM grid_open_cases t)")
        kept = conn.execute(counts).fetchone()
        conn.execute("SELECT case_counts_recount(), grid_open_cases_recount()")
        assert conn.execute(counts).fetchone() == kept and kept[0] and kept[1]
        conn.rollback()
    # the generated events in time order, as a live system appends them, none ahead of now (the other test
    # adds a report)
    with psycopg.connect(dsn) as conn:
        back, generated = conn.execute("""
            SELECT count(*) FILTER (WHERE back), count(*) FROM (
                SELECT e.at < lag(e.at) OVER (ORDER BY e.id) AS back FROM case_events e
                JOIN cases c ON c.id = e.case_id WHERE c.description LIKE 'bench case %') x""").fetchone()
        assert (back, generated >= 4000 * 3) == (0, True)
        assert conn.execute("SELECT count(*) FROM case_events WHERE at > now()").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM cases WHERE status = 'closed' AND closed_at > now()"
                            ).fetchone()[0] == 0


def test_a_load_generator_of_ones_own_is_counted_by_rows_written(city):
    """scripts/bench/serve serves the city for another load generator: the request it prints is one the
    product takes, and when stopped it counts the reports written, not the requests answered."""
    _, dsn = city
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "WORKERS": "1", "THREADS": "2"}
    proc = subprocess.Popen([sys.executable, str(BENCH / "serve.py"), "--dsn", dsn, "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(printed)
        token = re.search(r"^token (\S+)$", text, re.M)
        request = re.search(rf"curl -i http://127.0.0.1:{port}(\S+) .*?-d '([^']+)'", text, re.S)
        assert token and request, text
        path, body = request.group(1), json.loads(request.group(2))
        served = bench.Server(dsn, port)

        def post(key, data=body):
            return served.request("POST", path, data, {"Authorization": f"Bearer {token.group(1)}",
                                                       "Idempotency-Key": key})[0]

        statuses = [post(f"own-{i}") for i in range(4)]
        statuses.append(post("own-0"))  # the same key again: the first answer, nothing written
        statuses.append(post("own-bad", {**body, "lat": 95}))  # refused
        assert statuses[:4] == [201] * 4 and statuses[4] in (200, 201) and statuses[5] in (400, 422), statuses
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, text + rest
    counted = json.loads(rest.strip().splitlines()[-1])
    assert (counted["reports"], counted["events"]) == (4, 4), rest
    assert "4 reports written (4 events)" in rest and counted["reports_per_s"] > 0
    # and served with nothing sent, nothing is counted (the bench inspector's earlier reports are not)
    idle = subprocess.run([sys.executable, str(BENCH / "serve.py"), "--dsn", dsn, "--port", str(free_port()),
                           "--seconds", "0.5"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert json.loads(idle.stdout.strip().splitlines()[-1])["reports"] == 0, idle.stdout


def _script_statements(path: Path) -> list[str]:
    """A pgbench script's SQL statements, whitespace collapsed: no comments, meta-commands, BEGIN or COMMIT."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith(("--", "\\")))
    parts = (" ".join(p.split()) for p in text.replace("\\gset g_", ";").split(";"))
    return [p for p in parts if p and p not in ("BEGIN", "COMMIT")]


# What stands in a pgbench script where the app binds a parameter: a variable, a literal, or one of the
# few expressions the script makes a value with. Never a clause: a column, condition or subquery added
# on either side does not match.
_VALUE = "|".join([
    r":\w+(?:::\w+)?", r"'[^']*'(?:::\w+)?", r"-?\d+(?:\.\d+)?", r"NULL(?:::\w+)?", r"true|false", r"now\(\)",
    r"'[^']*'(?: \|\| (?::\w+|'[^']*'|txid_current\(\)))+",  # the idempotency key
    r"md5\(random\(\)::text\) \|\| md5\(random\(\)::text\)",  # the request's hash
    r"\d+\.\d+ \+ :\w+ \* 1e-8",  # a coordinate
    r"ARRAY\['[^']*'(?:, '[^']*')*\]",  # the scope's patterns
    r"to_char\(now\(\), 'YYYYMMDD'\)", r"now\(\) \+ interval '[^']*'",
    r"jsonb_build_object\('text', repeat\('x', \d+\), 'headers', '\{\}'::jsonb\)",  # an answer of its size
])


def _as_pattern(statement: str) -> re.Pattern:
    """The app's statement with a value where it binds each parameter."""
    pieces = re.split(r"%\(\w+\)s", " ".join(statement.replace("%%", "%").split()))
    return re.compile(f"(?:{_VALUE})".join(re.escape(piece) for piece in pieces))


def test_the_report_sql_pgbench_runs_is_the_sql_the_report_sends(city):
    """Target 1's baseline is pgbench running the report's own SQL, and target 3 measures the lookup
    alone: the statements of pgbench/report.sql and locate.sql are those the app sends for a report
    (after reading the caller's token), values standing where it binds parameters. (report.sql once
    kept a grid lookup the app had replaced.)"""
    app, _ = city
    client = app.test_client()
    token = _bench_token(client)
    for i in range(2):  # the second as every later one: nothing left to read once per process
        with sent_statements(app) as statements:
            method, path, body, more = openloop.report_request(i, random.Random(i))
            r = client.open(path, method=method, data=body, headers={"Authorization": f"Bearer {token}", **more})
            assert r.status_code == 201, r.get_json()
    sent = [statement for statement, _ in statements]
    assert "FROM tokens t JOIN users u" in sent[0]
    script = _script_statements(BENCH / "pgbench" / "report.sql")
    assert len(script) == len(sent) - 1 == 4, (script, sent)
    for statement, ours in zip(sent[1:], script):
        assert _as_pattern(statement).fullmatch(ours), (statement, ours)
    assert "grid_at(" in sent[2]
    assert [bool(_as_pattern(sent[2]).fullmatch(s)) for s in _script_statements(BENCH / "pgbench" / "locate.sql")] == [True]
