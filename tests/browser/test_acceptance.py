"""The twelve acceptance points of field-client.md, one test each, in headless Chromium against
the real backend on PostGIS. The client is driven only by its data-testid handles; the server is
read only over HTTP (and, for the patrol track, the database the server wrote)."""
import hashlib
import io
import json

from playwright.sync_api import expect

from field_helpers import Field, at, cases_of, eventually, handled_case, idb, multipart_file, photos_of, png


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_01_offline_reload_shows_report_form_and_categories(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    f = Field(ctx.new_page()).open().sign_in(people["inspector"].username).wait_offline_ready()

    ctx.set_offline(True)
    f.page.reload()

    expect(f.id("net-status")).to_have_attribute("data-online", "false")
    expect(f.id("report-category")).to_be_visible()
    expect(f.id("report-submit")).to_be_visible()
    expect(f.id("report-category").locator('option[value="0701"]')).to_have_count(1)
    assert f.id("report-category").locator("option").count() > 10
    # the search finds categories by their English name too, offline
    f.id("report-category-search").fill("garbage")
    expect(f.id("report-category").locator('option[value="0701"]')).to_have_count(1)
    # the grid of the position is found from the grids kept on the device
    expect(f.id("report-grid")).to_have_text(d["grids"][4])


def test_02_offline_report_with_photo_is_sent_when_back_online(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](2)), permissions=["geolocation"])
    f = Field(ctx.new_page()).open().sign_in(people["inspector"].username).wait_offline_ready()
    photo = png()

    ctx.set_offline(True)
    f.report(description="offline report", photos=[photo])
    f.expect_outbox_count(2)  # wait for both items to be stored before reading their statuses
    f.id("nav-outbox").click()  # the list renders from IndexedDB after the click: wait for it
    expect(f.page.locator('[data-testid="outbox-item"][data-status="queued"]')).to_have_count(2)
    assert f.outbox_statuses() == ["queued", "queued"]
    assert cases_of(people["inspector"], people["inspector"].id) == []

    ctx.set_offline(False)  # no tap: going online flushes the outbox
    f.expect_outbox_count(0)
    expect(f.page.locator('[data-testid="outbox-item"][data-status="sent"]')).to_have_count(2)
    cases = cases_of(people["inspector"], people["inspector"].id)
    assert len(cases) == 1
    assert cases[0]["description"] == "offline report" and cases[0]["grid_code"] == d["grids"][2]
    photos = photos_of(people["inspector"], cases[0]["id"])
    assert [p["sha256"] for p in photos] == [sha(photo)]


def test_03_queued_items_survive_a_browser_restart_and_a_new_app_version(persistent, people):
    d = people["district"]
    options = dict(geolocation=at(d["point"](0)), permissions=["geolocation"])
    ctx = persistent(**options)
    f = Field(ctx.pages[0]).open().sign_in(people["inspector"].username).wait_offline_ready()
    ctx.set_offline(True)
    photos = [png() for _ in range(5)]
    for i, photo in enumerate(photos):
        f.report(description=f"restart {i}", photos=[photo])
    f.expect_outbox_count(10)
    ctx.close()

    # the browser comes back offline, and a new version of the app has been deployed meanwhile
    ctx = persistent(offline=True, **options)
    page = ctx.pages[0]
    f = Field(page).open("/field/#outbox")
    f.expect_outbox_count(10)
    assert sorted(f.outbox_statuses()) == ["queued"] * 10
    version = page.evaluate("caches.keys()")
    ctx.set_offline(False)
    ctx.route("**/field/sw.js", lambda route: route.fulfill(
        response=route.fetch(), body=route.fetch().text() + "\n// a new version\n"))
    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    page.wait_for_function("(old) => caches.keys().then((k) => k.length === 1 && k[0] !== old[0])", arg=version)
    f.expect_outbox_count(0, timeout=30_000)

    cases = cases_of(people["inspector"], people["inspector"].id)
    assert sorted(c["description"] for c in cases) == [f"restart {i}" for i in range(5)]
    by_description = {c["description"]: c for c in cases}
    for i, photo in enumerate(photos):
        assert [p["sha256"] for p in photos_of(people["inspector"], by_description[f"restart {i}"]["id"])] == [sha(photo)]


def test_04_a_response_lost_after_the_server_committed_gives_one_case(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](5)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()
    seen = {"reports": [], "photos": []}

    def lose_first_answer(kind):
        def handler(route):
            seen[kind].append(route.request.headers["idempotency-key"])
            response = route.fetch()  # the server commits and answers…
            if len(seen[kind]) == 1:
                assert response.status == 201
                route.abort("connectionreset")  # …and the answer never reaches the phone
            else:
                route.fulfill(response=response)
        return handler
    page.route("**/api/v1/reports", lose_first_answer("reports"))
    page.route("**/api/v1/cases/*/photos", lose_first_answer("photos"))

    photo = png()
    f.report(description="lost answer", photos=[photo])
    f.id("nav-outbox").click()
    f.expect_outbox_count(0, timeout=30_000)

    assert len(seen["reports"]) == 2 and seen["reports"][0] == seen["reports"][1]
    assert len(seen["photos"]) == 2 and seen["photos"][0] == seen["photos"][1]
    cases = cases_of(people["inspector"], people["inspector"].id)
    assert len(cases) == 1
    assert [p["sha256"] for p in photos_of(people["inspector"], cases[0]["id"])] == [sha(photo)]


def test_05_a_500_stays_queued_with_backoff_and_a_422_needs_attention(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](1)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()

    failing = {"n": 0}

    def server_error(route):
        failing["n"] += 1
        route.fulfill(status=500, content_type="application/problem+json",
                      body=json.dumps({"status": 500, "title": "Internal Server Error", "detail": "boom"}))
    page.route("**/api/v1/reports", server_error)
    f.report(description="five hundred", photos=[png()])
    f.id("nav-outbox").click()
    report_row = page.locator('[data-testid="outbox-item"][data-kind="report"]')
    expect(report_row.get_by_test_id("outbox-item-message")).to_contain_text("boom")
    expect(report_row).to_have_attribute("data-status", "queued")
    first = queued_after(page, 1)
    assert first["next_try"] > first["last_try"]
    f.id("outbox-send-now").click()
    second = queued_after(page, 2)
    # the wait before the next try grows with the attempts
    assert second["next_try"] - second["last_try"] > first["next_try"] - first["last_try"]
    assert cases_of(people["inspector"], people["inspector"].id) == []

    page.unroute("**/api/v1/reports")
    f.id("outbox-send-now").click()
    f.expect_outbox_count(0)
    assert len(cases_of(people["inspector"], people["inspector"].id)) == 1

    # a 422 from the real server: the report goes with a value the server refuses
    def invalid_urgency(route):
        body = json.loads(route.request.post_data)
        body["urgency"] = "Z"
        route.continue_(post_data=json.dumps(body))
    page.route("**/api/v1/reports", invalid_urgency)
    f.report(description="four twenty-two", photos=[png()])
    f.id("nav-outbox").click()
    row = page.locator('[data-testid="outbox-item"][data-kind="report"][data-status="needs_attention"]')
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("outbox-item-message")).to_contain_text("urgency")
    # its photo waits for it; nothing was dropped
    f.expect_outbox_count(2)
    expect(page.locator('[data-testid="outbox-item"][data-kind="photo"][data-status="queued"]')).to_have_count(1)
    assert len(cases_of(people["inspector"], people["inspector"].id)) == 1

    page.unroute("**/api/v1/reports")
    row.get_by_test_id("outbox-retry").click()
    f.expect_outbox_count(0)
    assert len(cases_of(people["inspector"], people["inspector"].id)) == 2


def queued_after(page, n):
    """The report item as stored once it is queued again after its n-th attempt."""
    def ready():
        it = next((i for i in idb(page)["items"] if i["kind"] == "report" and i["status"] != "sent"), None)
        return it if it and it["attempts"] == n and it["status"] == "queued" else None
    return eventually(ready)


def test_06_the_same_draft_in_two_tabs_gives_one_case(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](3)), permissions=["geolocation"])
    posts = []
    ctx.on("request", lambda r: posts.append(r.headers.get("idempotency-key")) if r.method == "POST" and r.url.endswith("/api/v1/reports") else None)
    one = Field(ctx.new_page()).open().sign_in(people["inspector"].username).wait_offline_ready()
    ctx.set_offline(True)
    one.report(description="two tabs", photos=[png()], submit=False)
    expect(one.id("report-submit")).to_be_enabled()

    two = Field(ctx.new_page()).open("/field/#report")
    expect(two.id("report-description")).to_have_value("two tabs")
    expect(two.id("report-photo-item")).to_have_count(1)
    expect(two.id("report-submit")).to_be_enabled()

    one.submit_report()
    two.submit_report()
    expect(two.id("report-done")).to_contain_text("另一个窗口")
    two.expect_outbox_count(2)

    ctx.set_offline(False)  # both tabs see the network come back and both try to send
    one.expect_outbox_count(0)
    two.expect_outbox_count(0)
    cases = cases_of(people["inspector"], people["inspector"].id)
    assert len(cases) == 1 and len(photos_of(people["inspector"], cases[0]["id"])) == 1
    assert len(posts) == 1


def test_07_three_photos_with_the_network_cut_after_the_first(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](6)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()
    keys = []
    cut = {"on": False}

    def photos(route):
        keys.append(route.request.headers["idempotency-key"])
        if cut["on"]:
            route.abort("internetdisconnected")
            return
        route.fulfill(response=route.fetch())
        cut["on"] = True  # the network goes after the first photo's answer
    page.route("**/api/v1/cases/*/photos", photos)

    shots = [png(), png(), png()]
    f.report(description="three photos", photos=shots)
    f.id("nav-outbox").click()
    expect(page.locator('[data-testid="outbox-item"][data-kind="photo"][data-status="sent"]')).to_have_count(1)
    ctx.set_offline(True)
    f.expect_outbox_count(2)
    sent_before = list(keys)

    page.unroute("**/api/v1/cases/*/photos")
    page.route("**/api/v1/cases/*/photos", lambda route: (keys.append(route.request.headers["idempotency-key"]), route.continue_()))
    ctx.set_offline(False)
    f.expect_outbox_count(0)

    first_key = sent_before[0]
    resent = keys[len(sent_before):]
    assert first_key not in resent and len(resent) == 2 and len(set(resent)) == 2
    cases = cases_of(people["inspector"], people["inspector"].id)
    assert len(cases) == 1
    assert sorted(p["sha256"] for p in photos_of(people["inspector"], cases[0]["id"])) == sorted(sha(s) for s in shots)


def test_08_a_12_megapixel_photo_arrives_downscaled_and_upright(new_context, people):
    from PIL import Image
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](7)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()

    # 4000×3000 as stored, EXIF orientation 6 (turn 90° clockwise to view): upright it is 3000×4000,
    # red in its top half (the stored left half) and blue below
    raw = Image.new("RGB", (4000, 3000), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 2000, 3000))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    raw.save(buf, "JPEG", quality=90, exif=exif)
    uploads = []
    page.route("**/api/v1/cases/*/photos", lambda route: (uploads.append(multipart_file(route.request)), route.continue_()))

    f.report(description="big photo", photos=[buf.getvalue()])
    f.expect_outbox_count(0)

    sent = Image.open(io.BytesIO(uploads[0]))
    assert sent.format == "JPEG" and sent.size == (1536, 2048)
    assert sent.getexif().get(0x0112, 1) == 1
    top, bottom = sent.convert("RGB").getpixel((768, 300)), sent.convert("RGB").getpixel((768, 1750))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom
    case = cases_of(people["inspector"], people["inspector"].id)[0]
    [stored] = photos_of(people["inspector"], case["id"])
    assert (stored["width"], stored["height"]) == (1536, 2048)


def test_09_a_poor_fix_needs_a_choice_and_no_permission_means_a_pin(new_context, people):
    d = people["district"]
    inspector = people["inspector"]
    ctx = new_context(geolocation=at(d["point"](8), accuracy=150), permissions=["geolocation"])
    f = Field(ctx.new_page()).open().sign_in(inspector.username).wait_offline_ready()
    f.report(description="poor fix", photos=[png()], submit=False)
    expect(f.id("report-location")).to_have_attribute("data-state", "poor")
    expect(f.id("report-location")).to_contain_text("±150 m")
    expect(f.id("report-submit")).to_be_disabled()
    f.id("report-accept-poor").click()
    expect(f.id("report-location")).to_have_attribute("data-state", "accepted")
    expect(f.id("report-grid")).to_have_text(d["grids"][8])
    f.submit_report()
    f.expect_outbox_count(0)
    [case] = cases_of(inspector, inspector.id)
    assert "poor_accuracy" in case["location_flags"] and "pin" not in case["location_flags"]
    assert case["location"]["accuracy_m"] == 150

    # no permission to locate: the map is offered and the report carries the pin
    other = new_context()  # no geolocation permission granted
    g = Field(other.new_page()).open().sign_in(inspector.username).wait_offline_ready()
    g.report(description="pinned", photos=[png()], submit=False)
    expect(g.id("report-location")).to_have_attribute("data-state", "error")
    expect(g.id("report-submit")).to_be_disabled()
    g.page.locator(f'[data-testid="report-map"] [data-grid="{d["grids"][4]}"]').click()
    expect(g.id("report-location")).to_have_attribute("data-state", "pin")
    expect(g.id("report-grid")).to_have_text(d["grids"][4])
    g.submit_report()
    g.expect_outbox_count(0)
    pinned = next(c for c in cases_of(inspector, inspector.id) if c["description"] == "pinned")
    assert pinned["location_flags"] == ["pin"] and pinned["grid_code"] == d["grids"][4]


def test_10_a_patrol_of_20_positions_stores_20_points_in_order(new_context, people, app):
    from sqlalchemy import text

    from gridpatrol.extensions import db
    d = people["district"]
    lon0, lat0 = d["point"](0)
    track = [(lon0 + i * 0.0001, lat0 - i * 0.00005) for i in range(20)]
    ctx = new_context(geolocation=at(track[0]), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username)
    lost = {"n": 0}

    def lose_first_batch_answer(route):
        lost["n"] += 1
        response = route.fetch()
        route.abort("connectionreset") if lost["n"] == 1 else route.fulfill(response=response)
    page.route("**/api/v1/patrols/*/points", lose_first_batch_answer)

    f.id("nav-patrol").click()
    f.id("patrol-start").click()
    expect(f.id("patrol-points")).to_have_text("1")
    for i, point in enumerate(track[1:], start=2):
        ctx.set_geolocation(at(point))
        expect(f.id("patrol-points")).to_have_text(str(i))
    f.id("patrol-stop").click()
    expect(f.id("patrol-start")).to_be_visible()
    f.id("nav-outbox").click()
    f.expect_outbox_count(0, timeout=30_000)
    assert lost["n"] >= 2  # the first batch was sent again after its answer was lost

    with app.app_context():
        rows = db.session.execute(text(
            "SELECT ST_X(pp.geom), ST_Y(pp.geom), pp.seq, pp.idx FROM patrol_points pp JOIN patrols p ON p.id = pp.patrol_id "
            "WHERE p.inspector_id = :u ORDER BY pp.seq, pp.idx"), {"u": people["inspector"].id}).all()
        patrols = db.session.execute(text("SELECT count(*), count(ended_at) FROM patrols WHERE inspector_id = :u"),
                                     {"u": people["inspector"].id}).one()
    assert [(round(x, 7), round(y, 7)) for x, y, _, _ in rows] == [(round(x, 7), round(y, 7)) for x, y in track]
    assert len({(s, i) for _, _, s, i in rows}) == 20
    assert tuple(patrols) == (1, 1)


def test_11_an_offline_verification_on_a_changed_case_shows_a_conflict_and_keeps_the_input(new_context, people, make_user):
    d = people["district"]
    case = handled_case(people, d["point"](4))
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username)
    f.open_task(case["id"])
    expect(f.id("action-verify_pass")).to_be_visible()
    expect(f.id("action-verify_fail")).to_be_visible()
    expect(page.locator('#case-panel .actions button')).to_have_count(2)

    ctx.set_offline(True)
    f.id("action-verify_pass").click()
    photo = png()
    f.id("action-photo").set_input_files(files=[{"name": "v.png", "mimeType": "image/png", "buffer": photo}])
    expect(f.id("action-photo-item")).to_have_count(1)
    f.id("action-note").fill("fixed, checked on site")
    f.id("action-submit").click()
    expect(f.id("task-pending")).to_be_visible()
    f.expect_outbox_count(2)

    # meanwhile a supervisor escalates the case: its version moves on
    supervisor = make_user("supervisor", scope=people["scope"])
    supervisor.act(case["id"], "escalate", {"level": 1, "note": "hurry"})

    ctx.set_offline(False)
    expect(f.id("task-conflict")).to_be_visible(timeout=20_000)
    expect(f.id("action-note")).to_have_value("fixed, checked on site")
    expect(f.id("action-photo-item").locator("img")).to_have_count(1)
    assert people["inspector"].case(case["id"])["status"] == "handled"
    f.id("nav-outbox").click()
    expect(page.locator('[data-testid="outbox-item"][data-kind="action"]')).to_have_attribute("data-status", "needs_attention")
    f.expect_outbox_count(1)

    # the person applies it again to the current version: their photo and note go with it
    f.open_task(case["id"])
    f.id("conflict-retry").click()
    f.expect_outbox_count(0)
    closed = people["inspector"].case(case["id"])
    assert closed["status"] == "closed"
    verification = [p for p in photos_of(people["inspector"], case["id"]) if p["kind"] == "verification"]
    assert [p["sha256"] for p in verification] == [sha(photo)]


def test_12_sign_out_with_unsent_items_warns_and_the_next_user_sees_nothing(new_context, people, make_user):
    d = people["district"]
    first, second = people["inspector"], make_user("inspector", scope=people["scope"], grid_codes=d["grids"])
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(first.username).wait_offline_ready()
    ctx.set_offline(True)
    f.report(description="left behind", photos=[png()])
    f.expect_outbox_count(2)

    f.id("signout").click()
    expect(f.id("modal-text")).to_contain_text("2")
    f.id("modal-cancel").click()
    f.expect_outbox_count(2)  # still signed in, nothing lost
    f.id("signout").click()
    f.id("modal-ok").click()
    expect(f.id("login-submit")).to_be_visible()

    left = idb(page)
    assert left["items"] == [] and left["token"] is None
    assert not [k for k in left["keys"] if k.startswith(f"u:{first.id}:")]

    ctx.set_offline(False)
    f.sign_in(second.username)
    f.id("nav-outbox").click()
    f.expect_outbox_count(0)
    expect(f.id("outbox-item")).to_have_count(0)
    f.id("outbox-send-now").click()
    assert cases_of(first, first.id) == [] and cases_of(second, second.id) == []
