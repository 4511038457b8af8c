"""The case list's box: open cases in a box are read through ix_cases_open_point (migration 0017), any
other status set through PostGIS's && on the envelope. Both give what the envelope holds, edges included,
in every scope, page after page."""
import pytest

from helpers import close_case, office, sql  # noqa: F401  (office is a fixture)

OPEN_ONLY = ["reported", "registered,reported", "registered,reported,dispatched,in_progress,handled,returned,suspended"]
MIXED = ["reported,closed", "closed", None]


def _listed(api, bbox, status, per_page=2):
    """Every page of the list for this box: the ids in the order listed, and the total each page said."""
    ids, totals, page = [], set(), 1
    while True:
        query = f"bbox={bbox}&per_page={per_page}&page={page}" + (f"&status={status}" if status else "")
        r = api.get(f"/api/v1/cases?{query}")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        totals.add(body["total"])
        ids += [c["id"] for c in body["items"]]
        if len(body["items"]) < per_page:
            return ids, totals
        page += 1


def _expected(app, bbox, status, scope_code):
    """The same list written out in SQL: newest first, in the caller's scope."""
    x1, y1, x2, y2 = (float(v) for v in bbox.split(","))
    column = {6: "district_code", 9: "street_code", 12: "community_code", 15: "grid_code"}[len(scope_code)]
    rows = sql(app, f"""
        SELECT id FROM cases
        WHERE location && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326) AND {column} = :scope
          AND (CAST(:status AS text[]) IS NULL OR status = ANY(CAST(:status AS text[])))
        ORDER BY reported_at DESC, id DESC""",
               x1=x1, y1=y1, x2=x2, y2=y2, scope=scope_code, status=status.split(",") if status else None)
    return [r[0] for r in rows]


@pytest.fixture
def spread(app, office, make_user):
    """Cases in every status over the district's 3×3 grids, two of them exactly on a box's edges."""
    o = office
    d = o.district["d"]
    x0, y0 = o.district["point"](0)[0] - d / 2, o.district["point"](0)[1] + d / 2   # the district's north-west corner
    made = []
    for i in range(9):
        lon, lat = o.district["point"](i)
        for k in range(2):
            made.append(o.inspector.report(lon=lon + (k - 0.5) * d / 3, lat=lat)["id"])
    on_x_edge = o.inspector.report(lon=x0 + d, lat=y0 - d / 4)["id"]          # on the box's east edge
    on_y_edge = o.inspector.report(lon=x0 + d / 4, lat=y0 - 2 * d)["id"]      # on its south edge
    o.dispatcher.act(made[0], "register")
    o.dispatcher.act(made[1], "register")
    o.dispatcher.act(made[1], "dispatch", {"team_id": o.team})
    o.dispatcher.act(made[2], "reject", {"reason": "not a problem"})
    close_case(o, made[7])
    o.dispatcher.act(made[6], "register")
    o.dispatcher.act(made[6], "suspend", {"reason": "waiting for the owner"})
    o.dispatcher.act(on_y_edge, "register")
    box = f"{x0!r},{y0 - 2 * d!r},{x0 + d!r},{y0!r}"   # grids 0 and 3: the district's west column, upper two
    desks = [(o.district["code"], o.dispatcher),
             (o.district["grids"][0], make_user("dispatcher", scope=[o.district["grids"][0]]))]
    return {"box": box, "edges": (on_x_edge, on_y_edge), "desks": desks, "made": made}


@pytest.mark.parametrize("status", OPEN_ONLY + MIXED)
def test_a_box_lists_what_the_envelope_holds_in_scope(app, spread, status):
    for scope_code, api in spread["desks"]:
        expected = _expected(app, spread["box"], status, scope_code)
        ids, totals = _listed(api, spread["box"], status)
        assert ids == expected, (scope_code, status)
        assert totals == {len(expected)}, (scope_code, status)
    district_view = _expected(app, spread["box"], status, spread["desks"][0][0])
    assert len(district_view) > 0


def test_cases_on_the_edges_are_in_and_the_rest_of_the_district_is_out(app, spread):
    api = spread["desks"][0][1]
    on_x_edge, on_y_edge = spread["edges"]
    ids, _ = _listed(api, spread["box"], "registered,reported")
    assert on_x_edge in ids and on_y_edge in ids
    everywhere, _ = _listed(api, "-180,-90,180,90", "registered,reported", 50)
    assert set(ids) < set(everywhere)
    # of grids 0 and 3's cases (0, 1 and 6, 7) 1 is dispatched, 6 suspended, 7 closed
    made = spread["made"]
    assert set(ids) == {made[0], on_x_edge, on_y_edge}
