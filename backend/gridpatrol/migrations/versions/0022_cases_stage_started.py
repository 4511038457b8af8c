"""cases: a stage deadline has the moment its stage started

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 07:20:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

# A case's timer (services.timer) colours the time left between its stage's start and deadline. Every
# write of the product sets both or neither; a row with a deadline and no start (written by hand) made
# every list page holding that case answer 500. Adding the constraint checks the rows written before
# (one scan of cases, writes held off meanwhile): one that breaks the rule stops the migration with the
# constraint's name.
UPGRADE = """
ALTER TABLE cases ADD CONSTRAINT ck_cases_stage_started
  CHECK (stage_deadline IS NULL OR stage_started_at IS NOT NULL);
"""


def upgrade():
    op.execute(UPGRADE)


def downgrade():
    op.execute("ALTER TABLE cases DROP CONSTRAINT ck_cases_stage_started")
