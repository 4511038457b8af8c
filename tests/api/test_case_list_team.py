"""The case list filtered by team with no status (a supervisor looking over one team's cases): every
page in either order and the total, read from the team's own index (migration 0026) instead of every
case the team led, counted and sorted."""
import pytest
from sqlalchemy import text

from helpers import office, sent_statements  # noqa: F401  (office is a fixture)


@pytest.fixture
def led(office, make_team):
    """Seven cases dispatched over two teams of the district, one still undispatched."""
    o = office
    other = make_team(kind="community", area_codes=[o.district["code"]])
    ours = []
    for i in range(7):
        lon, lat = o.district["point"](i % 9)
        case = o.inspector.report(lon=lon, lat=lat)["id"]
        o.dispatcher.act(case, "register")
        team = other if i % 3 == 0 else o.team
        o.dispatcher.act(case, "dispatch", {"team_id": team})
        if team == o.team:
            ours.append(case)
    o.inspector.report(lon=lon, lat=lat)
    return o, ours


def _expected(app, team: int, sort: str | None) -> list[int]:
    from gridpatrol.extensions import db
    order = "reported_at ASC, id DESC" if sort == "oldest" else "reported_at DESC, id DESC"
    with app.app_context():
        return db.session.execute(text(f"SELECT id FROM cases WHERE lead_team_id = :t ORDER BY {order}"),
                                  {"t": team}).scalars().all()


@pytest.mark.parametrize("sort", [None, "oldest"])
def test_a_teams_list_pages_its_cases_in_order_with_their_total(app, led, sort):
    o, ours = led
    expected = _expected(app, o.team, sort)
    assert sorted(expected) == sorted(ours) and len(ours) == 4
    seen = []
    for page in (1, 2, 3):
        query = {"team": str(o.team), "per_page": 2, "page": page, **({"sort": sort} if sort else {})}
        body = o.dispatcher.get("/api/v1/cases", query_string=query).get_json()
        assert body["total"] == 4
        seen += [c["id"] for c in body["items"]]
    assert seen == expected


def test_a_teams_list_is_read_in_order_from_the_teams_index(app, led):
    """The page's statement needs no sort (the index walks the team's cases newest first) and the total
    is counted from the index's entries, the areas' columns beside the key."""
    from gridpatrol.extensions import db
    o, _ = led
    with sent_statements(app) as seen:
        assert o.dispatcher.get("/api/v1/cases", query_string={"team": str(o.team), "per_page": 2}).status_code == 200
    statements = [(s, p) for s, p in seen if "FROM cases" in s and s.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 2  # the page (full: the team led more cases than it holds), then the total
    # a few dozen cases in the test database: only the paths a city's size takes are left open. The
    # page: no sort; the total: an index-only scan (plain index scans off: they read the rows)
    off = [("enable_seqscan", "enable_bitmapscan", "enable_sort"),
           ("enable_seqscan", "enable_bitmapscan", "enable_indexscan")]
    plans = []
    with app.app_context():
        # enable_indexscan off weighs index-only scans down too (PostgreSQL 15's cost_index): among paths so
        # weighed the cheapest left wins, and an index-only scan is that only where the visibility map
        # says its pages are settled and the statistics know the team, as in a city's database
        # (autovacuum); these cases were written just now
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) cases")
        for (statement, params), settings in zip(statements, off):
            conn = db.session.connection()
            for setting in settings:
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
            plans.append("\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN (COSTS OFF) " + statement, params)))
            db.session.rollback()
    page, total = plans
    assert "Index Only Scan using ix_cases_team_reported" in total, total
    assert "ix_cases_team_reported" in page and "Sort" not in page, page
