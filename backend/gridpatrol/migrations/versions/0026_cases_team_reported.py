"""cases: a team's cases in time order, with the areas' columns, for the list filtered by team

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-28 00:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

# GET /cases?team=… with no status (a supervisor looking over one team's cases) read every case the team
# ever led through ix_cases_team_status to count them and to sort them for the page: 113 + 145 ms at
# 1M cases, ~10× at 10M. This index walks the team's cases newest first for the page (oldest first: in
# the index's order, the ties of one moment sorted) and counts them from its own entries, the areas'
# columns beside the key (7 ms and 0.05 ms at 1M; docs/performance.md, sixteenth round; a caller whose
# scope names grids has the count read from the rows). Partial: a report has no team yet, so the ingest
# does not pay for it; a case gets its entry when dispatched, and another at each later change of its
# row. 66 MB at 1M cases. Built without CONCURRENTLY, like the other migrations: writes to cases wait
# while it is made (about a second at 1M cases on a 2-CPU machine).
NAME = 'ix_cases_team_reported'
INCLUDE = ['district_code', 'street_code', 'community_code']


def upgrade():
    op.create_index(NAME, 'cases', ['lead_team_id', 'reported_at', 'id'], unique=False, postgresql_include=INCLUDE,
                    postgresql_where=sa.text('lead_team_id IS NOT NULL'))


def downgrade():
    op.drop_index(NAME, table_name='cases')
