"""KPIs of an area (`area=`): the rows a caller scoped to that part of its own scope would get, in the
table, the trend and the drill-down; an area outside the scope does not exist."""
import pytest

GROUPS = ("team", "grid", "street", "category")


@pytest.fixture
def two(make_district, make_user):
    a, b = make_district(), make_district()
    for d, grids in ((a, (0, 1, 4, 4)), (b, (2, 5))):
        inspector = make_user("inspector", scope=[d["code"]])
        dispatcher = make_user("dispatcher", scope=[d["code"]])
        for n, i in enumerate(grids):
            lon, lat = d["point"](i)
            case = inspector.report(lon=lon, lat=lat, category_code="0701" if n % 2 else "0702")
            if n == 0:
                dispatcher.act(case["id"], "register")
    return a, b


def rows(api, group_by, **query):
    r = api.get("/api/v1/kpis", query_string={"group_by": group_by, **query})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["rows"]


def test_the_kpis_of_an_area_are_those_of_a_caller_scoped_to_it(two, make_user):
    a, b = two
    both = make_user("supervisor", scope=[a["code"], b["code"]])
    only_a = make_user("supervisor", scope=[a["code"]])
    one_grid = make_user("supervisor", scope=[a["grids"][4]])
    for group_by in GROUPS:
        mine = rows(only_a, group_by)
        assert mine and rows(both, group_by, area=a["code"]) == mine, group_by
        assert rows(both, group_by, area=a["grids"][4]) == rows(one_grid, group_by), group_by
        assert rows(both, group_by, area="*") == rows(both, group_by)
        # an area larger than the scope: the scope's part of it
        assert rows(one_grid, group_by, area=a["code"]) == rows(one_grid, group_by)
    assert sum(r["reports"] for r in rows(both, "grid", area=a["code"])) == 4
    assert sum(r["reports"] for r in rows(both, "grid")) == 6
    body = both.get("/api/v1/kpis", query_string={"area": a["code"]}).get_json()
    assert body["area"] == a["code"]


def test_an_area_outside_the_scope_is_404_and_a_malformed_one_422(two, make_user):
    a, b = two
    only_a = make_user("supervisor", scope=[a["code"]])
    for path in ("/api/v1/kpis", "/api/v1/kpis/trend", "/api/v1/kpis/export.xlsx"):
        r = only_a.get(path, query_string={"area": b["code"]})
        assert r.status_code == 404 and r.mimetype == "application/problem+json", path
        r = only_a.get(path, query_string={"area": "31"})
        assert r.status_code == 422 and "area" in r.get_json()["errors"], path


def test_the_trend_and_the_drill_down_of_an_area(two, make_user):
    a, b = two
    both = make_user("supervisor", scope=[a["code"], b["code"]])
    only_a = make_user("supervisor", scope=[a["code"]])
    trend = both.get("/api/v1/kpis/trend", query_string={"area": a["code"]}).get_json()
    assert trend["area"] == a["code"]
    assert trend["series"] == only_a.get("/api/v1/kpis/trend").get_json()["series"]
    table = both.get("/api/v1/kpis", query_string={"group_by": "category", "area": a["code"]}).get_json()
    for row in table["rows"]:
        r = both.get("/api/v1/cases", query_string={"kpi": "reports", "group_by": "category", "key": row["key"],
                                                    "area": a["code"], "from": table["from"], "to": table["to"],
                                                    "as_of": table["as_of"], "per_page": 100})
        assert r.status_code == 200, r.get_json()
        items = r.get_json()["items"]
        assert len(items) == row["reports"] and {c["district_code"] for c in items} == {a["code"]}
    r = both.get("/api/v1/cases", query_string={"area": a["code"]})
    assert r.status_code == 422 and "area" in r.get_json()["errors"]
