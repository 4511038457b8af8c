"""The case list's totals read case_counts (migration 0016), which the writes to cases keep themselves:
every total is count(*) of the same filters, through the workflow, concurrent reports and SQL writes."""
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from helpers import close_case, office, sent_statements, sql  # noqa: F401  (office is a fixture)

KEY = "district_code, street_code, community_code, status, urgency"
# the queues that are a status (the others are counted over cases whatever the scope)
QUEUE_STATUS = {"register": ["reported"], "dispatch": ["registered"], "returned": ["returned"]}


def _filters(d):
    """The list filters a desk uses that the counts answer, and some they do not (grid, category)."""
    street, community = d + "001", d + "001001"
    return [
        {}, {"status": "reported"}, {"status": "registered,reported"}, {"status": "closed,rejected,merged"},
        {"queue": "register"}, {"queue": "dispatch"}, {"queue": "returned"},
        {"urgency": "A"}, {"urgency": "A", "status": "registered", "sort": "oldest"}, {"urgency": "B,C"},
        {"street": street}, {"community": community}, {"street": street, "status": "registered,reported"},
        {"community": community, "urgency": "B", "queue": "register"}, {"community": d + "001002"},
        {"grid": d + "001001005"}, {"category": "0701", "status": "reported"},
    ]


def _expected(app, scope_code, args) -> int:
    """count(*) of the cases a caller of this one scope code sees under `args`, written out in SQL."""
    conds, params = ["true"], {}
    column = {6: "district_code", 9: "street_code", 12: "community_code", 15: "grid_code"}.get(len(scope_code))
    if column:
        conds.append(f"{column} = :scope")
        params["scope"] = scope_code
    status = QUEUE_STATUS[args["queue"]] if "queue" in args else args.get("status", "").split(",")
    for name, col, values in (("status", "status", status), ("urgency", "urgency", args.get("urgency", "").split(",")),
                              ("street", "street_code", [args.get("street")]),
                              ("community", "community_code", [args.get("community")]),
                              ("grid", "grid_code", [args.get("grid")]),
                              ("category", "category_code", [args.get("category")])):
        if any(values):
            conds.append(f"{col} = ANY(:{name})")
            params[name] = values
    return sql(app, f"SELECT count(*) FROM cases WHERE {' AND '.join(conds)}", **params)[0][0]


def _total(api, args) -> int:
    query = "&".join(f"{k}={v}" for k, v in {**args, "per_page": 1}.items())
    r = api.get(f"/api/v1/cases?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["total"]


@pytest.fixture
def desks(office, make_user):
    """Callers of every scope level: (scope code, Api)."""
    d = office.district["code"]
    return [(d, office.dispatcher), (d + "001", make_user("dispatcher", scope=[d + "001"])),
            (d + "001001", make_user("dispatcher", scope=[d + "001001"])),
            (office.district["grids"][4], make_user("dispatcher", scope=[office.district["grids"][4]])),
            ("*", make_user("supervisor", scope=["*"]))]


def _check_totals(app, office, desks):
    for scope_code, api in desks:
        for args in _filters(office.district["code"]):
            assert _total(api, args) == _expected(app, scope_code, args), (scope_code, args)
        queues = api.get("/api/v1/cases/queue-counts").get_json()
        for name in QUEUE_STATUS:
            assert queues[name] == _expected(app, scope_code, {"queue": name}), (scope_code, name)


def _counts_differ(app) -> list:
    """The keys where case_counts and a GROUP BY of cases disagree (none, when they are kept right)."""
    return sql(app, f"""
        (SELECT {KEY}, n FROM case_counts WHERE n <> 0 EXCEPT SELECT {KEY}, count(*) FROM cases GROUP BY {KEY})
        UNION ALL
        (SELECT {KEY}, count(*) FROM cases GROUP BY {KEY} EXCEPT SELECT {KEY}, n FROM case_counts WHERE n <> 0)""")


def _report(office, i, urgency="B"):
    lon, lat = office.district["point"](i)
    return office.inspector.report(lon=lon, lat=lat, urgency=urgency)


def test_totals_are_count_star_through_the_workflow(app, office, desks):
    o = office
    cases = [_report(o, 4) for _ in range(6)] + [_report(o, 0, "A") for _ in range(3)] + [_report(o, 8, "C")]
    lon, lat = o.district["point"](2)
    outside = o.inspector.report(lon=lon + 0.003, lat=lat)  # beyond every grid: a district, no street or community
    assert outside["community_code"] is None and outside["district_code"] == o.district["code"]
    _check_totals(app, o, desks)

    ids = [c["id"] for c in cases]
    o.dispatcher.act(ids[0], "register")
    o.dispatcher.act(ids[1], "register", {"urgency": "A"})        # the urgency moves too
    o.dispatcher.act(ids[6], "register")
    o.dispatcher.act(ids[7], "register")
    o.dispatcher.act(ids[7], "dispatch", {"team_id": o.team})
    o.dispatcher.act(ids[2], "reject", {"reason": "not a problem"})
    o.dispatcher.act(ids[3], "merge", {"parent_id": ids[4]})
    o.dispatcher.act(ids[6], "suspend", {"reason": "waiting for the owner"})
    o.dispatcher.act(outside["id"], "register")
    close_case(o, ids[5])
    _check_totals(app, o, desks)

    o.dispatcher.act(ids[6], "resume")
    o.handler.act(ids[7], "return", {"reason_code": "not_competent", "note": "not ours"})
    # writes outside the workflow: a case moved out of its community, another's urgency, a case made
    # and deleted in SQL (a case with events is never deleted: the log keeps it)
    sql(app, "UPDATE cases SET grid_code = NULL, street_code = NULL, community_code = NULL WHERE id = :i", i=ids[8])
    sql(app, "UPDATE cases SET urgency = 'C' WHERE id = :i", i=ids[9])
    copied = sql(app, """
        INSERT INTO cases (number, status, category_code, urgency, location, grid_code, district_code, street_code,
                           community_code, source)
        SELECT number || 'c', 'reported', category_code, 'A', location, grid_code, district_code, street_code,
               community_code, source FROM cases WHERE id = :i RETURNING id""", i=ids[0])[0][0]
    _check_totals(app, o, desks)
    sql(app, "DELETE FROM cases WHERE id = :i", i=copied)
    _check_totals(app, o, desks)
    assert _counts_differ(app) == []


def test_concurrent_reports_and_registrations_keep_the_counts(app, office, desks):
    o = office
    before = [_report(o, i % 9, "AB"[i % 2]) for i in range(8)]
    n = 8
    barrier = Barrier(n)

    def desk(i):
        barrier.wait()
        made = [_report(o, (i + k) % 9, "ABC"[(i + k) % 3]) for k in range(3)]
        o.dispatcher.act(before[i]["id"], "register", {"urgency": "C"} if i % 3 == 0 else {})
        return made

    with ThreadPoolExecutor(n) as pool:
        made = [c for batch in pool.map(desk, range(n)) for c in batch]

    assert len(made) == 3 * n
    _check_totals(app, o, desks)
    assert _counts_differ(app) == []


def test_a_spoiled_count_shows_in_the_total_and_the_recount_mends_it(app, office):
    o = office
    d = o.district["code"]
    for _ in range(3):
        _report(o, 4)
    right = _total(o.dispatcher, {"queue": "register"})
    assert right == _expected(app, d, {"queue": "register"}) >= 3
    sql(app, "UPDATE case_counts SET n = n + 1000 WHERE district_code = :d AND community_code = :c "
             "AND status = 'reported' AND urgency = 'B'", d=d, c=d + "001001")

    assert _total(o.dispatcher, {"queue": "register"}) == right + 1000       # the total is read from the counts
    assert o.dispatcher.get("/api/v1/cases/queue-counts").get_json()["register"] == right + 1000
    # a filter the counts do not answer is counted over the cases
    assert _total(o.dispatcher, {"queue": "register", "category": "0701"}) == right

    runner = app.test_cli_runner()
    result = runner.invoke(args=["cases", "recount"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 case counts mended"
    assert _total(o.dispatcher, {"queue": "register"}) == right
    assert _counts_differ(app) == []
    assert runner.invoke(args=["cases", "recount"]).output.strip() == "0 case counts mended"


def test_a_count_of_a_key_no_case_has_is_mended_to_zero(app, office):
    d = office.district["code"]

    def returned():
        return office.dispatcher.get("/api/v1/cases/queue-counts").get_json()["returned"]
    before = returned()
    sql(app, "INSERT INTO case_counts VALUES (:d, NULL, NULL, 'returned', 'A', 7)", d=d)
    assert returned() == before + 7
    assert app.test_cli_runner().invoke(args=["cases", "recount"]).output.strip() == "1 case counts mended"
    assert returned() == before
    assert _counts_differ(app) == []


def test_a_page_that_holds_the_last_cases_gives_the_total_without_counting_them(app, office):
    """A list whose page is not full knows its total from the page; a full page, or one past the end,
    counts (here through case_counts, spoiled on purpose to tell the two apart)."""
    o = office
    d = o.district["code"]
    for _ in range(3):
        _report(o, 4)
    right = _expected(app, d, {"queue": "register"})
    assert right >= 3
    sql(app, "UPDATE case_counts SET n = n + 1000 WHERE district_code = :d AND community_code = :c "
             "AND status = 'reported' AND urgency = 'B'", d=d, c=d + "001001")
    try:
        with sent_statements(app) as seen:
            body = o.dispatcher.get("/api/v1/cases", query_string={"queue": "register", "per_page": 100}).get_json()
        assert len(body["items"]) == body["total"] == right
        assert not [s for s, _ in seen if "case_counts" in s or "count(" in s]
        # a full page: the total is the kept counts' (spoiled here); past the end, the same
        assert _total(o.dispatcher, {"queue": "register"}) == right + 1000
        past = o.dispatcher.get("/api/v1/cases", query_string={"queue": "register", "per_page": 100, "page": 2})
        assert past.get_json()["items"] == [] and past.get_json()["total"] == right + 1000
        # a short second page: the cases before it and its own
        second = o.dispatcher.get("/api/v1/cases", query_string={"queue": "register", "per_page": right - 1,
                                                                 "page": 2}).get_json()
        assert len(second["items"]) == 1 and second["total"] == right
    finally:
        assert app.test_cli_runner().invoke(args=["cases", "recount"]).output.strip() == "1 case counts mended"
