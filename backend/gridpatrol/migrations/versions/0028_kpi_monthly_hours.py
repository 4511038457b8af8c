"""kpi_monthly_hours: the handling hours' buckets summed again per local month

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-28 05:10:00

"""
from alembic import op

from gridpatrol.migrations.earlier import migration

# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


# The handling-hour percentiles of 30-day KPIs by team at 10 million cases read 27,703 (day, district,
# team, bucket) rows of kpi_daily_hours to fold them into 3,220 (team, bucket) pairs: 12.5 of the
# request's 22.5 ms (docs/performance.md, seventeenth round). The same buckets per local month (`day` =
# its first day), as kpi_monthly does for the figures (migration 0015): a period up to now takes its
# whole months from here and only its first partial month's days from kpi_daily_hours. The compaction
# folds the log into both in its one statement; the table is read from its index alone (0021's reasons).
SCHEMA = """
CREATE TABLE kpi_monthly_hours (LIKE kpi_daily_hours);
CREATE UNIQUE INDEX uq_kpi_monthly_hours ON kpi_monthly_hours (group_by, day, district_code, key, bucket)
  INCLUDE (n) NULLS NOT DISTINCT;
ALTER TABLE kpi_monthly_hours SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
"""

# (qualified: in the rebuild's PL/pgSQL `n` is also a variable)
MONTHLY_HOURS_FROM_DAYS = ("INSERT INTO kpi_monthly_hours SELECT h.group_by, date_trunc('month', h.day)::date, "
                           "h.district_code, h.key, h.bucket, sum(h.n) FROM kpi_daily_hours h GROUP BY 1, 2, 3, 4, 5")

# as before (migration 0011), with the whole months [m0, m1) (d0 <= m0 <= m1 <= d1, first days of months;
# m0 = m1: none) read from kpi_monthly_hours instead of their days, as kpi_daily_read does (0015); and
# the rows as read, each a part of a (key, bucket)'s count, for the caller to sum (it groups them by key
# anyway: one grouping, not two)
HOURS_READ = """
CREATE FUNCTION kpi_daily_hours_read(g text, districts text[], d0 date, d1 date, m0 date, m1 date,
                                     p_from timestamptz, p_to timestamptz, zone text)
RETURNS TABLE (key text, bucket int, n bigint) LANGUAGE sql STABLE AS $$
    SELECT d.key, d.bucket, d.n FROM kpi_daily_hours d
    WHERE d.group_by = g AND d.day >= d0 AND d.day < m0
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT d.key, d.bucket, d.n FROM kpi_monthly_hours d
    WHERE d.group_by = g AND d.day >= m0 AND d.day < m1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT d.key, d.bucket, d.n FROM kpi_daily_hours d
    WHERE d.group_by = g AND d.day >= m1 AND d.day < d1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
{log_and_edges}
$$;
"""
OLD_HOURS_READ_SIGNATURE = "kpi_daily_hours_read(text, text[], date, date, timestamptz, timestamptz, text)"


def functions_sql() -> tuple[str, str]:
    """The compaction and rebuild of 0015 writing the months' buckets too, and the new hours read; the
    compaction and rebuild of 0015 as they were."""
    daily, monthly = migration("0011_kpi_daily"), migration("0015_kpi_monthly")
    m15 = monthly.functions_sql()[0]
    before = m15[:m15.index("DROP FUNCTION kpi_daily_read(")]
    day = "(s.registered_at AT TIME ZONE zone)::date"
    moved = daily.hours_insert("moved")
    assert moved.count(day) == 1 and moved.count("kpi_daily_hours") == 2
    monthly_moved = (moved.replace(day, f"date_trunc('month', {day.removesuffix('::date')})::date")
                     .replace("kpi_daily_hours", "kpi_monthly_hours"))
    after = before
    for old, new in (("  hours AS (", f"  month_hours AS ({monthly_moved} RETURNING 1),\n  hours AS ("),
                     ("  DELETE FROM kpi_daily_hours;\n", "  DELETE FROM kpi_daily_hours;\n  DELETE FROM kpi_monthly_hours;\n"),
                     ("  SELECT count(*) INTO n FROM kpi_daily;\n",
                      f"  {MONTHLY_HOURS_FROM_DAYS};\n  SELECT count(*) INTO n FROM kpi_daily;\n")):
        assert after.count(old) == 1, old
        after = after.replace(old, new)
    # 0011's hours read after its first branch (the days): the log not folded yet and the ends' differences
    read_0011 = daily.ADD[daily.ADD.index("CREATE FUNCTION kpi_daily_hours_read("):]
    start = read_0011.index("    SELECT g.key, kpi_hours_bucket(s.handling_hours), s.sign")
    log_and_edges = read_0011[start:read_0011.rindex("$$;")].rstrip()
    grouped = "\n  ) parts\n  GROUP BY key, bucket"
    assert log_and_edges.endswith(grouped)
    log_and_edges = log_and_edges.removesuffix(grouped)
    read = daily.fill(HOURS_READ.replace("{log_and_edges}", log_and_edges))
    return after + f"DROP FUNCTION {OLD_HOURS_READ_SIGNATURE};\n" + read, before


def upgrade():
    new, _ = functions_sql()
    # a compaction running meanwhile (the old one, folding into the days only) would fold log rows into
    # days the months below were already summed from: this waits for one under way to commit, and the
    # compactions meanwhile fold nothing (their try-lock fails) until this commits
    op.execute("SELECT pg_advisory_xact_lock(hashtext('kpi_daily_compact'))")
    op.execute(SCHEMA)
    op.execute(new)
    op.execute(MONTHLY_HOURS_FROM_DAYS)


def downgrade():
    _, old = functions_sql()
    daily = migration("0011_kpi_daily")
    read_0011 = daily.functions_sql()
    op.execute("DROP FUNCTION kpi_daily_hours_read(text, text[], date, date, date, date, timestamptz, timestamptz, text)")
    op.execute(old)
    op.execute(read_0011[read_0011.index("CREATE FUNCTION kpi_daily_hours_read("):])
    op.execute("DROP TABLE kpi_monthly_hours")
