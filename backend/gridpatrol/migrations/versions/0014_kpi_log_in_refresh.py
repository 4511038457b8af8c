"""kpi_facts_log written by the statements that change the facts

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 16:00:00

"""
from pathlib import Path

from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# A report's commit refreshes its case's facts (a DELETE and an INSERT of kpi_facts), and each of the
# two statements fired a statement trigger that copied its transition table into the log: two more
# function calls and tuplestores per report, even when the DELETE found nothing. The refresh now writes
# the log itself in the same two statements (DELETE/INSERT ... RETURNING into the log), and the log loses
# its identity key (nothing reads rows by it: the compaction takes the whole log, the reads all of it).
# The calendar's recount of handling hours (an UPDATE of many facts, rare) keeps its statement trigger.
# `kpi_facts_rebuild(lo, hi)` writes the log too (a repair of some cases keeps the sums right);
# `gridpatrol kpis rebuild` passes `logged => false`: it sums every day again afterwards.
# Cases are never deleted (their log is the audit record); were one deleted, the cascade to its facts
# would not reach the daily sums until `gridpatrol kpis rebuild`.
UPGRADE = """
DROP TRIGGER kpi_facts_log_insert ON kpi_facts;
DROP TRIGGER kpi_facts_log_delete ON kpi_facts;
ALTER TABLE kpi_facts_log DROP COLUMN seq;

CREATE OR REPLACE FUNCTION kpi_facts_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO kpi_facts_log SELECT -1, o.* FROM old_rows o;
  INSERT INTO kpi_facts_log SELECT 1, n.* FROM new_rows n;
  RETURN NULL;
END $$;
DROP FUNCTION kpi_facts_rebuild(bigint, bigint);
CREATE FUNCTION kpi_facts_rebuild(lo bigint, hi bigint, logged boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  -- the workflow writes a case under FOR UPDATE: wait for those writing now, keep others out meanwhile
  PERFORM 1 FROM cases WHERE id BETWEEN lo AND hi FOR SHARE;
  IF logged THEN
    WITH gone AS (DELETE FROM kpi_facts WHERE case_id BETWEEN lo AND hi RETURNING *)
    INSERT INTO kpi_facts_log SELECT -1, gone.* FROM gone;
    WITH kept AS (INSERT INTO kpi_facts
                  SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases WHERE id BETWEEN lo AND hi), 'infinity')
                  RETURNING *)
    INSERT INTO kpi_facts_log SELECT 1, kept.* FROM kept;
  ELSE
    DELETE FROM kpi_facts WHERE case_id BETWEEN lo AND hi;
    INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases WHERE id BETWEEN lo AND hi),
                                                       'infinity');
  END IF;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
"""

DOWNGRADE = """
ALTER TABLE kpi_facts_log ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE TRIGGER kpi_facts_log_insert AFTER INSERT ON kpi_facts REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
CREATE TRIGGER kpi_facts_log_delete AFTER DELETE ON kpi_facts REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
"""


PLAIN = """  DELETE FROM kpi_facts WHERE case_id = id;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY[id], 'infinity');"""
LOGGED = """  -- each change of the facts goes to the log for the daily sums (migration 0011) in the same statement
  WITH gone AS (DELETE FROM kpi_facts WHERE case_id = id RETURNING *)
  INSERT INTO kpi_facts_log SELECT -1, gone.* FROM gone;
  WITH kept AS (INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY[id], 'infinity') RETURNING *)
  INSERT INTO kpi_facts_log SELECT 1, kept.* FROM kept;"""


def _earlier(name: str, start: str, end: str) -> str:
    """The SQL from `start` to the end of the line `end` (first after it) in migration `name`'s module text."""
    text = (Path(__file__).with_name(name)).read_text()
    i = text.index(start)
    j = text.index(end, i) + len(end)
    return text[i:j].replace(start, start.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"), 1)


def _refresh() -> str:
    """Migration 0009's refresh (its facts written without a log)."""
    sql = _earlier("0009_kpi_facts.py", "CREATE FUNCTION kpi_facts_refresh()", "END $$;\n")
    assert PLAIN in sql
    return sql


def upgrade():
    op.execute(UPGRADE + _refresh().replace(PLAIN, LOGGED))


def downgrade():
    op.execute("DROP FUNCTION kpi_facts_rebuild(bigint, bigint, boolean);\n"
               + _earlier("0009_kpi_facts.py", "CREATE FUNCTION kpi_facts_rebuild(", "END $$;\n")
               + _refresh() + _earlier("0011_kpi_daily.py", "CREATE FUNCTION kpi_facts_log()", "END $$;\n")
               + DOWNGRADE)
