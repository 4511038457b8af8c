"""cases: a trigram index for the list's free-text search

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 08:05:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # pg_trgm ships with PostgreSQL and is a trusted extension: the database's owner may create it
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_cases_search_trgm ON cases USING gin "
               "(number gin_trgm_ops, description gin_trgm_ops, address gin_trgm_ops)")


def downgrade():
    op.execute("DROP INDEX ix_cases_search_trgm")
