"""case_counts: how many cases there are per area, status and urgency, kept by the writes themselves

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 18:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# The case list promises an exact total. When a desk's filter matches hundreds of thousands of cases
# (the register queue, ~500,000 'reported' at 10 million cases) count(*) walks them all. The counts per (district, street, community, status, urgency) are a few thousand rows, summed
# in a millisecond; the list reads them when its filters and the caller's scope are only these
# columns (cases.services.list_cases). The area columns are the case's own (a case outside every
# grid has a district and no street or community), so a sum here is what count(*) over the same
# conditions gives.
KEY = "district_code, street_code, community_code, status, urgency"

SCHEMA = f"""
CREATE TABLE case_counts (
  district_code varchar(6) NOT NULL,
  street_code varchar(9),
  community_code varchar(12),
  status varchar(12) NOT NULL,
  urgency varchar(1) NOT NULL,
  n bigint NOT NULL  -- no CHECK (n >= 0): an upsert checks the row it would insert, a negative delta
);
CREATE UNIQUE INDEX uq_case_counts ON case_counts ({KEY}) NULLS NOT DISTINCT;
"""

# Kept in the transaction that writes the cases, row by row: a report adds one to its key, a change of
# status (or urgency, or area) moves one from the old key to the new, both in one statement in key
# order, so two transactions moving cases between the same two keys take their rows in the same order.
# A trigger per row costs a report one upsert (a statement trigger with transition tables cost it
# ~0.3 ms); a bulk load of millions of cases disables the insert trigger and recounts afterwards
# (scripts/bench/generate.py). A key whose count falls to 0 keeps its row: deleting it would make the
# next report of that key insert instead of update.
FUNCTIONS = f"""
CREATE FUNCTION case_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO case_counts ({KEY}, n)
  SELECT * FROM (
    SELECT OLD.district_code, OLD.street_code, OLD.community_code, OLD.status, OLD.urgency, -1
    WHERE TG_OP <> 'INSERT'
    UNION ALL
    SELECT NEW.district_code, NEW.street_code, NEW.community_code, NEW.status, NEW.urgency, 1
    WHERE TG_OP <> 'DELETE'
  ) d ({KEY}, n)
  ORDER BY {KEY}
  ON CONFLICT ({KEY}) DO UPDATE SET n = case_counts.n + excluded.n;
  RETURN NULL;
END $$;

CREATE FUNCTION case_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM case_counts;
  RETURN NULL;
END $$;

-- The repair, for counts that drifted (a trigger disabled for a bulk load, a hand edit): the counts
-- as cases holds them, writing only the rows that differ; answers how many it mended. Writes to cases
-- wait while it counts (SHARE lock), so no change slips between the count and the write.
CREATE FUNCTION case_counts_recount() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  mended bigint;
BEGIN
  LOCK TABLE cases IN SHARE MODE;
  WITH truth AS (
    SELECT {KEY}, count(*) AS n FROM cases GROUP BY {KEY}
  ), fixed AS (
    INSERT INTO case_counts ({KEY}, n) SELECT {KEY}, n FROM truth ORDER BY {KEY}
    ON CONFLICT ({KEY}) DO UPDATE SET n = excluded.n WHERE case_counts.n <> excluded.n
    RETURNING 1
  ), emptied AS (  -- keys no case has any more (their rows are not in `fixed`: the two are apart)
    UPDATE case_counts k SET n = 0
    WHERE k.n <> 0 AND NOT EXISTS (
      SELECT 1 FROM truth t
      WHERE (t.district_code, coalesce(t.street_code, ''), coalesce(t.community_code, ''), t.status, t.urgency)
          = (k.district_code, coalesce(k.street_code, ''), coalesce(k.community_code, ''), k.status, k.urgency))
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM fixed) + (SELECT count(*) FROM emptied) INTO mended;
  RETURN mended;
END $$;
"""

TRIGGERS = f"""
CREATE TRIGGER cases_counts_insert AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION case_counts_add();
CREATE TRIGGER cases_counts_update AFTER UPDATE OF {KEY} ON cases FOR EACH ROW
  WHEN ((OLD.district_code, OLD.street_code, OLD.community_code, OLD.status, OLD.urgency)
        IS DISTINCT FROM (NEW.district_code, NEW.street_code, NEW.community_code, NEW.status, NEW.urgency))
  EXECUTE FUNCTION case_counts_add();
CREATE TRIGGER cases_counts_delete AFTER DELETE ON cases FOR EACH ROW EXECUTE FUNCTION case_counts_add();
CREATE TRIGGER cases_counts_truncate AFTER TRUNCATE ON cases
  FOR EACH STATEMENT EXECUTE FUNCTION case_counts_truncate();
"""


def upgrade():
    op.execute(SCHEMA)
    op.execute(FUNCTIONS)
    # the triggers first: creating them holds off writes to cases until the migration commits, so the
    # backfill (the repair, from nothing) counts every case once
    op.execute(TRIGGERS)
    op.execute("SELECT case_counts_recount()")


def downgrade():
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER cases_counts_{event} ON cases")
    op.execute("DROP FUNCTION case_counts_recount()")
    op.execute("DROP FUNCTION case_counts_truncate()")
    op.execute("DROP FUNCTION case_counts_add()")
    op.execute("DROP TABLE case_counts")
