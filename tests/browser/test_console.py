"""The console at /console/, in headless Chromium at 1366×768 against the real backend on PostGIS,
driven only by its data-testid handles: the dispatcher's queue and case page, the supervisor's KPIs
(a closure moves them, a figure drills down, exports parse), the map's rendered grids and colours,
and user text shown as text."""
import csv
import io
import json
import re

from openpyxl import load_workbook
from playwright.sync_api import expect

from console_helpers import Console, canvas_pixel, console_page, desk_context, screen_of
from field_helpers import eventually, handled_case
from helpers import work_periods

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold?</b>'


def test_dispatcher_registers_and_dispatches_a_report_from_the_queue(new_context, people):
    d = people["district"]
    c = console_page(new_context, people["dispatcher"].username)
    c.id("queue-tab-register").click()
    expect(c.id("queue-tab-register")).to_have_attribute("aria-selected", "true")
    expect(c.id("queue-empty")).to_be_visible()

    # a report arrives while the queue is open: it shows up without a reload
    lon, lat = d["point"](4)
    case = people["inspector"].report(lon=lon, lat=lat, description="垃圾满溢 overflowing bin", category_code="0701")
    row = c.queue_item(case["id"])
    expect(row).to_be_visible(timeout=20_000)
    expect(c.id("queue-count-register")).to_have_text("1")
    expect(row).to_contain_text(case["number"])
    expect(row).to_contain_text("0701")
    expect(row).to_have_attribute("data-timer", "green")

    # by keyboard: the row is selected, Enter opens the case page
    row.focus()
    c.page.keyboard.press("Enter")
    expect(c.id("case-number")).to_have_text(case["number"])
    expect(c.id("case-description")).to_have_text("垃圾满溢 overflowing bin")
    expect(c.id("case-actions").locator("button")).to_have_count(4)  # register, reject, merge, suspend
    c.id("case-action-register").click()
    expect(c.id("case-status")).to_have_attribute("data-status", "registered")

    c.id("case-action-dispatch").click()
    expect(c.id("dispatch-suggestion").first).to_contain_text("competent for category 0701")
    expect(c.id("dispatch-team")).to_have_value(str(people["team"]))
    c.id("dispatch-team").select_option(str(people["team"]))
    c.id("dispatch-submit").click()
    expect(c.id("case-status")).to_have_attribute("data-status", "dispatched")
    expect(c.id("case-timeline").get_by_test_id("timeline-event")).to_have_count(3)

    after = people["dispatcher"].case(case["id"])
    assert after["status"] == "dispatched" and after["lead_team_id"] == people["team"]
    # back on the queue the case has left both tabs
    c.id("case-back").click()
    expect(c.id("queue-count-register")).to_have_text("0")
    c.id("queue-tab-dispatch").click()
    expect(c.id("queue-empty")).to_be_visible()


def test_case_page_shows_photos_timeline_and_map_of_a_handled_case(new_context, people):
    case = handled_case(people, people["district"]["point"](1), description="handled, to verify")
    c = console_page(new_context, people["dispatcher"].username)
    c.go(f"#/case/{case['id']}")
    expect(c.id("case-status")).to_have_attribute("data-status", "handled")
    expect(c.id("photos-before").get_by_test_id("case-photo")).to_have_count(0)
    expect(c.id("photos-after").get_by_test_id("case-photo")).to_have_count(1)
    # the photo is fetched with the bearer header and shown from a blob
    expect(c.id("photos-after").get_by_test_id("case-photo")).to_have_attribute("src", __import__("re").compile("^blob:"))
    events = c.id("case-timeline").get_by_test_id("timeline-event")
    expect(events).to_have_count(5)
    assert [e.get_attribute("data-action") for e in events.all()] == ["report", "register", "dispatch", "accept", "handle"]
    # a dispatcher has nothing to do on a handled case (verification is on site)
    expect(c.page.locator('[data-testid^="case-action-"]')).to_have_count(1)  # suspend
    m = c.map_ready("case-map-canvas")
    assert int(m.get_attribute("data-grids")) >= 1


def test_a_closure_moves_the_supervisors_kpis_and_the_figure_drills_down_to_the_case(new_context, make_user, people):
    d = people["district"]
    case = handled_case(people, d["point"](7), description="to be closed")
    supervisor = make_user("supervisor", scope=people["scope"])
    c = console_page(new_context, supervisor.username)
    c.go("#/kpis")
    expect(c.id("kpi-group-by")).to_have_value("team")
    team = str(people["team"])
    expect(c.kpi_cell(team, "closed")).to_have_text("0")
    expect(c.kpi_cell(team, "handled")).to_have_text("1")

    lon, lat = d["point"](7)
    photo = people["inspector"].photo(case["id"], "verification")
    people["inspector"].act(case["id"], "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat, "accuracy_m": 5})

    c.id("kpi-refresh").click()
    expect(c.kpi_cell(team, "closed")).to_have_text("1")
    expect(c.kpi_row(team).locator('[data-figure="closure_rate"]')).to_have_text("100.0%")
    c.kpi_cell(team, "closed").click()
    expect(c.id("drill-banner")).to_be_visible()
    expect(c.id("cases-total")).to_have_attribute("data-total", "1")
    expect(c.page.get_by_test_id("queue-item")).to_have_count(1)
    expect(c.queue_item(case["id"])).to_be_visible()
    c.queue_item(case["id"]).click()
    expect(c.id("case-status")).to_have_attribute("data-status", "closed")


def _hours_counted_again(app):
    """The recount of handling hours a change of the week leaves under way, run to its end (`kpis compact`)."""
    result = app.test_cli_runner().invoke(args=["kpis", "compact"])
    assert result.exit_code == 0 and "another process" not in result.output, result.output


def test_the_kpis_say_while_handling_hours_are_counted_again(app, new_context, make_user, people):
    """A change of the working week: until the kept handling hours are counted again, the KPI page says
    their median and P90 mix the two weeks; once they are, it says nothing."""
    _hours_counted_again(app)  # none left under way by an earlier test
    supervisor = make_user("supervisor", scope=people["scope"])
    admin = make_user("admin")
    c = console_page(new_context, supervisor.username)
    c.go("#/kpis")
    as_of = c.id("kpi-as-of")
    expect(as_of).to_have_attribute("data-as-of", re.compile("."))
    expect(c.id("kpi-hours-recounting")).to_be_hidden()

    week = admin.get("/api/v1/calendar").get_json()["work_periods"]
    try:
        with work_periods(admin, {**{d: p for d, p in week.items() if p}, "mon": [["09:00", "12:00"]]}):
            before = as_of.get_attribute("data-as-of")
            c.id("kpi-refresh").click()
            expect(as_of).not_to_have_attribute("data-as-of", before)
            expect(c.id("kpi-hours-recounting")).to_be_visible()
            expect(c.id("kpi-hours-recounting")).to_contain_text("重新计算")
    finally:
        _hours_counted_again(app)  # the week put back leaves one under way too
    before = as_of.get_attribute("data-as-of")
    c.id("kpi-refresh").click()
    expect(as_of).not_to_have_attribute("data-as-of", before)
    expect(c.id("kpi-hours-recounting")).to_be_hidden()


def test_kpi_exports_download_files_with_the_rows_shown(new_context, make_user, make_team, people):
    d = people["district"]
    other_team = make_team(kind="community", area_codes=[d["code"]])
    handled_case(people, d["point"](0))
    c2 = people["inspector2"].report(lon=d["point"](3)[0], lat=d["point"](3)[1])
    people["dispatcher"].act(c2["id"], "register", {})
    people["dispatcher"].act(c2["id"], "dispatch", {"team_id": other_team})
    supervisor = make_user("supervisor", scope=people["scope"])
    c = console_page(new_context, supervisor.username)
    c.go("#/kpis?group_by=team")
    expect(c.kpi_row(str(other_team))).to_be_visible()
    shown = {r.get_attribute("data-key"): r for r in c.page.get_by_test_id("kpi-row").all()}
    assert set(shown) == {str(people["team"]), str(other_team)}

    with c.page.expect_download() as info:
        c.id("kpi-export-csv").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert {r["key"] for r in rows} == set(shown)
    for r in rows:
        for figure in ("registered", "dispatched", "handled", "closed"):
            assert shown[r["key"]].get_by_test_id(f"kpi-cell-{figure}").inner_text() == r[figure], (r["key"], figure)

    with c.page.expect_download() as info:
        c.id("kpi-export-xlsx").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(open(download.path(), "rb").read())).active
    values = list(sheet.values)
    header, body = list(values[0]), values[1:]
    assert {str(r[header.index("key")]) for r in body} == set(shown)
    by_key = {str(r[header.index("key")]): r for r in body}
    assert by_key[str(people["team"])][header.index("handled")] == 1
    assert by_key[str(other_team)][header.index("dispatched")] == 1

    # grouped by grid: the rows follow the choice
    c.id("kpi-group-by").select_option("grid")
    expect(c.kpi_row(d["grids"][0])).to_be_visible()
    expect(c.kpi_row(d["grids"][3])).to_be_visible()


def test_the_kpis_of_one_area_and_their_drill_down(new_context, make_user, make_district, people):
    d, other = people["district"], make_district()
    people["inspector"].report(lon=d["point"](0)[0], lat=d["point"](0)[1])
    there = make_user("inspector", scope=[other["code"]])
    case = there.report(lon=other["point"](5)[0], lat=other["point"](5)[1])
    supervisor = make_user("supervisor", scope=[d["code"], other["code"]])
    c = console_page(new_context, supervisor.username)
    c.go("#/kpis?group_by=grid")
    expect(c.kpi_row(other["grids"][5])).to_be_visible()
    expect(c.kpi_row(d["grids"][0])).to_be_visible()

    c.id("kpi-area").select_option(other["code"])
    expect(c.kpi_row(d["grids"][0])).to_have_count(0)
    expect(c.kpi_cell(other["grids"][5], "reports")).to_have_text("1")
    assert f"area={other['code']}" in c.page.url
    c.kpi_cell(other["grids"][5], "reports").click()
    expect(c.id("drill-banner")).to_be_visible()
    expect(c.id("cases-total")).to_have_attribute("data-total", "1")
    expect(c.queue_item(case["id"])).to_be_visible()


def test_the_map_shows_the_demo_grids(new_context, make_user):
    supervisor = make_user("supervisor", scope=["310199"])
    c = console_page(new_context, supervisor.username)
    c.go("#/map")
    m = c.map_ready()
    # the demo district fits the map: every one of its 2,002 grids (and any a test added to it) is drawn
    in_scope = supervisor.get("/api/v1/map/extent").get_json()["grids"]
    assert in_scope >= 2002
    expect(m).to_have_attribute("data-grids", str(in_scope))
    # and they are on the canvas, not only in the data: a good share of its pixels are painted
    painted = c.page.evaluate("""() => {
        const c = document.querySelector('[data-testid="map"] canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4 * 16) if (d[i] > 0) n++;
        return n / (d.length / (4 * 16));
    }""")
    assert painted > 0.3, painted
    # a click in the middle names a grid of the demo district
    box = m.bounding_box()
    c.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 7)
    expect(c.id("map-grid-card")).to_be_visible()
    code = c.id("map-grid-card").get_attribute("data-grid")
    assert code.startswith("310199") and len(code) == 15
    expect(c.id("map-grid-name")).to_contain_text("网格")


def test_map_colours_grids_by_their_cases_and_follows_the_filters(new_context, make_user, people):
    d = people["district"]
    for dx in (-0.0002, 0.0002):
        people["inspector"].report(lon=d["point"](0)[0] + dx, lat=d["point"](0)[1] + 0.0003, category_code="0701")
    supervisor = make_user("supervisor", scope=people["scope"])
    c = console_page(new_context, supervisor.username)
    c.go("#/map?layers=grids")
    m = c.map_ready()
    expect(m).to_have_attribute("data-grids", "9")
    # sample each grid away from its centre and from the case points
    def pixel(i):
        lon, lat = d["point"](i)
        x, y = screen_of(m, lon - d["d"] * 0.3, lat - d["d"] * 0.3)
        return canvas_pixel(c.page, "map", x, y)
    two_cases = pixel(0)
    no_case = pixel(8)
    assert two_cases[:3] == [249, 196, 107] and two_cases[3] == 255, two_cases  # the "2–3" class
    assert no_case[:3] == [255, 255, 255] and no_case[3] < 128, no_case  # a pale veil
    # another category: grid 0 has none of it, the colour goes
    c.id("map-category").select_option("0101")
    eventually(lambda: pixel(0)[3] < 128, timeout=15)
    # clicking grid 0 tells its counts under the filter
    c.id("map-category").select_option("")
    eventually(lambda: pixel(0)[:3] == [249, 196, 107], timeout=15)
    lon, lat = d["point"](0)
    x, y = screen_of(m, lon - d["d"] * 0.3, lat - d["d"] * 0.3)
    box = m.bounding_box()
    c.page.mouse.click(box["x"] + x, box["y"] + y)
    expect(c.id("map-grid-card")).to_have_attribute("data-grid", d["grids"][0])
    expect(c.id("map-grid-counts")).to_contain_text("2")


def test_a_description_holding_html_or_script_is_shown_as_text(new_context, people):
    d = people["district"]
    case = people["inspector"].report(lon=d["point"](5)[0], lat=d["point"](5)[1], description=XSS)
    c = console_page(new_context, people["dispatcher"].username)
    c.go("#/queue/register")
    row = c.queue_item(case["id"])
    expect(row).to_contain_text("<script>window.__pwned = 1</script>")
    row.click()
    expect(c.id("case-description")).to_have_text(XSS)
    assert c.id("case-description").locator("script, img, b").count() == 0
    expect(c.id("case-timeline")).to_contain_text("<img src=x")
    assert c.page.evaluate("() => window.__pwned === undefined")
    c.go(f"#/cases?q={case['number']}")
    expect(c.queue_item(case["id"])).to_contain_text("<b>bold?</b>")
    assert c.page.evaluate("() => window.__pwned === undefined")


def test_roles_and_scope_of_the_console(new_context, make_user, people):
    # an inspector is sent to the field app; an admin gets administration only
    page = desk_context(new_context).new_page()
    c = Console(page).open()
    c.id("login-username").fill(people["inspector"].username)
    c.id("login-password").fill("Test-pass-2026!")
    c.id("login-submit").click()
    expect(c.id("login-error")).to_contain_text("/field/")
    admin = make_user("admin", scope=people["scope"])
    a = console_page(new_context, admin.username)
    expect(a.id("nav-admin")).to_be_visible()
    expect(a.id("nav-queue")).to_have_count(0)
    expect(a.id("nav-kpis")).to_have_count(0)
    # a case outside the dispatcher's scope does not exist for them
    outsider = make_user("dispatcher", scope=["310199"])
    case = people["inspector"].report(lon=people["district"]["point"](2)[0], lat=people["district"]["point"](2)[1])
    o = console_page(new_context, outsider.username)
    o.go(f"#/case/{case['id']}")
    expect(o.id("case-missing")).to_be_visible()


def test_sign_in_state_is_per_tab_and_sign_out_revokes_it(new_context, people):
    ctx = desk_context(new_context)
    c = Console(ctx.new_page()).open().sign_in(people["dispatcher"].username)
    token = c.page.evaluate("() => sessionStorage.getItem('gridpatrol.console.token')")
    assert token and c.page.context.cookies() == []
    c.id("signout").click()
    expect(c.id("login-submit")).to_be_visible()
    r = c.page.request.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401
    # the console's pages carry the strict policy
    r = c.page.request.get("/console/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert json.loads(c.page.request.get("/console/config.json").text()).keys() == {"tile_url"}


def test_administration_users_grid_import_preview_and_open311_keys(new_context, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    c = console_page(new_context, admin.username)

    # a user made in the console can sign in with the roles and scope given
    c.go("#/admin/users")
    c.id("user-new").click()
    name = f"desk{admin.id}"
    c.id("admin-field-username").fill(name)
    c.id("admin-field-display_name").fill("值班员 测试")
    c.id("admin-field-password").fill("Console-pass-2026")
    c.id("admin-field-roles").locator('input[value="dispatcher"]').check()
    c.id("admin-field-scope").fill(district["code"])
    c.id("user-save").click()
    expect(c.page.get_by_test_id("user-row").filter(has_text=name)).to_be_visible()
    token = c.page.request.post("/api/v1/auth/token", data={"username": name, "password": "Console-pass-2026"})
    assert token.ok and token.json()["user"]["roles"] == ["dispatcher"] and token.json()["user"]["scope"] == [district["code"]]

    # grid import: the preview lists what would be accepted and what is rejected with its reason
    d = district["d"]
    x, y = district["point"](8)
    square = lambda x0, y0: [[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]  # noqa: E731
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": f"{district['code']}001001010", "name": "east"},
         "geometry": {"type": "Polygon", "coordinates": [square(x + d / 2, y - d / 2)]}},
        {"type": "Feature", "properties": {"code": "123", "name": "short code"},
         "geometry": {"type": "Polygon", "coordinates": [square(x + 2 * d, y)]}},
    ]}
    c.go("#/admin/grids")
    c.id("grids-file").set_input_files(files=[{"name": "g.geojson", "mimeType": "application/geo+json",
                                               "buffer": json.dumps(fc).encode()}])
    c.id("grids-preview").click()
    expect(c.id("grids-accepted-row")).to_have_count(1)
    expect(c.id("grids-rejected-row")).to_have_count(1)
    expect(c.id("grids-rejected-row")).to_contain_text("15 digits")
    assert c.page.request.get(f"/api/v1/map/grid-names?codes={district['code']}001001010",
                              headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()["names"] == {}
    c.id("grids-import").click()
    c.id("confirm-ok").click()
    expect(c.id("grids-summary")).to_contain_text("1")
    names = c.page.request.get(f"/api/v1/map/grid-names?codes={district['code']}001001010",
                               headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()["names"]
    assert names == {f"{district['code']}001001010": "east"}

    # an Open311 key is shown once, listed, and revoked
    c.go("#/admin/open311")
    c.id("open311-name").fill("citizen app <i>beta</i>")
    c.id("open311-create").click()
    secret = c.id("open311-secret").input_value()
    assert len(secret) >= 20
    c.page.keyboard.press("Escape")
    row = c.page.get_by_test_id("open311-key").filter(has_text="citizen app <i>beta</i>")
    expect(row).to_be_visible()
    row.get_by_test_id("open311-revoke").click()
    c.id("confirm-ok").click()
    expect(row.get_by_test_id("open311-revoke")).to_have_count(0)
