"""cases: a BRIN index on reported_at, for the KPIs of a period

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 08:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_cases_reported_brin', 'cases', ['reported_at'], unique=False, postgresql_using='brin')


def downgrade():
    op.drop_index('ix_cases_reported_brin', table_name='cases', postgresql_using='brin')
