"""kpi_facts_log written by the statements that change the facts

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 16:00:00

"""
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
# `kpi_facts_rebuild(lo, hi, logged)` writes the log when asked (a repair of some cases); `gridpatrol kpis
# rebuild` does not ask, it sums every day again afterwards.
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
CREATE FUNCTION kpi_facts_rebuild(lo bigint, hi bigint, logged boolean DEFAULT false) RETURNS bigint
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
DROP FUNCTION kpi_facts_rebuild(bigint, bigint, boolean);
CREATE FUNCTION kpi_facts_rebuild(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  PERFORM 1 FROM cases WHERE id BETWEEN lo AND hi FOR SHARE;
  DELETE FROM kpi_facts WHERE case_id BETWEEN lo AND hi;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases WHERE id BETWEEN lo AND hi),
                                                     'infinity');
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
CREATE OR REPLACE FUNCTION kpi_facts_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('gridpatrol.kpi_nolog', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO kpi_facts_log SELECT -1, o.* FROM old_rows o;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO kpi_facts_log SELECT 1, n.* FROM new_rows n;
  END IF;
  RETURN NULL;
END $$;
ALTER TABLE kpi_facts_log ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE TRIGGER kpi_facts_log_insert AFTER INSERT ON kpi_facts REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
CREATE TRIGGER kpi_facts_log_delete AFTER DELETE ON kpi_facts REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
"""


# the refresh of migration 0009 with its writes of the facts as {write}
REFRESH = """CREATE OR REPLACE FUNCTION kpi_facts_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  id bigint;
  done text := coalesce(current_setting('gridpatrol.kpi_refreshed', true), '');
BEGIN
  IF TG_TABLE_NAME = 'cases' THEN
    id := NEW.id;
  ELSE
    id := NEW.case_id;
  END IF;
  IF position(',' || id || ',' IN done) > 0 THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('gridpatrol.kpi_refreshed', coalesce(nullif(done, ''), ',') || id || ',', true);
{write}
  RETURN NULL;
END $$;
"""
LOGGED = """  -- each change of the facts goes to the log for the daily sums (migration 0011) in the same statement
  WITH gone AS (DELETE FROM kpi_facts WHERE case_id = id RETURNING *)
  INSERT INTO kpi_facts_log SELECT -1, gone.* FROM gone;
  WITH kept AS (INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY[id], 'infinity') RETURNING *)
  INSERT INTO kpi_facts_log SELECT 1, kept.* FROM kept;"""
PLAIN = """  DELETE FROM kpi_facts WHERE case_id = id;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY[id], 'infinity');"""


def upgrade():
    op.execute(UPGRADE + REFRESH.replace("{write}", LOGGED))


def downgrade():
    op.execute(REFRESH.replace("{write}", PLAIN) + DOWNGRADE)
