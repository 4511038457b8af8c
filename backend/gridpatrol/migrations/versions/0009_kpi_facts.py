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
# what the whole log says of the case (the same on each of its events in `x`)
WHOLE_CASE = ("min(registered_at) AS registered_at, min(rejected_at) AS rejected_at, "
              "min(last_dispatch_at) AS last_dispatch_at, min(last_return_at) AS last_return_at, "
              "min(last_handle_at) AS last_handle_at, bool_or(closed) AS closed, bool_or(ended) AS ended, "
              "bool_or(suspended) AS suspended")
# Working time in SQL: `work_clock` holds, for each local day, the working time before it (from the first
# day held) and its working periods in UTC, written by the application from its work calendar whenever
# the calendar changes (`catalog.services.write_work_clock`), so the hours between two moments are two
# primary-key reads and agree with `WorkCalendar.working_hours_between` to the microsecond. NULL outside
# the days held.
# the working time (µs) from the first day held up to moment {t}: a subquery, so the KPI facts count it
# inside their own plan (a call of a SQL function per row cost 20-50 µs more each)
CLOCK_AT = """(
  SELECT CASE WHEN {t} < w.day_end THEN
           w.before_us + coalesce((SELECT sum((extract(epoch FROM least(upper(p), {t}) - lower(p)) * 1000000)::bigint)
                                   FROM unnest(w.periods) p WHERE lower(p) < {t}), 0) END
  FROM (SELECT * FROM work_clock WHERE day_start <= {t} ORDER BY day_start DESC LIMIT 1) w)"""
CLOCK = """
CREATE TABLE work_clock (
  day_start timestamptz PRIMARY KEY, day_end timestamptz NOT NULL, before_us bigint NOT NULL,
  periods tstzrange[] NOT NULL
);
CREATE FUNCTION work_clock_us(t timestamptz) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT {clock_t}
$$;
CREATE FUNCTION work_hours(a timestamptz, b timestamptz) RETURNS float8 LANGUAGE sql STABLE AS $$
  SELECT (work_clock_us(b) - work_clock_us(a))::float8 / 3600000000
$$;
"""
FACTS = """
CREATE FUNCTION kpi_case_facts(ids bigint[], as_of timestamptz) RETURNS TABLE (
  case_id bigint, kind "char", team_id int, current boolean,
  district_code text, street_code text, community_code text, grid_code text, category_code text,
  reporter_id int, reported_at timestamptz, registered_at timestamptz, rejected_at timestamptz,
  dispatch_at timestamptz, handle_at timestamptz, returned boolean, reworked boolean,
  closed boolean, ended boolean, suspended boolean, deadline_handle timestamptz,
  last_dispatch_at timestamptz, last_return_at timestamptz, last_handle_at timestamptz,
  handling_hours float8
) LANGUAGE sql STABLE AS $$
WITH e0 AS (
  SELECT e.case_id, e.seq, e.at, e.action, e.team_id,
         CASE WHEN e.action = 'dispatch' THEN (e.payload->>'team_id')::int END AS to_team,
         -- the teams whose feedback came before, in order: a failed verification fails the last one's
         array_agg(e.team_id) FILTER (WHERE e.action = 'handle') OVER before AS handlers,
         array_agg(CASE WHEN e.action = 'dispatch' THEN (e.payload->>'team_id')::int END)
           FILTER (WHERE e.action = 'dispatch') OVER whole AS dispatched_to,
         -- what the whole log says of the case, on each of its events
         min(e.at) FILTER (WHERE e.action = 'register') OVER whole AS registered_at,
         min(e.at) FILTER (WHERE e.action = 'reject') OVER whole AS rejected_at,
         min(e.at) FILTER (WHERE e.action = 'dispatch') OVER whole AS first_dispatch_at,
         max(e.at) FILTER (WHERE e.action IN ('dispatch', 'verify_fail')) OVER whole AS last_dispatch_at,
         max(e.at) FILTER (WHERE e.action = 'return') OVER whole AS last_return_at,
         min(e.at) FILTER (WHERE e.action = 'handle') OVER whole AS first_handle_at,
         max(e.at) FILTER (WHERE e.action = 'handle') OVER whole AS last_handle_at,
         bool_or(e.action = 'return') OVER whole AS any_returned,
         bool_or(e.action = 'verify_fail') OVER whole AS any_reworked,
         bool_or(e.action = 'verify_pass') OVER whole AS closed,
         bool_or(e.action IN ('reject', 'merge', 'verify_pass')) OVER whole AS ended,
         coalesce(max(e.seq) FILTER (WHERE e.action = 'suspend') OVER whole
                  > coalesce(max(e.seq) FILTER (WHERE e.action = 'resume') OVER whole, 0), false) AS suspended
  FROM case_events e
  WHERE e.case_id = ANY(ids) AND e.at <= as_of
  WINDOW before AS (PARTITION BY e.case_id ORDER BY e.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
         whole AS (PARTITION BY e.case_id ORDER BY e.seq ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
x AS (
  -- each event with the team it counts for: the team dispatched to, the team that returned or gave
  -- feedback (events carry the acting team), the team whose feedback a failed verification failed
  SELECT e0.*, dispatched_to[cardinality(dispatched_to)] AS last_team,
         CASE action WHEN 'dispatch' THEN to_team WHEN 'return' THEN team_id WHEN 'handle' THEN team_id
                     WHEN 'verify_fail' THEN handlers[cardinality(handlers)] END AS team
  FROM e0
),
rows AS (
  -- kind 'c': the case's own figures; kind 't': each team dispatched to, with what that team did (or
  -- one row without a team for a case never dispatched). No join between these sets: a case's log is
  -- read once, and the plan stays linear however many cases are asked for.
  SELECT case_id, 'c'::"char" AS kind, min(last_team) AS team_id, true AS current,
         min(first_dispatch_at) AS dispatch_at, min(first_handle_at) AS handle_at,
         bool_or(any_returned) AS returned, bool_or(any_reworked) AS reworked, {whole_case}
  FROM x GROUP BY case_id
  UNION ALL
  SELECT case_id, 't', team, team IS NOT DISTINCT FROM min(last_team),
         min(at) FILTER (WHERE action = 'dispatch'), min(at) FILTER (WHERE action = 'handle'),
         bool_or(action = 'return'), bool_or(action = 'verify_fail'), {whole_case}
  FROM x WHERE team IS NOT NULL GROUP BY case_id, team HAVING bool_or(action = 'dispatch')
  UNION ALL
  SELECT case_id, 't', NULL, true, NULL, NULL, false, false, {whole_case}
  FROM x GROUP BY case_id HAVING min(last_team) IS NULL
)
SELECT c.id, r.kind, r.team_id, r.current,
       c.district_code, c.street_code, c.community_code, c.grid_code, c.category_code, c.reporter_id,
       c.reported_at, r.registered_at, r.rejected_at, r.dispatch_at, r.handle_at, r.returned, r.reworked,
       r.closed, r.ended, r.suspended, c.deadline_handle,
       r.last_dispatch_at, r.last_return_at, r.last_handle_at,
       ({clock_handle} - {clock_dispatch})::float8 / 3600000000
FROM rows r JOIN cases c ON c.id = r.case_id
WHERE c.id = ANY(ids)  -- so the cases are read by their key, not scanned
$$;

CREATE TABLE kpi_facts AS SELECT * FROM kpi_case_facts('{}', 'infinity') WITH NO DATA;
ALTER TABLE kpi_facts ALTER COLUMN case_id SET NOT NULL, ALTER COLUMN kind SET NOT NULL,
  ADD CONSTRAINT fk_kpi_facts_case_id_cases FOREIGN KEY (case_id) REFERENCES cases (id) ON DELETE CASCADE;
-- a case's rows are unique: a race that would count a case twice fails instead
CREATE UNIQUE INDEX uq_kpi_facts_case_kind_team ON kpi_facts (case_id, kind, team_id) NULLS NOT DISTINCT;
-- a period's facts: reported, registered or rejected in it
CREATE INDEX ix_kpi_facts_reported ON kpi_facts (kind, reported_at);
CREATE INDEX ix_kpi_facts_registered ON kpi_facts (kind, registered_at) WHERE registered_at IS NOT NULL;
CREATE INDEX ix_kpi_facts_rejected ON kpi_facts (kind, rejected_at) WHERE rejected_at IS NOT NULL;

-- a case's facts again, from its whole log, when it logs an event or a field the facts copy changes.
-- Deferred to the commit, when the case row is final (the workflow logs an event before it writes the
-- case), and done once per case and transaction (the cases refreshed are noted in a local setting:
-- meant for transactions of a few cases, and wrong after SET CONSTRAINTS ... IMMEDIATE, which would
-- refresh before the transaction's later writes; the application never sets it).
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
  -- the workflow writes a case under FOR UPDATE: wait for those writing now, keep others out meanwhile
  PERFORM 1 FROM cases WHERE id BETWEEN lo AND hi FOR SHARE;
  DELETE FROM kpi_facts WHERE case_id BETWEEN lo AND hi;
  INSERT INTO kpi_facts SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cases WHERE id BETWEEN lo AND hi),
                                                     'infinity');
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

"""

BACKFILL = """
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
    from gridpatrol.catalog.services import write_work_clock

    op.execute(CLOCK.replace("{clock_t}", CLOCK_AT.format(t="t")))
    op.execute(FACTS.replace("{whole_case}", WHOLE_CASE).replace("{clock_handle}", CLOCK_AT.format(t="r.handle_at"))
               .replace("{clock_dispatch}", CLOCK_AT.format(t="r.dispatch_at")))
    write_work_clock(op.get_bind())  # from the calendar in the database, if one was loaded
    op.execute(BACKFILL)


def downgrade():
    op.execute("""
        DROP TRIGGER kpi_facts_refresh ON case_events;
        DROP TRIGGER kpi_facts_refresh ON cases;
        DROP FUNCTION kpi_facts_refresh();
        DROP FUNCTION kpi_facts_rebuild(bigint, bigint);
        DROP TABLE kpi_facts;
        DROP FUNCTION kpi_case_facts(bigint[], timestamptz);
        DROP FUNCTION work_hours(timestamptz, timestamptz);
        DROP FUNCTION work_clock_us(timestamptz);
        DROP TABLE work_clock;
    """)
