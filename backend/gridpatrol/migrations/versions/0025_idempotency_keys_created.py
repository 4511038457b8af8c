"""idempotency: an index on created_at, for purging the keys past their keeping

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-28 00:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

# `gridpatrol purge-keys` deletes the keys older than IDEMPOTENCY_KEEP_DAYS, oldest first, a batch at a
# time. A B-tree, not BRIN: once the purge runs, new keys fill the pages it freed, and a BRIN range keeps
# the oldest moment it ever held, so within one keeping every range would match and each purge would
# read the whole table. Keys are written in time order, so each write adds its entry at the index's
# right edge.


def upgrade():
    op.create_index('ix_idempotency_keys_created', 'idempotency_keys', ['created_at'], unique=False)


def downgrade():
    op.drop_index('ix_idempotency_keys_created', table_name='idempotency_keys')
