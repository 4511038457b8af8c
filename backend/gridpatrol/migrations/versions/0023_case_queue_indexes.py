"""cases: the dispatcher's extension and escalated queues from indexes of their own cases

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27 16:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

# A desk polls its queue counts every 5 s (GET /cases/queue-counts). The extension and escalated
# queues were counted over every open case in the caller's scope, and their tabs' pages walked every
# case newest first to find their few. Each now has an index of its own cases only (a few rows: cases
# waiting on an extension decision, or escalated), with the scope's columns beside the key, so a count
# or a page reads those entries and nothing else. The overdue queue keeps its count over the open
# cases: an index of every running case by its deadline made that count 2.7 times faster but cost every
# report an entry (docs/performance.md, thirteenth round).
SCOPE = ['status', 'district_code', 'street_code', 'community_code', 'grid_code']
INDEXES = (
    ('ix_cases_pending_extension', ['reported_at', 'id'], SCOPE, 'pending_extension IS NOT NULL'),
    ('ix_cases_escalated', ['reported_at', 'id'], SCOPE, 'escalation_level > 0'),
)


def upgrade():
    for name, key, include, where in INDEXES:
        op.create_index(name, 'cases', key, unique=False, postgresql_include=include, postgresql_where=sa.text(where))


def downgrade():
    for name, *_ in INDEXES:
        op.drop_index(name, table_name='cases')
