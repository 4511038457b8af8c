"""Item 14: security headers on the API, the field client and the console."""
import re

import pytest

PATHS = ["/api/v1/openapi.json", "/api/v1/me", "/field/", "/console/"]


def _directives(csp):
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


def _check(r, path):
    h = r.headers
    assert h.get("X-Content-Type-Options") == "nosniff", (path, dict(h))
    csp = _directives(h.get("Content-Security-Policy", ""))
    script = csp.get("script-src", csp.get("default-src"))
    assert script, (path, h.get("Content-Security-Policy"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, (path, script)
    assert "*" not in script, (path, script)
    assert h.get("X-Frame-Options") == "DENY" and csp.get("frame-ancestors") == ["'none'"], (path, dict(h))
    assert csp.get("object-src") == ["'none'"], (path, csp)


@pytest.mark.parametrize("path", PATHS)
def test_security_headers(client, path):
    r = client.get(path)
    print(f"\n[headers] {path} -> {r.status_code} CSP={r.headers.get('Content-Security-Policy')!r} "
          f"HSTS={r.headers.get('Strict-Transport-Security')!r}")
    assert r.status_code in (200, 401), (path, r.status_code)
    _check(r, path)
    assert "Strict-Transport-Security" not in r.headers


def test_security_headers_on_errors_and_html_entry_points(client, make_user):
    api = make_user("inspector")
    for r, path in [(api.get("/api/v1/cases/999999999"), "404"), (api.post("/api/v1/reports", json={}), "422"),
                    (client.get("/console/no-such-file.js"), "console 404")]:
        _check(r, path)


def test_hsts_when_configured(app):
    from gridpatrol import create_app
    hsts_app = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "TESTING": True,
                           "PHOTO_STORAGE": app.config["PHOTO_STORAGE"], "HSTS": True})
    client = hsts_app.test_client()
    seen = {}
    for path in PATHS:
        r = client.get(path)
        value = r.headers.get("Strict-Transport-Security", "")
        seen[path] = value
        _check(r, path)
        m = re.search(r"max-age=(\d+)", value)
        assert m and int(m.group(1)) >= 15552000, (path, value)  # at least 180 days
    print(f"\n[HSTS=1] {seen}")
