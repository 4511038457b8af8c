"""The case list without filters for a caller of several areas, or of the whole deployment: each area's
cases are read from its own index and merged (cases.services._scope_parts). Every page, in either order,
is the page of one query over every case in scope."""
import pytest
from sqlalchemy import text


@pytest.fixture
def two(make_district, make_user):
    a, b = make_district(), make_district()
    reporters = [make_user("inspector", scope=[d["code"]]) for d in (a, b)]
    ids = []
    for i in range(5):  # interleaved in time: the merge has to take turns
        for k, (d, inspector) in enumerate(zip((a, b), reporters)):
            lon, lat = d["point"]((i + k) % 9)
            ids.append(inspector.report(lon=lon, lat=lat)["id"])
    return a, b, ids


def _expected(app, where: str, params: dict, sort: str, page: int, per_page: int) -> list[int]:
    from gridpatrol.extensions import db
    order = "reported_at ASC, id DESC" if sort == "oldest" else "reported_at DESC, id DESC"
    with app.app_context():
        return db.session.execute(text(f"SELECT id FROM cases WHERE {where} ORDER BY {order} "
                                       f"OFFSET :skip LIMIT :n"), {**params, "skip": (page - 1) * per_page,
                                                                   "n": per_page}).scalars().all()


def _pages(api, sort):
    for page in (1, 2, 3, 4, 6):
        query = f"per_page=3&page={page}" + (f"&sort={sort}" if sort else "")
        r = api.get(f"/api/v1/cases?{query}")
        assert r.status_code == 200, r.get_json()
        yield page, r.get_json()


@pytest.mark.parametrize("sort", [None, "oldest"])
def test_a_caller_of_several_areas_gets_the_pages_of_one_query(app, two, make_user, sort):
    a, b, ids = two
    callers = [
        ([a["code"], b["code"]], "district_code IN (:a, :b)"),
        ([a["code"] + "001", b["code"]], "(street_code = :a || '001' OR district_code = :b)"),
        ([a["grids"][0], a["grids"][1], b["code"] + "001001"],
         "(grid_code IN (:a || '001001001', :a || '001001002') OR community_code = :b || '001001')"),
        ([a["code"], a["code"] + "001001", b["grids"][2]], "(district_code = :a OR grid_code = :b || '001001003')"),
    ]
    for scope, where in callers:
        api = make_user("dispatcher", scope=scope)
        seen = []
        for page, body in _pages(api, sort):
            got = [c["id"] for c in body["items"]]
            assert got == _expected(app, where, {"a": a["code"], "b": b["code"]}, sort, page, 3), (scope, page)
            seen += got
        assert body["total"] == len(_expected(app, where, {"a": a["code"], "b": b["code"]}, sort, 1, 1000))
        assert set(seen) <= set(ids) and len(seen) == len(set(seen))
    everything = make_user("dispatcher", scope=[a["code"], b["code"]])
    assert sorted(c["id"] for c in everything.get("/api/v1/cases?per_page=50").get_json()["items"]) == sorted(ids)


@pytest.mark.parametrize("sort", [None, "oldest"])
def test_a_caller_of_the_whole_deployment_gets_the_pages_of_one_query(app, two, make_user, sort):
    supervisor = make_user("supervisor", scope=["*"])
    for page, body in _pages(supervisor, sort):
        assert [c["id"] for c in body["items"]] == _expected(app, "true", {}, sort, page, 3), page
