"""More of the console at 1366×768 against the real backend: a hotline report entered by a dispatcher, a
merge into a duplicate chosen from the case page's list, the administrator's calendar, catalog limits and
team areas and categories, the map's patrol tracks and coverage (read from what the map drew), and the
inspector page's figures drilled down to the verifications, grids and cases behind them."""
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from console_helpers import canvas_pixel, console_page, rendered_features, screen_of, wait_rendered
from field_helpers import handled_case

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the working calendar's zone: patrol days are its local days


def case_id_of(page):
    page.wait_for_url(re.compile(r"#/case/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


# ------------------------------------------------------------------ dispatcher


def test_a_dispatcher_enters_a_hotline_report_with_the_place_picked_on_the_map(new_context, people):
    d = people["district"]
    c = console_page(new_context, people["dispatcher"].username)
    c.go("#/queue/register")
    expect(c.id("queue-empty")).to_be_visible()
    c.id("hotline-new").click()
    expect(c.id("hotline-dialog")).to_be_visible()
    m = c.map_ready("hotline-map")
    (w, n), (e, s) = d["point"](0), d["point"](8)
    lon0, lat0, lon1, lat1 = w - d["d"], s - d["d"], e + d["d"], n + d["d"]
    # the pick map has fitted the dispatcher's district before the click
    c.page.wait_for_function("""([el, b]) => { const [x, y] = el.dataset.center.split(',').map(Number);
        return el.dataset.ready === 'true' && x > b[0] && x < b[2] && y > b[1] && y < b[3]; }""",
                             arg=[m.element_handle(), [lon0, lat0, lon1, lat1]])
    lon, lat = d["point"](4)
    x, y = screen_of(m, lon, lat)
    box = m.bounding_box()
    c.page.mouse.click(box["x"] + x, box["y"] + y)
    expect(c.id("hotline-lon")).not_to_have_value("")
    assert abs(float(c.id("hotline-lon").input_value()) - lon) < d["d"] / 4
    assert abs(float(c.id("hotline-lat").input_value()) - lat) < d["d"] / 4

    # without a category the dialog says so and stays open
    c.id("hotline-submit").click()
    expect(c.id("hotline-dialog").get_by_test_id("dialog-error")).to_be_visible()
    c.id("hotline-category").select_option("0701")
    c.id("hotline-urgency").select_option("A")
    c.id("hotline-description").fill("12345 来电：小区门口垃圾堆放")
    c.id("hotline-address").fill("示范路 8 号")
    c.id("hotline-caller").fill("张先生")
    c.id("hotline-phone").fill("13800000000")
    c.id("hotline-submit").click()

    case_id = case_id_of(c.page)
    expect(c.id("case-status")).to_have_attribute("data-status", "reported")
    expect(c.id("case-description")).to_have_text("12345 来电：小区门口垃圾堆放")
    expect(c.id("case-source")).to_have_text("热线")
    expect(c.id("case-grid")).to_contain_text(d["grids"][4])
    expect(c.id("case-contact")).to_have_text("张先生 · 13800000000")
    # the server has one case, from the hotline, in the grid of the point, with the caller kept
    case = people["dispatcher"].case(case_id)
    assert (case["source"], case["grid_code"], case["category_code"], case["urgency"], case["address"]) == (
        "hotline", d["grids"][4], "0701", "A", "示范路 8 号")
    assert case["contact"]["name"] == "张先生" and case["contact"]["phone"] == "13800000000"
    found = people["dispatcher"].get("/api/v1/cases?q=12345").get_json()
    assert [x["id"] for x in found["items"] if x["grid_code"] in d["grids"]] == [case_id]
    # and it waits in the register queue like any report
    c.id("case-back").click()
    expect(c.queue_item(case_id)).to_be_visible()


def test_a_dispatcher_merges_a_report_into_the_duplicate_chosen_from_the_list(new_context, people):
    d = people["district"]
    lon, lat = d["point"](4)
    inspector = people["inspector"]
    first = inspector.report(lon=lon, lat=lat, category_code="0701", description="first")
    second = inspector.report(lon=lon + 0.0002, lat=lat, category_code="0701", description="second")
    other = inspector.report(lon=lon + 0.0003, lat=lat, category_code="0101", description="another category")
    latest = inspector.report(lon=lon + 0.0004, lat=lat, category_code="0701", description="latest")
    c = console_page(new_context, people["dispatcher"].username)
    c.go(f"#/case/{latest['id']}")
    expect(c.id("case-status")).to_have_attribute("data-status", "reported")

    # the same category near by, nearest first; the other category is not a duplicate
    items = c.page.get_by_test_id("duplicate-item")
    expect(items).to_have_count(2)
    assert [i.get_attribute("data-case-id") for i in items.all()] == [str(second["id"]), str(first["id"])]
    assert other["id"] not in [int(i.get_attribute("data-case-id")) for i in items.all()]
    expect(items.nth(1)).to_contain_text(first["number"])

    # the dispatcher chooses the farther one; the merge dialog asks to confirm with it checked
    c.page.locator(f'[data-testid="duplicate-item"][data-case-id="{first["id"]}"]').get_by_test_id("merge-into").click()
    expect(c.id("action-dialog-merge")).to_be_visible()
    expect(c.page.locator(f'[data-testid="merge-candidate"][data-case-id="{first["id"]}"]')).to_be_checked()
    expect(c.page.locator(f'[data-testid="merge-candidate"][data-case-id="{second["id"]}"]')).not_to_be_checked()
    c.id("action-submit").click()
    expect(c.id("case-status")).to_have_attribute("data-status", "merged")
    expect(c.id("case-parent")).to_have_text(first["number"])
    expect(c.id("case-timeline").get_by_test_id("timeline-event").last).to_have_attribute("data-action", "merge")

    after = people["dispatcher"].case(latest["id"])
    assert (after["status"], after["parent_id"]) == ("merged", first["id"])
    assert people["dispatcher"].case(first["id"])["status"] == "reported"
    assert people["dispatcher"].case(second["id"])["status"] == "reported"
    # the parent is a link to it
    c.id("case-parent").click()
    expect(c.id("case-number")).to_have_text(first["number"])


# ------------------------------------------------------------------ administration


def test_an_admin_marks_a_day_off_and_a_working_day_in_the_calendar(new_context, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    year = date.today().year + 1  # a year no other test counts working hours in
    monday = date(year, 8, 1) + timedelta(days=(7 - date(year, 8, 1).weekday()) % 7)
    saturday = monday + timedelta(days=5)
    known = {x["date"] for x in admin.get(f"/api/v1/calendar?year={year}").get_json()["days"]}
    assert not {monday.isoformat(), saturday.isoformat()} & known
    c = console_page(new_context, admin.username)
    c.go("#/admin/calendar")
    c.id("calendar-year").select_option(str(year))
    expect(c.id("calendar-year-view")).to_have_attribute("data-year", str(year))  # drawn anew for that year

    # a Monday off, typed in
    c.id("calendar-date").fill(monday.isoformat())
    c.id("calendar-workday").select_option("false")
    c.id("calendar-name").fill("测试休息日")
    c.id("calendar-add").click()
    off = c.page.locator(f'[data-testid="calendar-day"][data-date="{monday}"]')
    expect(off).to_contain_text("休息日")
    expect(off).to_contain_text("测试休息日")
    expect(c.id("calendar-year-view").locator(f'[data-date="{monday}"]')).to_have_class("off")

    # a Saturday worked, picked on the year view: the form proposes the other state of the day
    c.id("calendar-year-view").locator(f'[data-date="{saturday}"]').click()
    expect(c.id("calendar-date")).to_have_value(saturday.isoformat())
    expect(c.id("calendar-workday")).to_have_value("true")
    c.id("calendar-name").fill("测试调休")
    c.id("calendar-add").click()
    worked = c.page.locator(f'[data-testid="calendar-day"][data-date="{saturday}"]')
    expect(worked).to_contain_text("调休上班")
    expect(c.id("calendar-year-view").locator(f'[data-date="{saturday}"]')).to_have_class("swap")

    days = {x["date"]: x for x in admin.get(f"/api/v1/calendar?year={year}").get_json()["days"]}
    assert (days[monday.isoformat()]["workday"], days[monday.isoformat()]["name"]) == (False, "测试休息日")
    assert (days[saturday.isoformat()]["workday"], days[saturday.isoformat()]["name"]) == (True, "测试调休")

    # and both go again
    off.get_by_test_id("calendar-delete").click()
    expect(off).to_have_count(0)
    worked.get_by_test_id("calendar-delete").click()
    expect(worked).to_have_count(0)
    left = {x["date"] for x in admin.get(f"/api/v1/calendar?year={year}").get_json()["days"]}
    assert not {monday.isoformat(), saturday.isoformat()} & left


def test_an_admin_changes_a_handling_limit_in_the_catalog(new_context, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    code = "1206"  # no other test reports in it
    catalog = admin.get("/api/v1/categories").get_json()
    before = next(x for x in catalog["items"] if x["code"] == code)
    new_amount = before["limits"]["B"]["amount"] + 1.5
    c = console_page(new_context, admin.username)
    try:
        c.go("#/admin/categories")
        row = c.page.locator(f'[data-testid="category-row"][data-code="{code}"]')
        row.get_by_test_id("category-edit").click()
        expect(c.id("category-dialog")).to_be_visible()
        expect(c.id("admin-field-limit-B-amount")).to_have_value(re.compile(rf"^{before['limits']['B']['amount']:g}$"))
        c.id("admin-field-limit-B-amount").fill(f"{new_amount:g}")
        c.id("admin-field-limit-B-unit").select_option("hour")
        c.id("admin-field-limit-B-clock").check()
        c.id("category-save").click()
        expect(c.id("category-dialog")).to_have_count(0)
        expect(row).to_contain_text(f"{new_amount:g} 小时 自然时间")
        after = admin.get("/api/v1/categories").get_json()
        changed = next(x for x in after["items"] if x["code"] == code)
        assert changed["limits"]["B"] == {"amount": new_amount, "unit": "hour", "clock": True}
        assert changed["limits"]["A"] == before["limits"]["A"] and changed["limits"]["C"] == before["limits"]["C"]
        assert after["version"] == catalog["version"] + 1
        # a bad amount is refused in the dialog, and nothing changes
        row.get_by_test_id("category-edit").click()
        c.id("admin-field-limit-C-amount").fill("-3")
        c.id("category-save").click()
        expect(c.id("category-dialog").get_by_test_id("dialog-error")).to_contain_text("amount")
        c.page.keyboard.press("Escape")
        assert admin.get("/api/v1/categories").get_json()["version"] == after["version"]
    finally:
        r = admin.client.patch(f"/api/v1/categories/{code}", json={"limits": before["limits"]},
                               headers={"Authorization": f"Bearer {admin.token}"})
        assert r.status_code == 200, r.get_json()


def test_an_admin_sets_a_teams_areas_and_categories(new_context, make_user, make_team):
    admin = make_user("admin", scope=["310199"])
    team = make_team(kind="community", area_codes=["310199"], category_codes=["0701"])
    streets = [a["code"] for a in admin.get("/api/v1/map/areas").get_json()["items"] if a["level"] == "street"][:2]
    assert len(streets) == 2
    c = console_page(new_context, admin.username)
    c.go("#/admin/teams")
    row = c.page.locator(f'[data-testid="team-row"][data-team-id="{team}"]')
    expect(row).to_contain_text("示范区")
    row.get_by_test_id("team-edit").click()
    expect(c.id("team-dialog")).to_be_visible()
    areas, cats = c.id("admin-field-area_codes"), c.id("admin-field-category_codes")
    expect(areas.locator('input[value="310199"]')).to_be_checked()
    areas.locator('input[value="310199"]').uncheck()
    for s in streets:
        areas.locator(f'input[value="{s}"]').check()
    expect(cats.locator("input:checked")).to_have_count(1)
    c.id("admin-filter-category_codes").fill("010")  # the filter narrows the list to 010x
    cats.locator('input[value="0101"]').check()
    cats.locator('input[value="0102"]').check()
    expect(cats.locator('input[value="0701"]')).to_be_hidden()
    expect(c.id("admin-count-category_codes")).to_contain_text("3")
    c.id("team-save").click()
    expect(c.id("team-dialog")).to_have_count(0)
    expect(row.locator("td").nth(5)).to_have_text("3")
    names = {a["code"]: a["name"] for a in admin.get("/api/v1/map/areas").get_json()["items"]}
    for s in streets:
        expect(row).to_contain_text(names[s])
    body = admin.get(f"/api/v1/teams/{team}").get_json()
    assert sorted(body["area_codes"]) == sorted(streets)
    assert sorted(body["category_codes"]) == ["0101", "0102", "0701"]
    assert body["kind"] == "community"


# ------------------------------------------------------------------ map: tracks and coverage


def walk(inspector, points):
    now = datetime.now(SHANGHAI)
    patrol = inspector.post("/api/v1/patrols", json={}).get_json()
    batch = [{"lon": x, "lat": y, "accuracy_m": 5, "recorded_at": (now + timedelta(seconds=20 * i)).isoformat()}
             for i, (x, y) in enumerate(points)]
    assert inspector.post(f"/api/v1/patrols/{patrol['id']}/points", json={"seq": 1, "points": batch}).status_code == 200
    ended = inspector.post(f"/api/v1/patrols/{patrol['id']}/end", json={}).get_json()
    return patrol["id"], ended


VISITED, UNVISITED = "#1f9d55", "#b7791f"


def test_the_map_draws_a_days_patrol_tracks_and_grid_coverage(new_context, make_user, people):
    d = people["district"]
    patrol_id, ended = walk(people["inspector"], [d["point"](0), d["point"](1), d["point"](2)])
    assert sorted(ended["grid_codes"]) == d["grids"][:3]
    today = datetime.now(SHANGHAI).date()
    supervisor = make_user("supervisor", scope=people["scope"])
    c = console_page(new_context, supervisor.username, timezone_id="Asia/Shanghai")
    c.go(f"#/map?layers=grids,tracks,coverage&day={today}")
    m = c.map_ready()

    # the track: one line, the patrol's, on screen, through the points walked
    wait_rendered(c.page, ["tracks"], "fs => fs.length === 1 && fs[0].onScreen > 0")
    (track,) = rendered_features(c.page, ["tracks"])
    assert track["properties"]["id"] == patrol_id
    assert track["properties"]["inspector_id"] == people["inspector"].id
    assert track["geometry"]["type"] == "LineString" and track["onScreen"] == track["vertices"] >= 2
    line = track["geometry"]["coordinates"]
    for i in (0, 2):
        assert min(abs(x - d["point"](i)[0]) + abs(y - d["point"](i)[1]) for x, y in line) < 1e-6
    # and painted: a quarter of the way from grid 0's centre to grid 1's is the track's purple
    (x0, y0), (x1, y1) = d["point"](0), d["point"](1)
    px = canvas_pixel(c.page, "map", *screen_of(m, x0 + (x1 - x0) / 4, y0 + (y1 - y0) / 4))
    assert px[2] > 140 and px[1] < 110 and px[2] > px[0], px
    expect(c.id("tracks-summary")).to_contain_text("1 条轨迹")
    expect(c.id("tracks-list").locator(f'[data-patrol-id="{patrol_id}"]')).to_be_visible()

    # the coverage: the responsibility grids walked are outlined green, the others amber
    wait_rendered(c.page, ["grids"], f"""fs => {{
        const g = fs.filter((f) => f.sourceLayer === 'grids' && f.properties.code.startsWith('{d["code"]}'));
        return new Set(g.map((f) => f.properties.code)).size === 9
            && g.every((f) => ['{VISITED}', '{UNVISITED}'].includes(f.style.stroke));
    }}""")
    strokes = {}
    for f in rendered_features(c.page, ["grids"]):
        if f["sourceLayer"] == "grids" and f["properties"]["code"] in d["grids"]:
            strokes.setdefault(f["style"]["stroke"], set()).add(f["properties"]["code"])
    assert strokes == {VISITED: set(d["grids"][:3]), UNVISITED: set(d["grids"][3:])}
    expect(c.id("coverage-summary")).to_contain_text("3 / 9")
    expect(c.id("coverage-summary")).to_contain_text("33.3%")

    # layers off: no track drawn, the grids back to their case colours
    c.id("map-layer-tracks").uncheck()
    wait_rendered(c.page, ["tracks"], "fs => fs.length === 0")
    c.id("map-layer-coverage").uncheck()
    wait_rendered(c.page, ["grids"], f"""fs => fs.some((f) => f.properties.code === '{d["grids"][0]}')
        && fs.every((f) => !['{VISITED}', '{UNVISITED}'].includes(f.style.stroke))""")

    # the day before: nothing walked, nothing covered
    c.id("map-layer-tracks").check()
    c.id("map-layer-coverage").check()
    c.id("map-day").fill((today - timedelta(days=1)).isoformat())
    c.id("map-day").dispatch_event("change")
    expect(c.id("coverage-summary")).to_contain_text("0 / 9")
    wait_rendered(c.page, ["tracks"], "fs => fs.length === 0")
    wait_rendered(c.page, ["grids"], f"""fs => {{
        const g = fs.filter((f) => f.properties.code && f.properties.code.startsWith('{d["code"]}'));
        return g.length > 0 && g.every((f) => f.style.stroke === '{UNVISITED}');
    }}""")


# ------------------------------------------------------------------ inspector page drill-down


def test_the_inspector_pages_figures_drill_to_the_verifications_grids_and_cases_behind_them(new_context, make_user,
                                                                                             people):
    d = people["district"]
    case = handled_case(people, d["point"](5), description="to verify")  # reported by inspector2
    lon, lat = d["point"](5)
    photo = people["inspector"].photo(case["id"], "verification")
    people["inspector"].act(case["id"], "verify_pass",
                            {"photo_ids": [photo["id"]], "lon": lon, "lat": lat, "accuracy_m": 5})
    walk(people["inspector"], [d["point"](0), d["point"](1), d["point"](2)])
    supervisor = make_user("supervisor", scope=people["scope"])
    c = console_page(new_context, supervisor.username, timezone_id="Asia/Shanghai")
    c.go("#/inspectors")

    me, other = str(people["inspector"].id), str(people["inspector2"].id)
    row = c.page.locator(f'[data-testid="inspector-row"][data-key="{me}"]')
    cell = lambda r, figure: r.get_by_test_id(f"inspector-cell-{figure}")  # noqa: E731
    expect(cell(row, "verifications")).to_have_text("1")
    expect(cell(row, "verifications_on_time")).to_have_text("1")
    expect(cell(row, "verification_timely_rate")).to_have_text("100.0%")
    expect(cell(row, "responsibility_grids")).to_have_text("9")
    shown_rate = cell(row, "coverage_rate").inner_text()

    # verifications: the list is as long as the figure, each with its case
    cell(row, "verifications_on_time").click()
    expect(c.id("verif-total")).to_have_attribute("data-total", "1")
    items = c.page.get_by_test_id("verification-item")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-case-id", str(case["id"]))
    expect(items.first).to_have_attribute("data-on-time", "true")
    expect(items.first).to_contain_text(case["number"])
    c.id("verif-filter").select_option("false")
    expect(c.id("verif-empty")).to_be_visible()
    c.id("drill-back").click()

    # coverage: the grids behind it, three of nine walked, the rate the table showed
    cell(row, "coverage_rate").click()
    expect(c.page.get_by_test_id("coverage-grid")).to_have_count(9)
    total = c.id("coverage-total")
    expect(total).to_have_attribute("data-visited", "3")
    expect(total).to_have_attribute("data-grids", "9")
    days, rate = int(total.get_attribute("data-days")), float(total.get_attribute("data-rate"))
    assert rate == round(3 / (9 * days), 4) and shown_rate == f"{rate * 100:.1f}%"
    for i, code in enumerate(d["grids"]):
        expect(c.page.locator(f'[data-testid="coverage-grid"][data-grid="{code}"]')).to_have_attribute(
            "data-visited-days", "1" if i < 3 else "0")
    c.id("drill-back").click()

    # the reports side goes to the cases behind it
    other_row = c.page.locator(f'[data-testid="inspector-row"][data-key="{other}"]')
    expect(cell(other_row, "reports")).to_have_text("1")
    expect(cell(other_row, "verifications")).to_have_text("0")
    cell(other_row, "reports").click()
    expect(c.id("cases-total")).to_have_attribute("data-total", "1")
    expect(c.queue_item(case["id"])).to_be_visible()
