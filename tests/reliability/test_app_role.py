"""Item 7: the application's database role cannot change the event log (UPDATE, DELETE, TRUNCATE are
refused by privilege, before any trigger), and a row changed by a superuser is found by the hash chain.

The app serves as the role `gridpatrol db app-role` makes (tests/conftest.py: the in-process app and
the live server both); the schema's owner (TEST_DATABASE_URL) only migrates."""
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridpatrol.cli import app_role, verify_events
from helpers import libpq

REFUSED = [
    "UPDATE case_events SET payload = '{\"reason\": \"changed\"}' WHERE case_id = %(case)s",
    "UPDATE case_events SET to_status = 'closed' WHERE case_id = %(case)s AND seq = 1",
    "DELETE FROM case_events WHERE case_id = %(case)s",
    "DELETE FROM case_events WHERE case_id = %(case)s AND seq = 3",
    "TRUNCATE case_events",
    "TRUNCATE case_events CASCADE",
]


@pytest.fixture
def as_app(app_database_url):
    """A connection as the application's role, outside the app."""
    with psycopg.connect(libpq(app_database_url), autocommit=True) as c:
        yield c


@pytest.fixture
def as_owner(database_url):
    """A connection as the schema's owner (a superuser in the tests)."""
    with psycopg.connect(libpq(database_url), autocommit=True) as c:
        yield c


@pytest.fixture
def role(app_database_url):
    return make_url(app_database_url).username


@pytest.fixture(scope="module")
def owner_cli(database_url):
    """invoke(command, args): a `gridpatrol` command run as the schema's owner (as `gridpatrol db …` is)."""
    from gridpatrol import create_app
    from gridpatrol.extensions import db

    owner_app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    yield lambda command, args: owner_app.test_cli_runner().invoke(command, args)
    with owner_app.app_context():
        db.engine.dispose()


@pytest.fixture
def case_with_history(district, make_user, make_team):
    """A case taken report → register → dispatch → accept, through the API; returns its id."""
    code = district["code"]
    team = make_team(kind="enforcement", area_codes=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    handler = make_user("handler", scope=[code], teams=[team])
    lon, lat = district["point"](4)
    case_id = make_user("inspector", scope=[code]).report(lon=lon, lat=lat)["id"]
    dispatcher.act(case_id, "register")
    dispatcher.act(case_id, "dispatch", {"team_id": team})
    handler.act(case_id, "accept")
    return case_id


def _events(conn, case_id):
    return conn.execute("SELECT id, seq, action, to_status, payload, hash FROM case_events WHERE case_id = %s "
                        "ORDER BY seq", (case_id,)).fetchall()


def test_the_app_and_the_live_server_connect_as_the_restricted_role(app, live_server, role, as_owner):
    import requests

    from gridpatrol.extensions import db
    with app.app_context():
        who = db.session.execute(text("SELECT current_user, usesuper FROM pg_user WHERE usename = current_user")).one()
    assert requests.get(live_server + "/healthz", timeout=10).status_code == 200
    live = as_owner.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'gridpatrol-live' "
                            "AND datname = current_database()").fetchall()
    attrs = as_owner.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolcanlogin FROM pg_roles "
                             "WHERE rolname = %s", (role,)).fetchone()
    owned = as_owner.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                             "WHERE r.rolname = %s", (role,)).fetchone()[0]
    print(f"\n[app role] in-process app as {who[0]} (superuser {who[1]}), live server as {[r[0] for r in live]}, "
          f"role attributes super/createdb/createrole/bypassrls/login={attrs}, relations owned={owned}")
    assert tuple(who) == (role, False)
    assert [r[0] for r in live] == [role]
    assert attrs == (False, False, False, False, True)
    assert owned == 0


@pytest.mark.parametrize("statement", REFUSED)
def test_the_app_role_may_not_change_or_remove_events(as_app, case_with_history, statement):
    before = _events(as_app, case_with_history)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        as_app.execute(statement, {"case": case_with_history})
    after = _events(as_app, case_with_history)
    print(f"\n[app role] {statement.split(' WHERE')[0]!r}: SQLSTATE {refused.value.sqlstate} "
          f"{str(refused.value).strip()!r}; events before/after {len(before)}/{len(after)}")
    assert refused.value.sqlstate == "42501"
    # refused by the privilege system, not (only) by the append-only trigger
    assert "permission denied for table case_events" in str(refused.value)
    assert after == before and len(after) == 4


def test_the_app_role_may_not_switch_the_triggers_off_or_change_the_schema(as_app, case_with_history):
    refused = {}
    for statement in ("SET session_replication_role = replica",
                      "ALTER TABLE case_events DISABLE TRIGGER case_events_no_update",
                      "DROP TRIGGER case_events_no_update ON case_events",
                      "ALTER TABLE cases ADD COLUMN x int",
                      "CREATE TABLE app_made (id int)",
                      "DROP TABLE case_events"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
            as_app.execute(statement)
        refused[statement] = exc.value.sqlstate
    print("\n[app role] refused: " + "; ".join(f"{s.split(' ')[0]} {s.split(' ')[1]}…={c}" for s, c in refused.items()))
    # a grant it has no option to give is no grant (PostgreSQL only warns)
    as_app.execute("GRANT UPDATE, DELETE, TRUNCATE ON case_events TO PUBLIC")
    rights = as_app.execute("SELECT has_table_privilege(current_user, 'case_events', 'UPDATE, DELETE, TRUNCATE'), "
                            "has_table_privilege(current_user, 'case_events', 'INSERT')").fetchone()
    assert set(refused.values()) == {"42501"}
    assert rights == (False, True)


def test_the_grants_are_rows_only_on_every_table_and_append_only_on_the_event_log(as_owner, role):
    tables = [r[0] for r in as_owner.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'spatial_ref_sys' ORDER BY 1""")]
    rights = {}
    for table in tables:
        rights[table] = {p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
                         if as_owner.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, p)).fetchone()[0]}
    sequences = {r[0]: r[1:] for r in as_owner.execute("""
        SELECT c.relname, has_sequence_privilege(%s, c.oid, 'USAGE'), has_sequence_privilege(%s, c.oid, 'UPDATE')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'S'""",
        (role, role))}
    create = as_owner.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)).fetchone()[0]
    print(f"\n[app role] {len(tables)} tables: case_events={sorted(rights['case_events'])}, "
          f"alembic_version={sorted(rights['alembic_version'])}, others rows-only="
          f"{sum(r == {'SELECT', 'INSERT', 'UPDATE', 'DELETE'} for r in rights.values())}; "
          f"{len(sequences)} sequences usable={sum(u for u, _ in sequences.values())}; CREATE on schema={create}")
    assert rights.pop("case_events") == {"SELECT", "INSERT"}
    assert rights.pop("alembic_version") == {"SELECT"}
    assert {t: r for t, r in rights.items() if r != {"SELECT", "INSERT", "UPDATE", "DELETE"}} == {}
    assert {"cases", "users", "tokens", "photos"} <= set(rights)
    assert sequences and all(usage and not update for usage, update in sequences.values())
    assert not create


def test_a_table_a_later_migration_creates_is_granted_and_the_command_is_rerunnable(as_owner, as_app, role,
                                                                                     owner_cli):
    table = "later_outbox_probe"
    as_owner.execute(f"DROP TABLE IF EXISTS {table}")
    # what a later migration does, as the owner, after the role was made
    as_owner.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body text NOT NULL)")
    try:
        as_app.execute(f"INSERT INTO {table} (body) VALUES ('queued')")
        as_app.execute(f"UPDATE {table} SET body = 'sent'")
        seen = as_app.execute(f"SELECT body FROM {table}").fetchall()
        as_app.execute(f"DELETE FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_app.execute(f"TRUNCATE {table}")

        again = owner_cli(app_role, [role])
        print(f"\n[app role] a table made after the role: rows {seen}; truncate refused; re-run: {again.output.strip()}")
        assert seen == [("sent",)]
        assert again.exit_code == 0, again.output
        assert f"role {role}: updated" in again.output and "case_events append-only" in again.output
        assert as_app.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        # still append-only after the re-grant
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_app.execute("DELETE FROM case_events WHERE false")
    finally:
        as_owner.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("name", ["postgres", "Robert'); DROP TABLE cases;--"])
def test_the_command_refuses_a_superuser_or_a_strange_name(owner_cli, as_owner, name):
    result = owner_cli(app_role, [name])
    assert as_owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").fetchone() == (True,)
    assert as_owner.execute("SELECT to_regclass('cases') IS NOT NULL").fetchone() == (True,)
    assert result.exit_code != 0
    assert "superuser" in result.output or "role running the command" in result.output or "not a role name" in result.output


def test_a_row_changed_by_a_superuser_with_triggers_bypassed_is_found(app, as_owner, case_with_history):
    event_id, seq, payload = as_owner.execute(
        "SELECT id, seq, payload FROM case_events WHERE case_id = %s AND seq = 3", (case_with_history,)).fetchone()

    def overwrite(value):
        with as_owner.transaction():
            as_owner.execute("SET LOCAL session_replication_role = replica")  # ordinary triggers do not fire
            as_owner.execute("UPDATE case_events SET payload = %s WHERE id = %s",
                             (psycopg.types.json.Jsonb(value), event_id))

    overwrite({**payload, "team_id": -1})
    changed = as_owner.execute("SELECT payload FROM case_events WHERE id = %s", (event_id,)).fetchone()[0]
    try:
        found = app.test_cli_runner().invoke(verify_events)
    finally:
        overwrite(payload)
    intact = app.test_cli_runner().invoke(verify_events)
    named = [line for line in found.output.splitlines() if "does not match" in line]
    print(f"\n[app role] superuser UPDATE with session_replication_role=replica: stored={changed['team_id']}; "
          f"verifier exit {found.exit_code}: {named}; after putting it back exit {intact.exit_code}")
    assert changed["team_id"] == -1
    assert found.exit_code == 1
    assert named == [f"event {event_id} (case {case_with_history}, seq {seq}) does not match its chain"]
    assert intact.exit_code == 0, intact.output
