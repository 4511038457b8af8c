"""Beyond the twelve acceptance points: the handler's round, a session that runs out with items
queued, full storage, English and the narrow screen."""
import requests
from playwright.sync_api import expect

from field_helpers import Field, at, cases_of, dispatched_case, idb, photos_of, png


def test_a_handler_accepts_and_reports_handled_with_after_photos(new_context, people):
    d = people["district"]
    case = dispatched_case(people, d["point"](2), "garbage by the gate")
    ctx = new_context(geolocation=at(d["point"](2)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["handler"].username)
    # a handler reports nothing and patrols nothing: those tabs are not offered
    expect(f.id("nav-report")).to_be_hidden()
    expect(f.id("nav-patrol")).to_be_hidden()

    f.open_task(case["id"])
    buttons = page.locator("#case-panel .actions button")
    expect(buttons).to_have_count(3)
    assert sorted(b.get_attribute("data-testid") for b in buttons.all()) == [
        "action-accept", "action-request_extension", "action-return"]
    f.id("action-accept").click()
    f.id("action-submit").click()
    expect(f.id("action-handle")).to_be_visible()
    assert people["handler"].case(case["id"])["status"] == "in_progress"

    f.id("action-handle").click()
    expect(f.id("action-submit")).to_be_disabled()  # a note and an after-photo are required
    after = png()
    f.id("action-photo").set_input_files(files=[{"name": "after.png", "mimeType": "image/png", "buffer": after}])
    f.id("action-note").fill("cleared and swept")
    f.id("action-submit").click()
    expect(f.id("task-no-actions")).to_be_visible()
    f.expect_outbox_count(0)
    handled = people["handler"].case(case["id"])
    assert handled["status"] == "handled"
    import hashlib
    assert [p["sha256"] for p in photos_of(people["handler"], case["id"]) if p["kind"] == "after"] == [
        hashlib.sha256(after).hexdigest()]


def test_a_session_that_ran_out_keeps_the_items_until_sign_in(new_context, people, live_server):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()
    ctx.set_offline(True)
    f.report(description="after the token died", photos=[png()])
    # the token dies on the server (revoked elsewhere, or expired) while the phone is offline
    token = idb(page)["token"]
    assert requests.delete(f"{live_server}/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"}).status_code == 204

    ctx.set_offline(False)
    expect(f.id("login-notice")).to_contain_text("2")
    # the item whose send met the 401 settles back to queued a moment after the notice shows
    for _ in range(100):
        queued = [i for i in idb(page)["items"] if i["status"] == "queued"]
        if len(queued) == 2:
            break
        page.wait_for_timeout(100)
    assert len(queued) == 2
    assert cases_of(people["inspector"], people["inspector"].id) == []

    f.sign_in(people["inspector"].username)
    # the badge said 0 while the session was out: the outbox itself is what has to empty
    for _ in range(200):
        if not [i for i in idb(page)["items"] if i["status"] in ("queued", "sending", "needs_attention")]:
            break
        page.wait_for_timeout(100)
    f.expect_outbox_count(0)
    [case] = cases_of(people["inspector"], people["inspector"].id)
    assert case["description"] == "after the token died"
    assert len(photos_of(people["inspector"], case["id"])) == 1


FULL_STORAGE = """
(() => {
  const add = IDBObjectStore.prototype.add;
  IDBObjectStore.prototype.add = function (...args) {
    if (self.__storageFull && this.name === 'outbox') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return add.apply(this, args);
  };
})();
"""


def test_full_storage_says_so_and_keeps_the_form(new_context, people):
    d = people["district"]
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    ctx.add_init_script(FULL_STORAGE)
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username).wait_offline_ready()
    f.report(description="kept when full", photos=[png()], submit=False)
    page.evaluate("self.__storageFull = true")
    f.id("report-submit").click()
    expect(f.id("report-message")).to_be_visible()
    expect(f.id("report-description")).to_have_value("kept when full")
    expect(f.id("report-photo-item")).to_have_count(1)
    f.expect_outbox_count(0)

    page.evaluate("self.__storageFull = false")
    f.submit_report()
    f.expect_outbox_count(0)
    assert len(cases_of(people["inspector"], people["inspector"].id)) == 1


def test_english_on_a_360_px_screen(new_context, people):
    ctx = new_context(viewport={"width": 360, "height": 640})
    page = ctx.new_page()
    f = Field(page).open()
    expect(f.id("login-submit")).to_have_text("登录")
    f.id("lang-toggle").click()
    expect(f.id("login-submit")).to_have_text("Sign in")
    f.sign_in(people["inspector"].username)
    for view in ("report", "tasks", "patrol", "outbox", "map"):
        f.id(f"nav-{view}").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, view
    expect(f.id("nav-report")).to_contain_text("Report")
    page.reload()
    expect(f.id("nav-report")).to_contain_text("Report")  # the choice is kept
    # every button a finger must hit is at least 40 px high
    small = page.evaluate("""[...document.querySelectorAll('nav button, .view:not([hidden]) button')]
        .filter((b) => b.offsetParent && b.getBoundingClientRect().height < 40).map((b) => b.dataset.testid || b.textContent)""")
    assert small == []


def test_a_verification_on_a_case_closed_meanwhile_is_refused_and_kept(new_context, people, make_user):
    from field_helpers import handled_case
    d = people["district"]
    case = handled_case(people, d["point"](4))
    ctx = new_context(geolocation=at(d["point"](4)), permissions=["geolocation"])
    page = ctx.new_page()
    f = Field(page).open().sign_in(people["inspector"].username)
    f.open_task(case["id"])
    ctx.set_offline(True)
    f.id("action-verify_fail").click()
    f.id("action-note").fill("still dirty")
    f.id("action-photo").set_input_files(files=[{"name": "v.png", "mimeType": "image/png", "buffer": png()}])
    expect(f.id("action-photo-item")).to_have_count(1)
    f.id("action-submit").click()
    expect(f.id("task-pending")).to_be_visible()

    # another inspector verifies it first: the case is closed, the photo is refused (409)
    other = people["inspector2"]
    photo = other.photo(case["id"], "verification")
    lon, lat = d["point"](4)
    other.act(case["id"], "verify_pass", {"photo_ids": [photo["id"]], "lon": lon, "lat": lat, "accuracy_m": 5})

    ctx.set_offline(False)
    expect(f.id("task-conflict")).to_be_visible(timeout=20_000)
    expect(f.id("action-note")).to_have_value("still dirty")
    expect(f.id("action-photo-item")).to_have_count(1)
    f.id("conflict-retry").click()
    expect(f.id("action-error")).to_be_visible()  # no longer possible: the case is closed
    assert people["inspector"].case(case["id"])["status"] == "closed"
    f.id("conflict-discard").click()
    f.id("modal-ok").click()
    f.expect_outbox_count(0)
    assert [p["kind"] for p in photos_of(people["inspector"], case["id"])].count("verification") == 1
