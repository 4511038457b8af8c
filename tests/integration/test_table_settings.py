"""Storage settings the migrations give tables whose reads depend on a current visibility map."""
from helpers import sql


def test_cases_and_their_facts_are_vacuumed_every_50000_new_rows(app):
    """Open cases and the KPI facts are read from covering indexes alone only where a vacuum has marked
    their table pages all-visible: both tables are vacuumed after 50,000 new rows whatever their size
    (migration 0027), and the hour buckets by day and by month after 2% of them changed (0021, 0028)."""
    rows = dict(sql(app, "SELECT relname, reloptions FROM pg_class WHERE relname IN ('cases', 'kpi_facts', "
                         "'kpi_daily_hours', 'kpi_monthly_hours') AND relkind = 'r'"))
    for table in ("cases", "kpi_facts"):
        assert set(rows[table]) >= {"autovacuum_vacuum_insert_threshold=50000",
                                    "autovacuum_vacuum_insert_scale_factor=0",
                                    "autovacuum_vacuum_scale_factor=0.02"}, (table, rows[table])
    for table in ("kpi_daily_hours", "kpi_monthly_hours"):
        assert "autovacuum_vacuum_scale_factor=0.02" in rows[table], (table, rows[table])
