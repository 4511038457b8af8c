"""cases: a cleared extension request or contact is SQL NULL, never JSON null

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 07:45:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE cases SET pending_extension = NULL WHERE jsonb_typeof(pending_extension) = 'null'")
    op.execute("UPDATE cases SET contact = NULL WHERE jsonb_typeof(contact) = 'null'")
    op.create_check_constraint(op.f('ck_cases_pending_extension_object'), 'cases',
                               "pending_extension IS NULL OR jsonb_typeof(pending_extension) = 'object'")
    op.create_check_constraint(op.f('ck_cases_contact_object'), 'cases',
                               "contact IS NULL OR jsonb_typeof(contact) = 'object'")


def downgrade():
    op.drop_constraint(op.f('ck_cases_contact_object'), 'cases', type_='check')
    op.drop_constraint(op.f('ck_cases_pending_extension_object'), 'cases', type_='check')
