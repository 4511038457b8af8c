"""kpi_facts: the KPIs' per-case facts, kept current by the event log

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 10:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# `kpi_case_facts(ids, as_of)` is the one definition of what a case's event log says for the KPIs, as
# of a moment: the raw KPIs call it for the cases of their period (any `as_of`), and the trigger below
# stores its answer as of now in `kpi_facts` at the commit of every transaction that logs an event, so
# a KPI read right after a closure shows that closure. Rows per case: kind 'c', one row with the
# case's own figures (first dispatch, first feedback, returned or reworked at all); kind 't', one row
# per team the case was dispatched to with what that team did (its returns and feedback, and failed
# verifications of its feedback), or one row without a team for a case never dispatched. `current`:
# the team (or none) that was responsible last.
FACTS = """
CREATE FUNCTION kpi_case_facts(ids bigint[], as_of timestamptz) RETURNS TABLE (
  case_id bigint, kind "char", team_id int, current boolean,
  district_code text, street_code text, community_code text, grid_code text, category_code text,
  reporter_id int, reported_at timestamptz, registered_at timestamptz, rejected_at timestamptz,
  dispatch_at timestamptz, handle_at timestamptz, returned boolean, reworked boolean,
  closed boolean, ended boolean, suspended boolean, deadline_handle timestamptz,
  last_dispatch_at timestamptz, last_return_at timestamptz, last_handle_at timestamptz
) LANGUAGE sql STABLE AS $$
WITH ev AS (
  SELECT e.case_id,
         min(e.at) FILTER (WHERE e.action = 'register') AS registered_at,
         min(e.at) FILTER (WHERE e.action = 'reject') AS rejected_at,
         min(e.at) FILTER (WHERE e.action = 'dispatch') AS first_dispatch_at,
         max(e.at) FILTER (WHERE e.action IN ('dispatch', 'verify_fail')) AS last_dispatch_at,
         max(e.at) FILTER (WHERE e.action = 'return') AS last_return_at,
         min(e.at) FILTER (WHERE e.action = 'handle') AS first_handle_at,
         max(e.at) FILTER (WHERE e.action = 'handle') AS last_handle_at,
         bool_or(e.action = 'return') AS returned,
         bool_or(e.action = 'verify_fail') AS reworked,
         bool_or(e.action = 'verify_pass') AS closed,
         bool_or(e.action IN ('reject', 'merge', 'verify_pass')) AS ended,
         coalesce((array_agg(e.action ORDER BY e.seq DESC)
                   FILTER (WHERE e.action IN ('suspend', 'resume')))[1] = 'suspend', false) AS suspended,
         (array_agg((e.payload->>'team_id')::int ORDER BY e.seq DESC)
            FILTER (WHERE e.action = 'dispatch'))[1] AS team_id
  FROM case_events e
  WHERE e.case_id = ANY(ids) AND e.at <= as_of
  GROUP BY e.case_id
),
te AS (
  SELECT d.case_id, d.team_id, min(d.at) AS dispatch_at,
         bool_or(x.action = 'return') AS returned,
         min(x.at) FILTER (WHERE x.action = 'handle') AS handle_at,
         bool_or(x.action = 'verify_fail') AS reworked
  FROM (SELECT e.case_id, (e.payload->>'team_id')::int AS team_id, e.at
        FROM case_events e
        WHERE e.case_id = ANY(ids) AND e.action = 'dispatch' AND e.at <= as_of) d
  LEFT JOIN LATERAL (
    SELECT e.action, e.at FROM case_events e
    WHERE e.case_id = d.case_id AND e.at <= as_of
      AND ((e.action IN ('return', 'handle') AND e.team_id = d.team_id)
           OR (e.action = 'verify_fail'
               AND (SELECT h.team_id FROM case_events h WHERE h.case_id = e.case_id AND h.action = 'handle'
                    AND h.seq < e.seq ORDER BY h.seq DESC LIMIT 1) = d.team_id))
  ) x ON true
  GROUP BY d.case_id, d.team_id
),
rows AS (
  SELECT ev.case_id, 'c'::"char" AS kind, ev.team_id, true AS current, ev.first_dispatch_at AS dispatch_at,
         ev.first_handle_at AS handle_at, ev.returned, ev.reworked
  FROM ev
  UNION ALL
  SELECT te.case_id, 't', te.team_id, te.team_id IS NOT DISTINCT FROM ev.team_id,
         te.dispatch_at, te.handle_at, te.returned, te.reworked
  FROM te JOIN ev ON ev.case_id = te.case_id
  UNION ALL
  SELECT ev.case_id, 't', NULL, true, NULL, NULL, false, false FROM ev WHERE ev.team_id IS NULL
)
SELECT c.id, r.kind, r.team_id, r.current,
       c.district_code, c.street_code, c.community_code, c.grid_code, c.category_code, c.reporter_id,
       c.reported_at, ev.registered_at, ev.rejected_at, r.dispatch_at, r.handle_at, r.returned, r.reworked,
       ev.closed, ev.ended, ev.suspended, c.deadline_handle,
       ev.last_dispatch_at, ev.last_return_at, ev.last_handle_at
FROM ev JOIN cases c ON c.id = ev.case_id JOIN rows r ON r.case_id = ev.case_id
$$;

CREATE TABLE kpi_facts AS SELECT * FROM kpi_case_facts('{}', 'infinity') WITH NO DATA;
ALTER TABLE kpi_facts ALTER COLUMN case_id SET NOT NULL, ALTER COLUMN kind SET NOT NULL,
  ADD CONSTRAINT fk_kpi_facts_case_id_cases FOREIGN KEY (case_id) REFERENCES cases (id) ON DELETE CASCADE;
CREATE INDEX ix_kpi_facts_case ON kpi_facts (case_id);
-- a period's facts: reported, registered or rejected in it
CREATE INDEX ix_kpi_facts_reported ON kpi_facts (kind, reported_at);
CREATE INDEX ix_kpi_facts_registered ON kpi_facts (kind, registered_at) WHERE registered_at IS NOT NULL;
CREATE INDEX ix_kpi_facts_rejected ON kpi_facts (kind, rejected_at) WHERE rejected_at IS NOT NULL;

-- a case's facts again, from its whole log, when it logs an event or a field the facts copy changes.
-- Deferred to the commit, when the case row is final (the workflow logs an event before it writes the
-- case), and done once per case and transaction (the cases refreshed are noted in a local setting).
CREATE FUNCTION kpi_facts_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
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
  DELETE FROM kpi_facts WHERE case_id = id;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY[id], 'infinity');
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER kpi_facts_refresh AFTER INSERT ON case_events
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kpi_facts_refresh();
CREATE CONSTRAINT TRIGGER kpi_facts_refresh AFTER UPDATE ON cases
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN ((OLD.district_code, OLD.street_code, OLD.community_code, OLD.grid_code, OLD.category_code, OLD.reporter_id,
         OLD.reported_at, OLD.deadline_handle)
        IS DISTINCT FROM (NEW.district_code, NEW.street_code, NEW.community_code, NEW.grid_code, NEW.category_code,
                          NEW.reporter_id, NEW.reported_at, NEW.deadline_handle))
  EXECUTE FUNCTION kpi_facts_refresh();

-- rebuilds the facts of cases [lo, hi] (the backfill below, `gridpatrol kpis rebuild`)
CREATE FUNCTION kpi_facts_rebuild(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM kpi_facts WHERE case_id BETWEEN lo AND hi;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases WHERE id BETWEEN lo AND hi),
                                                     'infinity');
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

DO $$
DECLARE
  top bigint := (SELECT max(id) FROM cases);
  lo bigint := 0;
BEGIN
  WHILE lo <= top LOOP
    PERFORM kpi_facts_rebuild(lo, lo + 99999);
    lo := lo + 100000;
  END LOOP;
END $$;
ANALYZE kpi_facts;
"""


def upgrade():
    op.execute(FACTS)


def downgrade():
    op.execute("""
        DROP TRIGGER kpi_facts_refresh ON case_events;
        DROP TRIGGER kpi_facts_refresh ON cases;
        DROP FUNCTION kpi_facts_refresh();
        DROP FUNCTION kpi_facts_rebuild(bigint, bigint);
        DROP TABLE kpi_facts;
        DROP FUNCTION kpi_case_facts(bigint[], timestamptz);
    """)
