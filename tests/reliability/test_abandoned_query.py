"""A statement whose server process is gone is stopped by the database within seconds, not left to
run its course (a slow read, such as KPIs worked out from the event log, of a worker that was
killed or restarted would otherwise hold a database core for minutes)."""
import signal
import subprocess
import sys
import textwrap
import time

import psycopg

from helpers import libpq


def _running(admin, marker: str) -> list:
    return admin.execute("SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s",
                         (marker,)).fetchall()


def test_the_statement_of_a_killed_server_process_is_cancelled(app, app_database_url, database_url):
    marker = f"abandoned-{time.time_ns()}"
    # the application's own engine (its connection settings), as a server worker uses it
    code = textwrap.dedent(f"""
        import os
        os.environ["DATABASE_URL"] = {app_database_url!r}
        from sqlalchemy import text
        from gridpatrol import create_app
        from gridpatrol.extensions import db
        with create_app().app_context():
            db.session.execute(text("SELECT set_config('application_name', '{marker}', false)"))
            db.session.execute(text("SELECT pg_sleep(120)"))
    """)
    child = subprocess.Popen([sys.executable, "-c", code])
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        try:
            deadline = time.monotonic() + 60
            while not any("pg_sleep" in q and s == "active" for _, s, q in _running(admin, marker)):
                assert child.poll() is None and time.monotonic() < deadline, "the statement never started"
                time.sleep(0.1)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        killed = time.monotonic()
        while _running(admin, marker) and time.monotonic() < killed + 30:
            time.sleep(0.1)
        left = _running(admin, marker)
        print(f"[abandoned statement] pg_sleep(120) of a killed process: still running after "
              f"{time.monotonic() - killed:.1f} s: {bool(left)}")
        assert left == [], "the database kept running the statement of a process that is gone"
