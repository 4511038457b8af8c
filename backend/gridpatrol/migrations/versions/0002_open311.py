"""open311: API keys, the requests citizens posted (token, attributes, media), key uses for the rate limit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:53:00.696753

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('open311_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('cardinality(scope) > 0', name=op.f('ck_open311_keys_has_scope')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_open311_keys_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_open311_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_open311_keys_key_hash'))
    )
    op.create_table('open311_key_uses',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['open311_keys.id'], name=op.f('fk_open311_key_uses_api_key_id_open311_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_open311_key_uses'))
    )
    with op.batch_alter_table('open311_key_uses', schema=None) as batch_op:
        batch_op.create_index('ix_open311_key_uses_key_at', ['api_key_id', 'at'], unique=False)

    op.create_table('open311_requests',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('media_url', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("media_url IS NULL OR media_url ~* '^https?://'", name=op.f('ck_open311_requests_media_url_http')),
    sa.ForeignKeyConstraint(['api_key_id'], ['open311_keys.id'], name=op.f('fk_open311_requests_api_key_id_open311_keys')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_open311_requests_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_open311_requests')),
    sa.UniqueConstraint('case_id', name=op.f('uq_open311_requests_case_id')),
    sa.UniqueConstraint('token', name=op.f('uq_open311_requests_token'))
    )
    with op.batch_alter_table('open311_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_open311_requests_api_key_id'), ['api_key_id'], unique=False)



def downgrade():
    with op.batch_alter_table('open311_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_open311_requests_api_key_id'))

    op.drop_table('open311_requests')
    with op.batch_alter_table('open311_key_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_open311_key_uses_key_at')

    op.drop_table('open311_key_uses')
    op.drop_table('open311_keys')
