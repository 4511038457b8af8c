"""kpi_daily_hours read from its index alone

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27 07:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

# The handling-hour percentiles of a KPI read over the daily sums (kpi_daily_hours_read) take every
# (day, key, bucket) row of the period: ~9,000 rows for 30 days by team at a million cases. Written by a
# GROUP BY (rebuild) and then updated wherever there is room as cases are handled, a period's rows lie
# scattered over the heap (5,800 pages for those 9,000 rows in the bench's database): most of the KPI
# request's time. With the count in the unique index the read is an index-only scan of the period's
# stretch of the index. Pages of the days still being written are read from the heap until vacuumed,
# so this table is vacuumed after 2% of it changed, not the default 20% (a vacuum skips the pages
# already all-visible). The index still serves the compaction's ON CONFLICT: its key columns are
# unchanged. The price: a fold that changes a count can no longer update the row in place without
# touching the index (no HOT update), so each changed bucket adds an index entry until the next vacuum.
# A fold changes the buckets of the cases handled since the last one, not of every report.
UPGRADE = """
CREATE UNIQUE INDEX uq_kpi_daily_hours_n ON kpi_daily_hours (group_by, day, district_code, key, bucket)
  INCLUDE (n) NULLS NOT DISTINCT;
DROP INDEX uq_kpi_daily_hours;
ALTER INDEX uq_kpi_daily_hours_n RENAME TO uq_kpi_daily_hours;
ALTER TABLE kpi_daily_hours SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
"""

DOWNGRADE = """
ALTER TABLE kpi_daily_hours RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
CREATE UNIQUE INDEX uq_kpi_daily_hours_key ON kpi_daily_hours (group_by, day, district_code, key, bucket)
  NULLS NOT DISTINCT;
DROP INDEX uq_kpi_daily_hours;
ALTER INDEX uq_kpi_daily_hours_key RENAME TO uq_kpi_daily_hours;
"""


def upgrade():
    op.execute(UPGRADE)


def downgrade():
    op.execute(DOWNGRADE)
