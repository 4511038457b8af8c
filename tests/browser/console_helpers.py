"""The console (served at /console/) driven like an outside script would: by its data-testid
handles, in Debian's Chromium at a desk's 1366×768."""
import math

from playwright.sync_api import expect

from helpers import PASSWORD  # every test user has it
DESK = {"width": 1366, "height": 768}


class Console:
    def __init__(self, page):
        self.page = page

    def id(self, testid):
        return self.page.get_by_test_id(testid)

    def open(self, path="/console/"):
        self.page.goto(path)
        return self

    def sign_in(self, username, password=PASSWORD):
        self.id("login-username").fill(username)
        self.id("login-password").fill(password)
        self.id("login-submit").click()
        expect(self.id("signout")).to_be_visible()
        return self

    def go(self, hash_):
        self.page.evaluate("h => { location.hash = h; }", hash_)
        return self

    def queue_item(self, case_id):
        return self.page.locator(f'[data-testid="queue-item"][data-case-id="{case_id}"]')

    def kpi_row(self, key):
        return self.page.locator(f'[data-testid="kpi-row"][data-key="{key}"]')

    def kpi_cell(self, key, figure):
        return self.kpi_row(key).get_by_test_id(f"kpi-cell-{figure}")

    def map_ready(self, testid="map"):
        m = self.id(testid)
        expect(m).to_have_attribute("data-ready", "true")
        return m


def desk_context(new_context, **kw):
    kw.setdefault("viewport", DESK)
    kw.setdefault("has_touch", False)
    kw.setdefault("accept_downloads", True)
    return new_context(**kw)


def console_page(new_context, username, **kw):
    page = desk_context(new_context, **kw).new_page()
    return Console(page).open().sign_in(username)


# Web Mercator, as the console's map draws it (256-pixel world at zoom 0)
def world_px(lon, lat):
    s = math.sin(math.radians(lat))
    return (lon + 180) / 360 * 256, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * 256


def screen_of(map_el, lon, lat):
    """The pixel of a lon/lat inside the map element, from the centre and zoom the map reports."""
    box = map_el.bounding_box()
    clon, clat = (float(v) for v in map_el.get_attribute("data-center").split(","))
    zoom = float(map_el.get_attribute("data-zoom"))
    x, y = world_px(lon, lat)
    cx, cy = world_px(clon, clat)
    return (x - cx) * 2 ** zoom + box["width"] / 2, (y - cy) * 2 ** zoom + box["height"] / 2


def canvas_pixel(page, testid, x, y):
    """RGBA of the map's canvas at a CSS pixel of the map element."""
    return page.evaluate("""([testid, x, y]) => {
        const c = document.querySelector(`[data-testid="${testid}"] canvas`);
        const r = window.devicePixelRatio || 1;
        return Array.from(c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data);
    }""", [testid, x, y])


# what the console's map drew in its last frame, as the map itself reports it (queryRenderedFeatures on
# the map element, like MapLibre's): [{layer, sourceLayer?, properties, style, geometry?, onScreen?}]
def rendered_features(page, layers, testid="map"):
    return page.evaluate("""([testid, layers]) => {
        const el = document.querySelector(`[data-testid="${testid}"]`);
        return el && el.queryRenderedFeatures ? el.queryRenderedFeatures({ layers }) : [];
    }""", [testid, layers])


def wait_rendered(page, layers, predicate, testid="map", timeout=30_000):
    """Wait until `predicate` (JS source of a function of the rendered features) holds."""
    page.wait_for_function(f"""([testid, layers]) => {{
        const el = document.querySelector(`[data-testid="${{testid}}"]`);
        if (!el || !el.queryRenderedFeatures) return false;
        return ({predicate})(el.queryRenderedFeatures({{ layers }}));
    }}""", arg=[testid, layers], timeout=timeout)
