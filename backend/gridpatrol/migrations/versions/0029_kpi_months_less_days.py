"""kpi_daily_read, kpi_daily_hours_read: a month read whole, less its days outside the period

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-28 08:30:00

"""
from alembic import op

from gridpatrol.migrations.earlier import migration

# revision identifiers, used by Alembic.
revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


# The reads took a period's whole months from the monthly sums and the rest of its days from the daily
# ones: 30 days up to now on the 2nd of a month read 28 days of rows, on the 28th two, and 30 days
# ending on a month's first day held no whole month. Now the months [m0, m1) may also begin before the
# days [d0, d1) or end after them, and the days between are taken away: the days [d0, m0) added or
# [m0, d0) taken away, likewise [m1, d1) or [d1, m1). The caller (services.sum_bounds) picks whichever
# reads the fewest rows. A month's row is the sum of its days' rows: the compaction writes both from
# the same log rows in one statement, the rebuild sums the months from the days (0015, 0028), so the
# difference is exact.
FIRST_DAYS = "d.day >= d0 AND d.day < m0"
LAST_DAYS = "d.day >= m1 AND d.day < d1"
TAKEN_AWAY = {FIRST_DAYS: "d.day >= m0 AND d.day < d0", LAST_DAYS: "d.day >= d1 AND d.day < m1"}


def _taken_away(read: str, select: str, negated: str) -> str:
    """`read` (a CREATE FUNCTION) as CREATE OR REPLACE, with each of its two days' branches followed by
    the same branch over the days it may take away instead, `select` (its output columns) `negated`."""
    out = read.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    for days, away in TAKEN_AWAY.items():
        start = out.rindex(select, 0, out.index(days))
        end = out.index("UNION ALL\n", start) + len("UNION ALL\n")
        branch = out[start:end]
        assert branch.count(select) == 1 and branch.count(days) == 1, branch
        out = out[:end] + "    " + branch.replace(select, negated).replace(days, away) + out[end:]
    return out


def functions_sql() -> tuple[str, str]:
    """Both reads with their days taken away (new); both as they were (0015's and 0028's)."""
    daily, monthly, hours = migration("0011_kpi_daily"), migration("0015_kpi_monthly"), migration("0028_kpi_monthly_hours")
    counts_read = monthly.functions_sql()[0]
    counts_read = counts_read[counts_read.index("CREATE FUNCTION kpi_daily_read("):]
    hours_read = hours.functions_sql()[0]
    hours_read = hours_read[hours_read.index("CREATE FUNCTION kpi_daily_hours_read("):]
    names = [name for name, _ in daily.FIGURE_SUMS]
    plain = "SELECT d.key, d.day, " + ", ".join(names) + " FROM"
    new = (_taken_away(counts_read, plain, "SELECT d.key, d.day, " + ", ".join(f"-{n}" for n in names) + " FROM")
           + _taken_away(hours_read, "SELECT d.key, d.bucket, d.n FROM", "SELECT d.key, d.bucket, -d.n FROM"))
    old = "".join(r.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) for r in (counts_read, hours_read))
    return new, old


def upgrade():
    op.execute(functions_sql()[0])


def downgrade():
    op.execute(functions_sql()[1])
