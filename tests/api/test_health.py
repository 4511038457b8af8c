"""The doors that need no sign-in."""


def test_health_and_openapi(anon):
    assert anon.get("/healthz").get_json() == {"database": True, "status": "ok"}
    spec = anon.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/reports" in spec["paths"] and "/api/v1/cases/{case_id}/actions/{action}" in spec["paths"]


def test_health_is_served_by_gunicorn(live_server):
    import requests
    r = requests.get(live_server + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["database"] is True
    assert "gunicorn" in r.headers.get("Server", "")
