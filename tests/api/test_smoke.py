"""The shared contract's smoke walk, against the product served by gunicorn."""
import subprocess
import sys
from pathlib import Path

SMOKE = Path(__file__).resolve().parents[3] / "shared" / "contract" / "smoke.py"


def test_health_and_openapi(anon):
    assert anon.get("/healthz").get_json() == {"database": True, "status": "ok"}
    spec = anon.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/reports" in spec["paths"] and "/api/v1/cases/{case_id}/actions/{action}" in spec["paths"]
