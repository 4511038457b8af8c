"""idempotency: a BRIN index on created_at, for purging the keys past their keeping

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

# `gridpatrol purge-keys` deletes the keys older than IDEMPOTENCY_KEEP_DAYS, oldest first. The table
# is insert-only (0024) and its rows are written in the order of their created_at, so a BRIN index
# finds them at almost no cost to each write (a B-tree would be one more index entry per write from
# the field).


def upgrade():
    op.create_index('ix_idempotency_keys_created_brin', 'idempotency_keys', ['created_at'], unique=False,
                    postgresql_using='brin')


def downgrade():
    op.drop_index('ix_idempotency_keys_created_brin', table_name='idempotency_keys', postgresql_using='brin')
