"""The console's doors to other systems: the administrator's webhooks page (register a URL, the
secret shown once, its queue and last attempt, send a failed delivery again, pause, delete), and
the case list exported with its filters."""
import re

from playwright.sync_api import expect

from console_helpers import console_page


def deliver_once(app, webhook_id, max_attempts):
    """One pass of the delivery worker for this webhook only (its URL refuses connections)."""
    from gridpatrol.webhooks import delivery
    before = app.config["WEBHOOK_MAX_ATTEMPTS"], app.config["WEBHOOK_ALLOW_PRIVATE"]
    app.config.update(WEBHOOK_MAX_ATTEMPTS=max_attempts, WEBHOOK_ALLOW_PRIVATE=True)
    try:
        with app.app_context():
            return delivery.deliver_all(webhook_id)
    finally:
        app.config["WEBHOOK_MAX_ATTEMPTS"], app.config["WEBHOOK_ALLOW_PRIVATE"] = before


def test_an_admin_registers_a_webhook_and_follows_its_deliveries(app, new_context, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    inspector = make_user("inspector", scope=[district["code"]])
    c = console_page(new_context, admin.username)
    c.go("#/admin/webhooks")
    url = "http://127.0.0.1:9/gridpatrol-events"     # nothing listens on the discard port
    c.id("webhook-url").fill(url)
    c.id("webhook-description").fill("区城运中心 工单系统")
    c.id("admin-field-webhook-events").get_by_label("case.created").check()
    c.id("admin-field-webhook-events").get_by_label("case.closed").check()
    c.id("webhook-create").click()
    expect(c.id("webhook-created")).to_be_visible()
    secret = c.id("webhook-secret").input_value()
    assert len(secret) >= 32
    c.page.keyboard.press("Escape")

    hooks = admin.get("/api/v1/webhooks").get_json()["items"]
    hook = next(h for h in hooks if h["url"] == url)
    assert hook["events"] == ["case.created", "case.closed"] and hook["description"] == "区城运中心 工单系统"
    row = c.page.locator(f'[data-testid="webhook-row"][data-webhook-id="{hook["id"]}"]')
    expect(row).to_contain_text("case.created case.closed")
    expect(row.get_by_test_id("webhook-queue")).to_have_text(re.compile(r"待投 0 · 已投 0 · 失败 0"))

    lon, lat = district["point"](4)
    inspector.report(lon=lon, lat=lat)
    assert deliver_once(app, hook["id"], max_attempts=1) == 1
    c.go("#/admin/users")
    c.go("#/admin/webhooks")
    expect(row.get_by_test_id("webhook-queue")).to_have_text(re.compile(r"待投 0 · 已投 0 · 失败 1"))
    expect(row.get_by_test_id("webhook-last")).to_contain_text("无应答")

    row.get_by_test_id("webhook-show").click()
    delivery = c.id("webhook-deliveries").get_by_test_id("webhook-delivery")
    expect(delivery).to_have_count(1)
    expect(delivery).to_have_attribute("data-status", "failed")
    expect(delivery).to_contain_text("case.created")
    delivery.get_by_test_id("webhook-retry").click()
    expect(delivery).to_have_attribute("data-status", "pending")
    assert admin.get(f"/api/v1/webhooks/{hook['id']}").get_json()["deliveries"]["pending"] == 1

    row.get_by_test_id("webhook-toggle").click()
    expect(row).to_contain_text("已暂停")
    assert admin.get(f"/api/v1/webhooks/{hook['id']}").get_json()["active"] is False

    row.get_by_test_id("webhook-delete").click()
    c.id("confirm-ok").click()
    expect(row).to_have_count(0)
    assert admin.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404


def test_a_dispatcher_exports_the_filtered_case_list(new_context, people):
    """The case list's filters go to the export: the CSV holds exactly the listed cases."""
    import csv
    import io
    import json
    d, inspector = people["district"], people["inspector"]
    numbers = set()
    for i, category in ((1, "0701"), (2, "0701"), (3, "0101")):
        lon, lat = d["point"](i)
        numbers.add((inspector.report(lon=lon, lat=lat, category_code=category)["number"], category))
    c = console_page(new_context, people["dispatcher"].username)
    c.go("#/cases?category=0701&street=" + d["code"] + "001")
    expect(c.id("cases-total")).to_have_attribute("data-total", "2")
    with c.page.expect_download() as info:
        c.id("cases-export-csv").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["number"] for r in rows} == {n for n, cat in numbers if cat == "0701"}
    with c.page.expect_download() as info:
        c.id("cases-export-geojson").click()
    features = json.loads(open(info.value.path(), encoding="utf-8").read())["features"]
    assert sorted(f["properties"]["number"] for f in features) == sorted(r["number"] for r in rows)
