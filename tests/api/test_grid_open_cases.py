"""The map's grid layer counts, under its default filter, from grid_open_cases (migration 0020), which
the writes to cases keep themselves: each grid's open cases and the sorted stage deadlines of those not
suspended. Kept right through the workflow, SQL writes and concurrent reports; the default tile is the
tile counted over the cases; the recount mends a spoiled row; a case's areas are its grid's."""
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from sqlalchemy.exc import IntegrityError

from helpers import close_case, office, sql  # noqa: F401  (office is a fixture)
from test_tiles import code_of, decode, district_bbox, get_tile, tiles_over

OPEN = "('dispatched', 'handled', 'in_progress', 'registered', 'reported', 'returned', 'suspended')"
TRUTH = f"""
    SELECT grid_code, count(*)::int AS open,
           coalesce(array_agg(stage_deadline ORDER BY stage_deadline)
                    FILTER (WHERE status <> 'suspended' AND stage_deadline IS NOT NULL), '{{}}') AS deadlines
    FROM cases WHERE grid_code IS NOT NULL AND status IN {OPEN} GROUP BY grid_code"""
# a filter that keeps every case the default keeps, so the map counts them over the cases
SAME_CASES = "?from=2000-01-01T00:00:00Z"


def _differ(app) -> list:
    """The grids where grid_open_cases and the cases disagree (none, when the rows are kept right)."""
    return sql(app, f"""
        (SELECT grid_code, open, deadlines FROM grid_open_cases WHERE open <> 0 OR deadlines <> '{{}}'
         EXCEPT {TRUTH})
        UNION ALL
        ({TRUTH} EXCEPT SELECT grid_code, open, deadlines FROM grid_open_cases)""")


def _report(o, i):
    lon, lat = o.district["point"](i)
    return o.inspector.report(lon=lon, lat=lat)


def _tiles(api, district, query=""):
    return {t: get_tile(api, "grids", *t, query).get_data()
            for z in (12, 13, 14, 15, 16, 17) for t in tiles_over(district_bbox(district), z)}


def _counts(api, district, z=14, query=""):
    out = {}
    for t in tiles_over(district_bbox(district), z):
        out.update({code_of(f): (f["props"]["cases"], f["props"]["overdue"])
                    for f in decode(get_tile(api, "grids", *t, query).get_data()).get("grids", [])
                    if code_of(f) in district["grids"]})
    return out


def _truth(app, district) -> dict:
    """Open and overdue cases per grid of the district, counted over the cases."""
    rows = sql(app, f"""
        SELECT grid_code, count(*), count(*) FILTER (WHERE status <> 'suspended' AND stage_deadline < now())
        FROM cases WHERE status IN {OPEN} AND grid_code LIKE :d || '%' GROUP BY grid_code""", d=district["code"])
    return {g: next(((n, late) for code, n, late in rows if code == g), (0, 0)) for g in district["grids"]}


def test_the_rows_follow_the_workflow_and_sql_writes_and_the_tile_reads_them(app, office):
    o, g = office, office.district["grids"]
    cases = [_report(o, 4) for _ in range(5)] + [_report(o, 0) for _ in range(3)] + [_report(o, 8)]
    ids = [c["id"] for c in cases]
    o.dispatcher.act(ids[0], "register")                                   # a deadline moves
    o.dispatcher.act(ids[1], "register")
    o.dispatcher.act(ids[1], "dispatch", {"team_id": o.team})
    o.dispatcher.act(ids[2], "register")
    o.dispatcher.act(ids[2], "suspend", {"reason": "waiting for the owner"})  # suspended: open, no deadline
    o.dispatcher.act(ids[3], "reject", {"reason": "not a problem"})          # no longer open
    o.dispatcher.act(ids[5], "merge", {"parent_id": ids[6]})
    close_case(o, ids[7])
    o.handler.act(ids[1], "return", {"reason_code": "not_competent", "note": "not ours"})
    assert _differ(app) == []

    # past their deadlines (two with the same moment: one is taken out of the row, not both)
    sql(app, "UPDATE cases SET stage_deadline = now() - interval '2 hours' WHERE id = ANY(:ids)", ids=[ids[0], ids[4]])
    sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = :i", i=ids[6])
    o.dispatcher.act(ids[2], "resume")
    # a case moved to another grid, one copied and deleted, in SQL
    sql(app, "UPDATE cases SET grid_code = :g, community_code = :c, street_code = :s WHERE id = :i",
        g=g[1], c=g[1][:12], s=g[1][:9], i=ids[8])
    copied = sql(app, f"""
        INSERT INTO cases (number, status, category_code, urgency, location, grid_code, district_code, street_code,
                           community_code, source, stage_started_at, stage_deadline)
        SELECT number || 'c', 'reported', category_code, 'A', location, grid_code, district_code, street_code,
               community_code, source, stage_started_at, stage_deadline FROM cases WHERE id = :i RETURNING id""",
        i=ids[0])[0][0]
    assert _differ(app) == []
    sql(app, "DELETE FROM cases WHERE id = :i", i=copied)
    sql(app, "UPDATE cases SET stage_deadline = stage_deadline + interval '1 second' WHERE id = :i", i=ids[4])
    assert _differ(app) == []

    truth = _truth(app, o.district)
    assert truth[g[4]] == (4, 2) and truth[g[0]] == (1, 1) and truth[g[1]] == (1, 0), truth
    assert _counts(o.dispatcher, o.district) == truth
    kept, counted = _tiles(o.dispatcher, o.district), _tiles(o.dispatcher, o.district, SAME_CASES)
    assert kept == counted, "the tiles from the kept rows (bins, kept grids, grids cut afresh) are those " \
                            "counted over the cases, byte for byte"
    bins = [f for t, data in kept.items() if t[0] == 12 for f in decode(data).get("bins", [])]
    assert sum(f["props"]["cases"] for f in bins) == sum(n for n, _ in truth.values())
    assert sum(f["props"]["overdue"] for f in bins) == 3


def test_concurrent_reports_in_one_grid_are_each_counted(app, office):
    n = 8
    barrier = Barrier(n)

    def inspector(i):
        barrier.wait()
        return [_report(office, 4)["id"] for _ in range(3)]

    with ThreadPoolExecutor(n) as pool:
        made = [c for batch in pool.map(inspector, range(n)) for c in batch]
    assert len(set(made)) == 3 * n
    assert _counts(office.dispatcher, office.district)[office.district["grids"][4]] == (3 * n, 0)
    assert _differ(app) == []


def test_a_spoiled_row_shows_in_the_tile_and_the_recount_mends_it(app, office):
    o, g = office, office.district["grids"]
    for _ in range(3):
        _report(o, 4)
    assert _counts(o.dispatcher, o.district)[g[4]] == (3, 0)
    sql(app, "UPDATE grid_open_cases SET open = open + 100 WHERE grid_code = :g", g=g[4])
    sql(app, "INSERT INTO grid_open_cases VALUES (:g, 7, ARRAY[now() - interval '1 day'])", g=g[2])
    assert _counts(o.dispatcher, o.district)[g[4]] == (103, 0), "the default tile reads the kept rows"
    assert _counts(o.dispatcher, o.district)[g[2]] == (7, 1)
    assert _counts(o.dispatcher, o.district, query=SAME_CASES)[g[4]] == (3, 0), "any other filter counts cases"

    runner = app.test_cli_runner()
    assert runner.invoke(args=["cases", "recount"]).output.strip() == "2 case counts mended"
    assert _counts(o.dispatcher, o.district)[g[4]] == (3, 0)
    assert _counts(o.dispatcher, o.district)[g[2]] == (0, 0)
    assert _differ(app) == []
    assert runner.invoke(args=["cases", "recount"]).output.strip() == "0 case counts mended"


def test_a_case_keeps_the_areas_of_its_grid(app, office):
    case = _report(office, 4)
    assert case["grid_code"] == office.district["grids"][4]
    with pytest.raises(IntegrityError, match="ck_cases_areas_of_grid"):
        sql(app, "UPDATE cases SET community_code = :c WHERE id = :i", c=office.district["code"] + "001002",
            i=case["id"])
    with pytest.raises(IntegrityError, match="ck_cases_areas_of_grid"):
        sql(app, "UPDATE cases SET grid_code = :g WHERE id = :i", g="990000001001001", i=case["id"])


def test_a_stage_deadline_keeps_its_start(app, office):
    """The timer colours the time between a stage's start and its deadline: a deadline without a start
    (which made every list page holding the case answer 500) is refused by the database."""
    case = _report(office, 4)
    started = sql(app, "SELECT stage_started_at FROM cases WHERE id = :i", i=case["id"])[0][0]
    assert started is not None
    with pytest.raises(IntegrityError, match="ck_cases_stage_started"):
        sql(app, "UPDATE cases SET stage_started_at = NULL WHERE id = :i", i=case["id"])
    assert sql(app, "SELECT stage_started_at FROM cases WHERE id = :i", i=case["id"])[0][0] == started
    # a stage without a deadline (suspended, closed) may drop both
    sql(app, "UPDATE cases SET stage_started_at = NULL, stage_deadline = NULL WHERE id = :i", i=case["id"])
