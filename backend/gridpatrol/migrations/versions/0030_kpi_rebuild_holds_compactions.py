"""kpi_daily_rebuild holds the compactions off; kpi_daily_compact reads the sums' time zone under its lock

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-28 08:40:00

"""
from alembic import op

from gridpatrol.migrations.earlier import migration

# revision identifiers, used by Alembic.
revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


# `gridpatrol kpis rebuild` empties the sums and sums every fact again in one transaction; a compaction
# committing meanwhile (every 5 s beside the app) could leave sums it had written for new keys beside
# the rebuilt ones, or fold log rows into days summed again from the same facts. The rebuild now takes
# the compaction's lock first: it waits for a compaction under way, and those meanwhile fold nothing
# (their try-lock fails). The compaction read the sums' time zone before its lock: one that read it
# before a rebuild into a new zone committed and took the lock after would have folded in the old zone.
# It now reads it under the lock.
REPLACE = (
    ("BEGIN\n  LOCK TABLE kpi_facts IN SHARE MODE;\n",
     "BEGIN\n  PERFORM pg_advisory_xact_lock(hashtext('kpi_daily_compact'));\n  LOCK TABLE kpi_facts IN SHARE MODE;\n"),
    ("  zone text := (SELECT tz FROM kpi_daily_state);\nBEGIN\n"
     "  IF zone IS NULL OR NOT pg_try_advisory_xact_lock(hashtext('kpi_daily_compact')) THEN\n    RETURN 0;\n  END IF;\n",
     "  zone text;\nBEGIN\n"
     "  IF NOT pg_try_advisory_xact_lock(hashtext('kpi_daily_compact')) THEN\n    RETURN 0;\n  END IF;\n"
     "  zone := (SELECT tz FROM kpi_daily_state);\n  IF zone IS NULL THEN\n    RETURN 0;\n  END IF;\n"),
)


def functions_sql() -> tuple[str, str]:
    """The compaction and rebuild as they become, and as 0028 left them."""
    old = migration("0028_kpi_monthly_hours").functions_sql()[0]
    old = old[:old.index("DROP FUNCTION")]
    assert old.count("CREATE OR REPLACE FUNCTION") == 2, old[:200]
    new = old
    for before, after in REPLACE:
        assert new.count(before) == 1, before
        new = new.replace(before, after)
    return new, old


def upgrade():
    op.execute(functions_sql()[0])


def downgrade():
    op.execute(functions_sql()[1])
