"""The case event log is append-only in the database, numbered without gaps, and hash-chained."""
import psycopg
import pytest

from gridpatrol.cli import verify_events
from helpers import libpq


@pytest.fixture
def conn(database_url):
    """A superuser connection to the test database, outside the app."""
    url = libpq(database_url)
    with psycopg.connect(url, autocommit=True) as c:
        yield c


@pytest.fixture
def case_with_history(district, make_user, make_team):
    """A case taken report → register → dispatch → accept → return → dispatch; returns its id."""
    code = district["code"]
    team = make_team(kind="enforcement", area_codes=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    handler = make_user("handler", scope=[code], teams=[team])
    lon, lat = district["point"](2)
    case_id = make_user("inspector", scope=[code]).report(lon=lon, lat=lat)["id"]
    dispatcher.act(case_id, "register")
    dispatcher.act(case_id, "dispatch", {"team_id": team})
    handler.act(case_id, "accept")
    handler.act(case_id, "return", {"reason_code": "other", "note": "wrong street"})
    dispatcher.act(case_id, "dispatch", {"team_id": team})
    return case_id


def verify(app):
    return app.test_cli_runner().invoke(verify_events)


@pytest.mark.parametrize("statement", [
    "UPDATE case_events SET payload = '{\"reason\": \"changed\"}' WHERE case_id = %(case)s",
    "UPDATE case_events SET to_status = 'closed' WHERE case_id = %(case)s AND seq = 1",
    "DELETE FROM case_events WHERE case_id = %(case)s",
    "DELETE FROM case_events WHERE case_id = %(case)s AND seq = 6",
    "TRUNCATE case_events CASCADE",  # CASCADE: the webhook outbox refers to events
])
def test_the_database_refuses_to_change_or_remove_events(conn, case_with_history, statement):
    before = conn.execute("SELECT id, seq, action, payload, hash FROM case_events WHERE case_id = %s ORDER BY seq",
                          (case_with_history,)).fetchall()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement, {"case": case_with_history})
    after = conn.execute("SELECT id, seq, action, payload, hash FROM case_events WHERE case_id = %s ORDER BY seq",
                         (case_with_history,)).fetchall()
    assert after == before and len(after) == 6


def test_seq_is_one_to_n_per_case_without_gaps(conn, case_with_history):
    rows = conn.execute("SELECT seq, action, prev_hash, hash FROM case_events WHERE case_id = %s ORDER BY id",
                        (case_with_history,)).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r[1] for r in rows] == ["report", "register", "dispatch", "accept", "return", "dispatch"]
    assert rows[0][2] is None
    assert all(rows[i][2] == rows[i - 1][3] for i in range(1, len(rows)))
    # and so for every case in the database
    gapped = conn.execute("""
        SELECT case_id FROM case_events GROUP BY case_id
        HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)""").fetchall()
    assert gapped == []


def test_the_database_numbers_and_chains_an_event_whatever_the_client_sends(conn, case_with_history):
    conn.execute("""INSERT INTO case_events (case_id, action, from_status, to_status, seq, prev_hash, hash)
                    VALUES (%s, 'escalate', 'dispatched', 'dispatched', 99, 'forged', 'forged')""",
                 (case_with_history,))
    last = conn.execute("SELECT seq, prev_hash, hash FROM case_events WHERE case_id = %s ORDER BY seq DESC LIMIT 1",
                        (case_with_history,)).fetchone()
    previous = conn.execute("SELECT hash FROM case_events WHERE case_id = %s AND seq = 6",
                            (case_with_history,)).fetchone()
    assert last[0] == 7 and last[1] == previous[0] and last[2] not in ("forged", previous[0])


def test_the_hash_chain_verifies(app, case_with_history, conn):
    result = verify(app)
    assert result.exit_code == 0, result.output
    total = conn.execute("SELECT count(*) FROM case_events").fetchone()[0]
    assert result.output.strip() == f"{total} events, every chain intact"


@pytest.mark.parametrize("column,value", [("payload", '{"team_id": 1}'), ("actor_id", None), ("to_status", "closed")])
def test_a_row_changed_behind_the_applications_back_is_named(app, conn, case_with_history, column, value):
    event_id, seq, original = conn.execute(
        f"SELECT id, seq, {column} FROM case_events WHERE case_id = %s AND seq = 3", (case_with_history,)).fetchone()

    def set_value(v):
        conn.execute("ALTER TABLE case_events DISABLE TRIGGER case_events_no_update")
        try:
            conn.execute(f"UPDATE case_events SET {column} = %s WHERE id = %s", (v, event_id))
        finally:
            conn.execute("ALTER TABLE case_events ENABLE TRIGGER case_events_no_update")

    set_value(value)
    try:
        result = verify(app)
        assert result.exit_code == 1, result.output
        assert f"event {event_id} (case {case_with_history}, seq {seq}) does not match its chain" in result.output
        named = [line for line in result.output.splitlines() if "does not match" in line]
        assert named == [f"event {event_id} (case {case_with_history}, seq {seq}) does not match its chain"]
    finally:
        set_value(original if column != "payload" else psycopg.types.json.Jsonb(original))
    # put back as it was, the chain verifies again
    result = verify(app)
    assert result.exit_code == 0, result.output
