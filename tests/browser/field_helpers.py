"""What the browser tests share besides fixtures: the field client driven by its data-testid
handles (Field), images, and reads of the server over HTTP."""
import io
import uuid

from playwright.sync_api import expect

from helpers import PASSWORD  # every test user has it


def at(point, accuracy=5):
    """Playwright geolocation for a (lon, lat) point."""
    lon, lat = point
    return {"longitude": lon, "latitude": lat, "accuracy": accuracy}


class Field:
    """The field client in one page, driven through its data-testid handles only."""

    def __init__(self, page):
        self.page = page

    def id(self, testid):
        return self.page.get_by_test_id(testid)

    def open(self, path="/field/"):
        self.page.goto(path)
        return self

    def sign_in(self, username, password=PASSWORD):
        self.id("login-username").fill(username)
        self.id("login-password").fill(password)
        self.id("login-submit").click()
        expect(self.id("nav-outbox")).to_be_visible()
        return self

    def wait_offline_ready(self):
        """The service worker controls the page and the categories are kept on the device."""
        # A function, not an expression: Playwright evaluates an expression again on every poll with
        # eval(), which the page's Content-Security-Policy refuses once the first try was false.
        self.page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")
        expect(self.page.locator("body")).to_have_attribute("data-reference-cached", "true")
        self.id("nav-report").click()
        expect(self.id("report-category").locator("option")).not_to_have_count(1)
        expect(self.id("report-category").locator("option")).not_to_have_count(0)
        return self

    def outbox_count(self):
        return int(self.id("outbox-count").text_content())

    def expect_outbox_count(self, n, timeout=20_000):
        expect(self.id("outbox-count")).to_have_text(str(n), timeout=timeout)

    def report(self, category="0701", description="", photos=(), urgency="B", submit=True):
        self.id("nav-report").click()
        self.id("report-category").select_option(category)
        self.id("report-urgency").select_option(urgency)
        self.id("report-description").fill(description)
        for i, data in enumerate(photos):
            before = self.id("report-photo-item").count()
            self.id("report-photo").set_input_files(files=[{"name": f"p{i}.png", "mimeType": mime_of(data), "buffer": data}])
            expect(self.id("report-photo-item")).to_have_count(before + 1)
        if submit:
            self.submit_report()
        return self

    def submit_report(self):
        """Submit and wait until the report is in the outbox."""
        self.id("report-submit").click()
        expect(self.id("report-done")).to_be_visible()
        return self

    def outbox_statuses(self):
        self.id("nav-outbox").click()
        return [e.get_attribute("data-status") for e in self.id("outbox-item").all()]

    def open_task(self, case_id):
        self.id("nav-tasks").click()
        self.page.locator(f'[data-testid="task-item"][data-case-id="{case_id}"]').click()
        expect(self.id("case-panel")).to_be_visible()


def mime_of(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def dispatched_case(people, point, description="a case for the team"):
    """A case reported by another inspector, registered and dispatched to the handler's team (HTTP API)."""
    lon, lat = point
    case = people["inspector2"].report(lon=lon, lat=lat, description=description)
    people["dispatcher"].act(case["id"], "register", {})
    return people["dispatcher"].act(case["id"], "dispatch", {"team_id": people["team"]})


def handled_case(people, point, description="handled case"):
    """A case taken through report → register → dispatch → accept → handle over the HTTP API."""
    case = dispatched_case(people, point, description)
    handler = people["handler"]
    handler.act(case["id"], "accept", {})
    photo = handler.photo(case["id"], "after")
    return handler.act(case["id"], "handle", {"note": "cleaned", "photo_ids": [photo["id"]]})


def photos_of(api, case_id):
    r = api.get(f"/api/v1/cases/{case_id}/photos")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def multipart_file(request) -> bytes:
    """The `file` part of a multipart request seen by a Playwright route."""
    from email.parser import BytesParser
    from email.policy import default
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    msg = BytesParser(policy=default).parsebytes(head + request.post_data_buffer)
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True)
    raise AssertionError("no file part")


# the raw contents of the client's IndexedDB, read in the page without the app's code
READ_IDB = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('gridpatrol'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const all = (store, what) => new Promise((ok, no) => { const r = db.transaction(store).objectStore(store)[what](); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const items = (await all('outbox', 'getAll')).map((it) => ({ id: it.id, key: it.key, kind: it.kind, status: it.status, user_id: it.user_id,
    attempts: it.attempts, next_try: it.next_try, last_try: it.last_try || 0, message: it.message }));
  const keys = await all('kv', 'getAllKeys');
  const session = await new Promise((ok) => { const r = db.transaction('kv').objectStore('kv').get('session'); r.onsuccess = () => ok(r.result || null); });
  db.close();
  return { items, keys, token: session && session.token };
}"""


def idb(page):
    return page.evaluate(READ_IDB)


def cases_of(api, reporter_id):
    r = api.get(f"/api/v1/cases?reporter={reporter_id}&per_page=100")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


_n = [0]


def png(size=(32, 32)) -> bytes:
    """A small real PNG, different on every call."""
    from PIL import Image
    _n[0] += 1
    img = Image.new("RGB", size, ((_n[0] * 37) % 256, (_n[0] * 91) % 256, uuid.uuid4().int % 256))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def eventually(probe, timeout=15.0, every=0.05):
    """Poll `probe()` until it returns something truthy (a wait for a condition, not a fixed sleep)."""
    import time
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
