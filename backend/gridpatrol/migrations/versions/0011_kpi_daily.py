"""kpi_daily: the KPI facts summed per local day, for periods of a city's size

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-26 13:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

# The second level of the KPI rollup. A 30-day read at 10 million cases would group ~400,000 facts; the
# same figures summed per local day, district and group key are a few thousand rows. Every change of
# `kpi_facts` is written to `kpi_facts_log` (a row with sign +1 for a fact added, -1 for one removed)
# in the changing transaction itself: appends only, so concurrent reports never wait on a shared sum.
# `kpi_daily_compact()` (run every few seconds by `gridpatrol kpis compact --every`) folds the log into
# `kpi_daily` and `kpi_daily_hours`; readers add whatever is not folded yet, so a figure never waits
# for the compaction (services.py). The days are local days in the time zone kept in `kpi_daily_state`.
SCHEMA = """
CREATE TABLE kpi_facts_log (sign smallint NOT NULL, LIKE kpi_facts,
                            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);

-- a fact added, removed or changed, logged by the statement that did it (a bulk rebuild that sums the
-- days again itself sets gridpatrol.kpi_nolog)
CREATE FUNCTION kpi_facts_log() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER kpi_facts_log_insert AFTER INSERT ON kpi_facts REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
CREATE TRIGGER kpi_facts_log_update AFTER UPDATE ON kpi_facts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();
CREATE TRIGGER kpi_facts_log_delete AFTER DELETE ON kpi_facts REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION kpi_facts_log();

-- per local day, district and group key: how many facts were reported / registered / rejected that day
-- (n_rep, n_reg, n_rej: a group has a row in a period when one of them is not 0) and each figure
-- counted by the day of its own moment, as services.FIGURES counts it
CREATE TABLE kpi_daily (
  group_by text NOT NULL, day date NOT NULL, district_code text, key text,
  n_rep bigint NOT NULL, reports bigint NOT NULL,
  n_reg bigint NOT NULL, registered bigint NOT NULL, dispatched bigint NOT NULL, returned bigint NOT NULL,
  handled bigint NOT NULL, reworked bigint NOT NULL, closed bigint NOT NULL, closed_on_time bigint NOT NULL,
  n_rej bigint NOT NULL, rejected bigint NOT NULL
);
CREATE UNIQUE INDEX uq_kpi_daily ON kpi_daily (group_by, day, district_code, key) NULLS NOT DISTINCT;
-- the handling hours of the facts registered that day, counted per bucket (kpi_hours_bucket)
CREATE TABLE kpi_daily_hours (
  group_by text NOT NULL, day date NOT NULL, district_code text, key text, bucket int NOT NULL, n bigint NOT NULL
);
CREATE UNIQUE INDEX uq_kpi_daily_hours ON kpi_daily_hours (group_by, day, district_code, key, bucket)
  NULLS NOT DISTINCT;
CREATE TABLE kpi_daily_state (one boolean PRIMARY KEY DEFAULT true CHECK (one), tz text NOT NULL);

-- a tenth of an hour up to a day, an hour up to 10 days, 10 hours beyond (services.hours_bucket_bounds)
CREATE FUNCTION kpi_hours_bucket(h float8) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN h < 24 THEN greatest(floor(h * 10), 0)::int
              WHEN h < 240 THEN 240 + floor(h - 24)::int
              ELSE least(456 + floor((h - 240) / 10), 1000000)::int END
$$;

-- the open cases in the handling stage: the only facts whose figures move with the clock (open_overdue)
CREATE INDEX ix_kpi_facts_open_handling ON kpi_facts (kind, registered_at)
  WHERE NOT ended AND NOT suspended AND last_dispatch_at > coalesce(last_return_at, '-infinity');

-- the facts whose handling span [dispatch, handle] meets a given day: the ones a calendar change of that
-- day recounts (catalog.services.write_work_clock), found without reading every fact under its lock
CREATE INDEX ix_kpi_facts_handling_span ON kpi_facts
  USING gist (tstzrange(least(dispatch_at, handle_at), greatest(dispatch_at, handle_at), '[]'))
  WHERE dispatch_at IS NOT NULL AND handle_at IS NOT NULL;

"""

# the daily contributions of facts `s` (columns of kpi_facts and a sign): one per anchor moment of each
# fact (reported, registered, rejected) and per grouping it has a key for, each figure counted as
# services.FIGURES counts it (open_overdue, which moves with the clock, is counted from the facts)
GROUPS = ("CROSS JOIN LATERAL (VALUES ('team', s.team_id::text, s.kind = 't'), "
          "('category', s.category_code, s.kind = 'c'), ('street', s.street_code, s.kind = 'c')) "
          "g(group_by, key, applies)")
LATERAL = (GROUPS + " CROSS JOIN LATERAL (VALUES ('p'::\"char\", s.reported_at), ('r', s.registered_at), "
           "('j', s.rejected_at)) a(anchor, at) WHERE g.applies AND a.at IS NOT NULL")
FIGURE_SUMS = [
    ("n_rep", "a.anchor = 'p'"),
    ("reports", "a.anchor = 'p' AND s.current"),
    ("n_reg", "a.anchor = 'r'"),
    ("registered", "a.anchor = 'r' AND s.current"),
    ("dispatched", "a.anchor = 'r' AND s.dispatch_at IS NOT NULL"),
    ("returned", "a.anchor = 'r' AND s.returned"),
    ("handled", "a.anchor = 'r' AND s.handle_at IS NOT NULL"),
    ("reworked", "a.anchor = 'r' AND s.reworked"),
    ("closed", "a.anchor = 'r' AND s.current AND s.closed"),
    ("closed_on_time", "a.anchor = 'r' AND s.current AND s.closed AND s.last_handle_at <= s.deadline_handle"),
    ("n_rej", "a.anchor = 'j'"),
    ("rejected", "a.anchor = 'j' AND s.current"),
]
SUMS = ", ".join(f"coalesce(sum(s.sign) FILTER (WHERE {cond}), 0)::bigint AS {name}" for name, cond in FIGURE_SUMS)
COLUMNS = ", ".join(f"{name} bigint" for name, _ in FIGURE_SUMS)

ADD = """
-- folds the log into the daily sums in one statement (no temporary table: the app's role owns nothing);
-- the log rows folded. One compaction at a time; another caller meanwhile folds nothing.
CREATE FUNCTION kpi_daily_compact() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  zone text := (SELECT tz FROM kpi_daily_state);
BEGIN
  IF zone IS NULL OR NOT pg_try_advisory_xact_lock(hashtext('kpi_daily_compact')) THEN
    RETURN 0;
  END IF;
  WITH moved AS (DELETE FROM kpi_facts_log RETURNING *),
  days AS ({daily_insert_moved} RETURNING 1),
  hours AS ({hours_insert_moved} RETURNING 1)
  SELECT count(*) INTO n FROM moved;
  RETURN n;
END $$;

-- every day summed again from the kept facts, in time zone `zone`: the backfill, `gridpatrol kpis
-- rebuild`, a change of the deployment's time zone. Fact writers wait meanwhile.
CREATE FUNCTION kpi_daily_rebuild(zone text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  LOCK TABLE kpi_facts IN SHARE MODE;
  DELETE FROM kpi_daily;
  DELETE FROM kpi_daily_hours;
  DELETE FROM kpi_facts_log;
  DELETE FROM kpi_daily_state;
  INSERT INTO kpi_daily_state (tz) VALUES (zone);
  {daily_insert_all};
  {hours_insert_all};
  SELECT count(*) INTO n FROM kpi_daily;
  RETURN n;
END $$;

-- The figures of grouping `g` over a period [p_from, p_to), as of p_as_of (now, for the rollup), in rows
-- of a key and a local day for the caller to sum: the whole days [d0, d1) from the sums plus the log
-- not folded yet, and from the facts themselves the difference between those days and the period at
-- either end: +1 for a moment in the period outside the days, -1 for one in the days outside the
-- period. So d0 and d1 may be the local midnights nearest to the ends, whichever side of them (a
-- period up to now ends its days at the next midnight: nothing is dated after now, so that end reads
-- no fact). `districts` NULL: everywhere.
CREATE FUNCTION kpi_daily_read(g text, districts text[], d0 date, d1 date, p_from timestamptz, p_to timestamptz,
                               p_as_of timestamptz, zone text)
RETURNS TABLE (key text, day date, {columns}) LANGUAGE sql STABLE AS $$
    SELECT d.key, d.day, {plain} FROM kpi_daily d
    WHERE d.group_by = g AND d.day >= d0 AND d.day < d1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT g.key, (a.at AT TIME ZONE zone)::date, {sums}
    FROM kpi_facts_log s {lateral} AND g.group_by = kpi_daily_read.g
      AND a.at >= (d0::timestamp AT TIME ZONE zone) AND a.at < (d1::timestamp AT TIME ZONE zone)
      AND (districts IS NULL OR s.district_code = ANY(districts))
    GROUP BY 1, 2
    UNION ALL
    SELECT g.key, (a.at AT TIME ZONE zone)::date, {edge_sums}
    FROM (SELECT f.* FROM kpi_facts f
          WHERE f.kind = CASE WHEN kpi_daily_read.g = 'team' THEN 't' ELSE 'c' END::"char"
            AND (districts IS NULL OR f.district_code = ANY(districts))
            AND ({edge_reported} OR {edge_registered} OR {edge_rejected})) s
    {lateral} AND g.group_by = kpi_daily_read.g
    GROUP BY 1, 2
$$;

-- the handling hours of the facts of grouping `g` registered in [p_from, p_to), counted per key and
-- bucket, read as kpi_daily_read reads the figures (the ends' differences with a sign)
CREATE FUNCTION kpi_daily_hours_read(g text, districts text[], d0 date, d1 date, p_from timestamptz,
                                     p_to timestamptz, zone text)
RETURNS TABLE (key text, bucket int, n bigint) LANGUAGE sql STABLE AS $$
  SELECT key, bucket, sum(n)::bigint FROM (
    SELECT d.key, d.bucket, d.n FROM kpi_daily_hours d
    WHERE d.group_by = g AND d.day >= d0 AND d.day < d1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT g.key, kpi_hours_bucket(s.handling_hours), s.sign
    FROM kpi_facts_log s {groups}
    WHERE g.applies AND g.group_by = kpi_daily_hours_read.g AND s.handling_hours IS NOT NULL
      AND s.registered_at >= (d0::timestamp AT TIME ZONE zone) AND s.registered_at < (d1::timestamp AT TIME ZONE zone)
      AND (districts IS NULL OR s.district_code = ANY(districts))
    UNION ALL
    SELECT g.key, kpi_hours_bucket(s.handling_hours), {edge_hours_sign}
    FROM kpi_facts s {groups}
    WHERE g.applies AND g.group_by = kpi_daily_hours_read.g AND s.handling_hours IS NOT NULL
      AND s.kind = CASE WHEN kpi_daily_hours_read.g = 'team' THEN 't' ELSE 'c' END::"char"
      AND {edge_registered_s}
      AND (districts IS NULL OR s.district_code = ANY(districts))
  ) parts
  GROUP BY key, bucket
$$;
"""


def _edge(column: str) -> str:
    """A fact whose `column` lies where the days [d0, d1) and the period [p_from, p_to) differ."""
    return (f"({column} >= least(p_from, (d0::timestamp AT TIME ZONE zone)) AND {column} < greatest(p_from, (d0::timestamp AT TIME ZONE zone)) "
            f"OR {column} >= least(p_to, p_as_of, (d1::timestamp AT TIME ZONE zone)) AND {column} < greatest(p_to, (d1::timestamp AT TIME ZONE zone)))")


# in the period (+1), in the days (-1): a moment counts once in whichever it belongs to
EDGE_SIGN = (f"((a.at >= p_from AND a.at < p_to AND (a.anchor <> 'p' OR a.at <= p_as_of))::int"
             f" - (a.at >= (d0::timestamp AT TIME ZONE zone) AND a.at < (d1::timestamp AT TIME ZONE zone))::int)")
EDGE_HOURS_SIGN = (f"((s.registered_at >= p_from AND s.registered_at < p_to)::int"
                   f" - (s.registered_at >= (d0::timestamp AT TIME ZONE zone) AND s.registered_at < (d1::timestamp AT TIME ZONE zone))::int)")


def daily_insert(source: str) -> str:
    """The daily sums of the facts (with a sign) in `source`, added to kpi_daily."""
    add = ", ".join(f"{name} = kpi_daily.{name} + EXCLUDED.{name}" for name, _ in FIGURE_SUMS)
    return (f"INSERT INTO kpi_daily SELECT g.group_by, (a.at AT TIME ZONE zone)::date, s.district_code, g.key, {SUMS} "
            f"FROM {source} s {LATERAL} GROUP BY 1, 2, 3, 4 "
            f"ON CONFLICT (group_by, day, district_code, key) DO UPDATE SET {add}")


def hours_insert(source: str) -> str:
    """The handling hours of the facts (with a sign) in `source`, per day and bucket, added to kpi_daily_hours."""
    return ("INSERT INTO kpi_daily_hours SELECT g.group_by, (s.registered_at AT TIME ZONE zone)::date, "
            "s.district_code, g.key, kpi_hours_bucket(s.handling_hours), sum(s.sign) "
            f"FROM {source} s {GROUPS} "
            "WHERE g.applies AND s.registered_at IS NOT NULL AND s.handling_hours IS NOT NULL "
            "GROUP BY 1, 2, 3, 4, 5 "
            "ON CONFLICT (group_by, day, district_code, key, bucket) DO UPDATE SET n = kpi_daily_hours.n + EXCLUDED.n")


def fill(sql: str) -> str:
    """`sql` with the placeholders of the figures' sums, the groupings and the ends' differences filled in."""
    plain = ", ".join(name for name, _ in FIGURE_SUMS)
    return (sql.replace("{sums}", SUMS).replace("{lateral}", LATERAL).replace("{groups}", GROUPS)
            .replace("{columns}", COLUMNS).replace("{plain}", plain)
            .replace("{edge_sums}", SUMS.replace("s.sign", EDGE_SIGN))
            .replace("{edge_reported}", _edge("f.reported_at")).replace("{edge_registered}", _edge("f.registered_at"))
            .replace("{edge_rejected}", _edge("f.rejected_at"))
            .replace("{edge_hours_sign}", EDGE_HOURS_SIGN)
            .replace("{edge_registered_s}", _edge("s.registered_at").replace("p_as_of, ", "")))


EVERY_FACT = "(SELECT 1::smallint AS sign, f.* FROM kpi_facts f)"


def functions_sql() -> str:
    """The compaction, the rebuild and the reads, with the figures' sums written out."""
    return fill(ADD.replace("{daily_insert_moved}", daily_insert("moved"))
                .replace("{hours_insert_moved}", hours_insert("moved"))
                .replace("{daily_insert_all}", daily_insert(EVERY_FACT))
                .replace("{hours_insert_all}", hours_insert(EVERY_FACT)))


def upgrade():
    from gridpatrol.kpis.services import rebuild_daily

    op.execute(SCHEMA)
    op.execute(functions_sql())
    rebuild_daily(op.get_bind())


def downgrade():
    op.execute("""
        DROP FUNCTION kpi_daily_hours_read(text, text[], date, date, timestamptz, timestamptz, text);
        DROP FUNCTION kpi_daily_read(text, text[], date, date, timestamptz, timestamptz, timestamptz, text);
        DROP FUNCTION kpi_daily_rebuild(text);
        DROP FUNCTION kpi_daily_compact();
        DROP FUNCTION kpi_hours_bucket(float8);
        DROP INDEX ix_kpi_facts_open_handling, ix_kpi_facts_handling_span;
        DROP TABLE kpi_daily_state, kpi_daily_hours, kpi_daily;
        DROP TRIGGER kpi_facts_log_insert ON kpi_facts;
        DROP TRIGGER kpi_facts_log_update ON kpi_facts;
        DROP TRIGGER kpi_facts_log_delete ON kpi_facts;
        DROP FUNCTION kpi_facts_log();
        DROP TABLE kpi_facts_log;
    """)
