"""cases: a case number found by its beginning or its end; trigrams for descriptions and addresses only

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 18:40:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


# The list's free text found a number anywhere inside a case number through trigrams, and digits
# make poor trigrams: at 10 million cases `000` or the year's `202` are in nearly every number, and
# finding one number read ~10,000 index pages (56 ms, twice a request: the total and the page). A
# number is now found by its beginning or its end (a number typed whole, a day's prefix, the last
# digits read out over the phone), each a B-tree range; text_pattern_ops whatever the database's
# collation, so LIKE 'prefix%' is a range in any locale.
def upgrade():
    op.execute("CREATE INDEX ix_cases_number_prefix ON cases (number text_pattern_ops)")
    op.execute("CREATE INDEX ix_cases_number_suffix ON cases (reverse(number) text_pattern_ops)")
    op.execute("CREATE INDEX ix_cases_text_trgm ON cases USING gin (description gin_trgm_ops, address gin_trgm_ops)")
    op.execute("DROP INDEX ix_cases_search_trgm")


def downgrade():
    op.execute("CREATE INDEX ix_cases_search_trgm ON cases USING gin "
               "(number gin_trgm_ops, description gin_trgm_ops, address gin_trgm_ops)")
    op.execute("DROP INDEX ix_cases_text_trgm")
    op.execute("DROP INDEX ix_cases_number_suffix")
    op.execute("DROP INDEX ix_cases_number_prefix")
