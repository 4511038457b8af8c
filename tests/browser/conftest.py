"""Playwright fixtures: Debian's Chromium (never a downloaded browser) driving the field client
served by the real backend (`live_server`: gunicorn on the test PostGIS database).

The tests know the client only by its data-testid handles and the server only by HTTP, like an
outside script would; the `app`-side fixtures (make_user, make_team, district) make the people,
teams and grids each test needs, in the same database the live server uses.
"""
import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 740}
expect.set_options(timeout=15_000)


# one browser per test module: the sync API's event loop does not outlive the browser tests
@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw):
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield b
    b.close()


def _context_options(live_server, kw):
    kw.setdefault("base_url", live_server)
    kw.setdefault("viewport", PHONE)
    kw.setdefault("locale", "zh-CN")
    kw.setdefault("has_touch", True)
    return kw


class Watch:
    """What pages must never show: an uncaught error, or something the CSP refused."""

    def __init__(self):
        self.problems = []

    def attach(self, ctx):
        ctx.on("page", self._page)
        for page in ctx.pages:
            self._page(page)

    def _page(self, page):
        page.on("pageerror", lambda e: self.problems.append(f"{page.url}: {e}"))
        page.on("console", lambda m: self.problems.append(f"{page.url}: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text else None)


@pytest.fixture
def watch():
    w = Watch()
    yield w
    assert w.problems == []


@pytest.fixture
def new_context(browser, live_server, watch):
    """new_context(**options) -> a fresh browser context (its own storage), closed after the test."""
    contexts = []

    def make(**kw):
        ctx = browser.new_context(**_context_options(live_server, kw))
        ctx.set_default_timeout(15_000)
        watch.attach(ctx)
        contexts.append(ctx)
        return ctx
    yield make
    for c in contexts:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def persistent(pw, live_server, tmp_path, watch):
    """persistent(**options) -> a context on a profile folder kept for the whole test: closing it and
    launching again is closing and reopening the browser."""
    profile = tmp_path / "profile"
    opened = []

    def launch(**kw):
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
                                                    **_context_options(live_server, kw))
        ctx.set_default_timeout(15_000)
        watch.attach(ctx)
        opened.append(ctx)
        return ctx
    yield launch
    for c in opened:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def people(make_user, make_team, district):
    """An inspector responsible for the district's grids, a dispatcher, and a handler in an enforcement team."""
    team = make_team(kind="enforcement", area_codes=[district["code"]])
    scope = [district["code"]]
    inspector = make_user("inspector", scope=scope, grid_codes=district["grids"])
    return {
        "district": district, "team": team, "scope": scope, "inspector": inspector,
        "dispatcher": make_user("dispatcher", scope=scope),
        "handler": make_user("handler", scope=scope, teams=[team]),
        "inspector2": make_user("inspector", scope=scope, grid_codes=district["grids"]),
    }


