"""cases: open cases in a box counted from an index alone

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 18:20:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

OPEN = "status IN ('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"

# The list's box on open cases (a desk drawing a rectangle on the map) counts every open case in it.
# PostGIS's GiST index keeps a box per point, not the point, so each one found was read again from the
# table: at 10 million cases ~10,000 open cases of a few streets lie on ~10,000 table pages (0.9 s
# when they are not in memory). PostgreSQL's own point opclass gives its points back, so with the
# columns the list's filters, scope and order read beside them the count and the page's ids come from
# the index alone (location is there because the planner only takes an index-only scan when every
# column the query names is in the index).
def upgrade():
    op.execute(f"""
        CREATE INDEX ix_cases_open_point ON cases USING gist ((point(ST_X(location), ST_Y(location))))
        INCLUDE (location, status, reported_at, id, district_code, street_code, community_code, grid_code)
        WHERE {OPEN}""")


def downgrade():
    op.execute("DROP INDEX ix_cases_open_point")
