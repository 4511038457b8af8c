"""cases and kpi_facts vacuumed every 50,000 new rows, so the index-only reads of open cases stay mostly index-only

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-28 03:45:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

# The map's open cases (ix_cases_open_tile, a case tile's clusters), the duplicate search and the KPIs'
# facts read covering indexes alone: an entry is answered from the index only when the visibility map
# says its table page is all-visible, which only a vacuum sets. Autovacuum's default waits for new rows
# to reach 20% of the table: 2,000,000 cases at 10 million, a month of a city's reports, and open cases
# are the newest ones, so most of them were read from the table as well. On the bench city at
# 10,105,549 cases, after a run had added 105,549 cases: the case tiles' p50 5.35 ms and p95 13.58 ms in
# process, and after a VACUUM of cases (1.4 s: it scans only the pages not all-visible, and with no
# dead rows it skips the indexes) 4.95 and 6.94 ms (docs/performance.md, seventeenth round). Now a
# vacuum every 50,000 new rows whatever the table's size (about a day of a city's reports), and after
# 2% of the rows changed (status changes) rather than 20%.
TABLES = ("cases", "kpi_facts")
SETTINGS = {"autovacuum_vacuum_insert_threshold": 50000, "autovacuum_vacuum_insert_scale_factor": 0,
            "autovacuum_vacuum_scale_factor": 0.02}


def upgrade():
    settings = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({settings})")


def downgrade():
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(SETTINGS)})")
