"""grid_open_cases: each grid's open cases and their stage deadlines, kept by the writes themselves

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27 04:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

OPEN = "('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"

# The map's grid layer shows, for every grid of a tile, its open cases and how many of them are past
# their stage deadline. Counted over the cases per request that is one index probe a grid (~500 at
# zoom 14) reading ~10 entries each at 10 million cases: most of the tile's time. Kept here per grid,
# the default map (open cases, no other filter) reads one row a grid. "Overdue" moves with the clock,
# so it is not a kept number: the row keeps the stage deadlines of its open cases that are not
# suspended, sorted, and a tile counts those before now with width_bucket() (a binary search).
# A case's own area codes are those of its grid (the CHECK below), so a grid in the caller's scope
# holds only cases in that scope and the tile's scope test on grids is the one on cases.
SCHEMA = f"""
ALTER TABLE cases ADD CONSTRAINT ck_cases_areas_of_grid CHECK (
  grid_code IS NULL OR (district_code = left(grid_code, 6)
                        AND street_code IS NOT DISTINCT FROM left(grid_code, 9)
                        AND community_code IS NOT DISTINCT FROM left(grid_code, 12))) NOT VALID;
ALTER TABLE cases VALIDATE CONSTRAINT ck_cases_areas_of_grid;

CREATE TABLE grid_open_cases (
  grid_code varchar(15) PRIMARY KEY,
  open integer NOT NULL,
  deadlines timestamptz[] NOT NULL  -- of its open cases not suspended, sorted; none for no deadline
);
"""

# Kept row by row in the transaction that writes the case, like case_counts (0016): a report adds its
# case to its grid's row, a change of status, stage deadline or grid moves it. A row whose count falls
# to 0 stays. A bulk load disables the insert trigger and recounts afterwards (scripts/bench/generate.py).
FUNCTIONS = f"""
-- the array without one occurrence of d (as it was when d is NULL or absent); the slices are written
-- with spaces around their colons, which SQLAlchemy would otherwise take for parameters
CREATE FUNCTION deadlines_without(a timestamptz[], d timestamptz) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN d IS NULL OR array_position(a, d) IS NULL THEN a
            ELSE a[1 : array_position(a, d) - 1] || a[array_position(a, d) + 1 :] END;

-- the sorted array with d put in its place (as it was when d is NULL): after the elements at or
-- before it, which width_bucket() counts by binary search
CREATE FUNCTION deadlines_with(a timestamptz[], d timestamptz) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN d IS NULL THEN a ELSE a[1 : width_bucket(d, a)] || d || a[width_bucket(d, a) + 1 :] END;

CREATE FUNCTION grid_open_cases_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was_open boolean := TG_OP <> 'INSERT' AND OLD.grid_code IS NOT NULL AND OLD.status IN {OPEN};
  is_open boolean := TG_OP <> 'DELETE' AND NEW.grid_code IS NOT NULL AND NEW.status IN {OPEN};
  old_deadline timestamptz;
  new_deadline timestamptz;
BEGIN
  IF was_open AND OLD.status <> 'suspended' THEN old_deadline := OLD.stage_deadline; END IF;
  IF is_open AND NEW.status <> 'suspended' THEN new_deadline := NEW.stage_deadline; END IF;
  IF was_open AND is_open AND OLD.grid_code = NEW.grid_code THEN
    IF old_deadline IS DISTINCT FROM new_deadline THEN
      UPDATE grid_open_cases SET deadlines = deadlines_with(deadlines_without(deadlines, old_deadline), new_deadline)
      WHERE grid_code = NEW.grid_code;
    END IF;
    RETURN NULL;
  END IF;
  IF was_open THEN
    UPDATE grid_open_cases SET open = open - 1, deadlines = deadlines_without(deadlines, old_deadline)
    WHERE grid_code = OLD.grid_code;
  END IF;
  IF is_open THEN
    INSERT INTO grid_open_cases AS g (grid_code, open, deadlines)
    VALUES (NEW.grid_code, 1, deadlines_with('{{}}', new_deadline))
    ON CONFLICT (grid_code) DO UPDATE SET open = g.open + 1, deadlines = deadlines_with(g.deadlines, new_deadline);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION grid_open_cases_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM grid_open_cases;
  RETURN NULL;
END $$;

-- The repair (and the bulk load's count): the rows as cases holds them, writing only those that differ;
-- answers how many it mended. Writes to cases wait while it counts.
CREATE FUNCTION grid_open_cases_recount() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  mended bigint;
BEGIN
  LOCK TABLE cases IN SHARE MODE;
  WITH truth AS (
    SELECT grid_code, count(*)::int AS open,
           coalesce(array_agg(stage_deadline ORDER BY stage_deadline)
                    FILTER (WHERE status <> 'suspended' AND stage_deadline IS NOT NULL), '{{}}') AS deadlines
    FROM cases WHERE grid_code IS NOT NULL AND status IN {OPEN} GROUP BY grid_code
  ), fixed AS (
    INSERT INTO grid_open_cases (grid_code, open, deadlines) SELECT * FROM truth ORDER BY grid_code
    ON CONFLICT (grid_code) DO UPDATE SET open = excluded.open, deadlines = excluded.deadlines
    WHERE (grid_open_cases.open, grid_open_cases.deadlines) IS DISTINCT FROM (excluded.open, excluded.deadlines)
    RETURNING 1
  ), emptied AS (
    UPDATE grid_open_cases k SET open = 0, deadlines = '{{}}'
    WHERE (k.open <> 0 OR k.deadlines <> '{{}}') AND NOT EXISTS (SELECT 1 FROM truth t WHERE t.grid_code = k.grid_code)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM fixed) + (SELECT count(*) FROM emptied) INTO mended;
  RETURN mended;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER cases_grid_open_insert AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION grid_open_cases_keep();
CREATE TRIGGER cases_grid_open_update AFTER UPDATE OF status, stage_deadline, grid_code ON cases FOR EACH ROW
  WHEN ((OLD.status, OLD.stage_deadline, OLD.grid_code) IS DISTINCT FROM (NEW.status, NEW.stage_deadline, NEW.grid_code))
  EXECUTE FUNCTION grid_open_cases_keep();
CREATE TRIGGER cases_grid_open_delete AFTER DELETE ON cases FOR EACH ROW EXECUTE FUNCTION grid_open_cases_keep();
CREATE TRIGGER cases_grid_open_truncate AFTER TRUNCATE ON cases
  FOR EACH STATEMENT EXECUTE FUNCTION grid_open_cases_truncate();
"""


def upgrade():
    op.execute(SCHEMA)
    op.execute(FUNCTIONS)
    # the triggers first: they hold off writes to cases until the migration commits, so the backfill
    # (the repair, from nothing) counts every case once
    op.execute(TRIGGERS)
    op.execute("SELECT grid_open_cases_recount()")


def downgrade():
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER cases_grid_open_{event} ON cases")
    op.execute("DROP FUNCTION grid_open_cases_recount()")
    op.execute("DROP FUNCTION grid_open_cases_truncate()")
    op.execute("DROP FUNCTION grid_open_cases_keep()")
    op.execute("DROP FUNCTION deadlines_with(timestamptz[], timestamptz)")
    op.execute("DROP FUNCTION deadlines_without(timestamptz[], timestamptz)")
    op.execute("DROP TABLE grid_open_cases")
    op.execute("ALTER TABLE cases DROP CONSTRAINT ck_cases_areas_of_grid")
