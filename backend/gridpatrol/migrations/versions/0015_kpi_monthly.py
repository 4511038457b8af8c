"""kpi_monthly: the daily KPI sums summed again per local month

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 16:30:00

"""
from alembic import op

from gridpatrol.migrations.earlier import migration

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def _daily_module():
    """Migration 0011, whose SQL pieces (the figures' sums, the groupings, the ends' differences) the
    functions below are written with."""
    return migration("0011_kpi_daily")


# A trend over the whole history (by category and month at 10 million cases) summed ~220,000 day rows of
# kpi_daily. The same sums per local month (`day` = its first day) are ~30 times fewer rows. The
# compaction folds the log into both levels in its one statement; a read takes whole months
# [m0, m1) from here and the days [d0, m0) and [m1, d1) from kpi_daily (services._daily).
SCHEMA = """
CREATE TABLE kpi_monthly (LIKE kpi_daily);
CREATE UNIQUE INDEX uq_kpi_monthly ON kpi_monthly (group_by, day, district_code, key) NULLS NOT DISTINCT;
"""

FUNCTIONS = """
{compact_and_rebuild}
DROP FUNCTION kpi_daily_read(text, text[], date, date, timestamptz, timestamptz, timestamptz, text);
-- as before (migration 0011), with the whole months [m0, m1) (d0 <= m0 <= m1 <= d1, first days of
-- months; m0 = m1: none) read from kpi_monthly instead of their days
CREATE FUNCTION kpi_daily_read(g text, districts text[], d0 date, d1 date, m0 date, m1 date, p_from timestamptz,
                               p_to timestamptz, p_as_of timestamptz, zone text)
RETURNS TABLE (key text, day date, {columns}) LANGUAGE sql STABLE AS $$
    SELECT d.key, d.day, {plain} FROM kpi_daily d
    WHERE d.group_by = g AND d.day >= d0 AND d.day < m0
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT d.key, d.day, {plain} FROM kpi_monthly d
    WHERE d.group_by = g AND d.day >= m0 AND d.day < m1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    SELECT d.key, d.day, {plain} FROM kpi_daily d
    WHERE d.group_by = g AND d.day >= m1 AND d.day < d1
      AND (districts IS NULL OR d.district_code = ANY(districts))
    UNION ALL
    {log_and_edges}
$$;
"""

READ_TAIL_START = "    SELECT g.key, (a.at AT TIME ZONE zone)::date, {sums}\n    FROM kpi_facts_log s"


def functions_sql() -> tuple[str, str]:
    """The new compaction, rebuild and read; the statement that sums the kept days per month."""
    m = _daily_module()
    # the 0011 read after its first branch (the days): the log not folded yet and the ends' differences
    read_0011 = m.ADD[m.ADD.index("CREATE FUNCTION kpi_daily_read("):m.ADD.index("CREATE FUNCTION kpi_daily_hours_read(")]
    log_and_edges = read_0011[read_0011.index(READ_TAIL_START):read_0011.rindex("$$;")].strip()
    daily_moved = m.daily_insert("moved")
    day = "(a.at AT TIME ZONE zone)::date"
    assert daily_moved.count(day) == 1 and daily_moved.startswith("INSERT INTO kpi_daily ")
    monthly_moved = (daily_moved.replace(day, f"date_trunc('month', {day.removesuffix('::date')})::date")
                     .replace("INSERT INTO kpi_daily ", "INSERT INTO kpi_monthly ").replace("kpi_daily.", "kpi_monthly."))
    sums = ", ".join(f"sum({name})" for name, _ in m.FIGURE_SUMS)
    monthly_from_days = (f"INSERT INTO kpi_monthly SELECT group_by, date_trunc('month', day)::date, district_code, key, "
                         f"{sums} FROM kpi_daily GROUP BY 1, 2, 3, 4")
    # 0011's compaction and rebuild, writing the months too
    keep = m.ADD[m.ADD.index("CREATE FUNCTION kpi_daily_compact()"):m.ADD.index("-- The figures of grouping `g`")]
    for old, new in (("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
                     ("  hours AS (", "  months AS ({monthly_insert_moved} RETURNING 1),\n  hours AS ("),
                     ("  DELETE FROM kpi_daily;\n", "  DELETE FROM kpi_daily;\n  DELETE FROM kpi_monthly;\n"),
                     ("  {daily_insert_all};\n", "  {daily_insert_all};\n  {monthly_from_days};\n")):
        assert keep.count(old) in (1, 2), old
        keep = keep.replace(old, new)
    sql = (FUNCTIONS.replace("{compact_and_rebuild}", keep).replace("{log_and_edges}", log_and_edges)
           .replace("{daily_insert_moved}", daily_moved).replace("{monthly_insert_moved}", monthly_moved)
           .replace("{hours_insert_moved}", m.hours_insert("moved"))
           .replace("{daily_insert_all}", m.daily_insert(m.EVERY_FACT))
           .replace("{hours_insert_all}", m.hours_insert(m.EVERY_FACT)))
    return m.fill(sql).replace("{monthly_from_days}", monthly_from_days), monthly_from_days


def upgrade():
    functions, monthly_from_days = functions_sql()
    # a compaction running meanwhile (the old one, folding into the days only) would fold log rows
    # into days the months below were already summed from: compactions wait until this commits
    op.execute("SELECT pg_advisory_xact_lock(hashtext('kpi_daily_compact'))")
    op.execute(SCHEMA)
    op.execute(functions)
    op.execute(monthly_from_days)


def downgrade():
    m = _daily_module()
    op.execute("DROP FUNCTION kpi_daily_read(text, text[], date, date, date, date, timestamptz, timestamptz, "
               "timestamptz, text)")
    old = m.functions_sql()
    # 0011's compaction, rebuild and read again (its hours read is unchanged)
    op.execute(old[:old.index("CREATE FUNCTION kpi_daily_hours_read(")]
               .replace("CREATE FUNCTION kpi_daily_compact()", "CREATE OR REPLACE FUNCTION kpi_daily_compact()")
               .replace("CREATE FUNCTION kpi_daily_rebuild(", "CREATE OR REPLACE FUNCTION kpi_daily_rebuild("))
    op.execute("DROP TABLE kpi_monthly")
