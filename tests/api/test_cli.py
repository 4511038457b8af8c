"""The `gridpatrol` command, run through Flask's CLI runner on the test database."""
import json
import uuid

from gridpatrol.cli import create_user, import_grids
from helpers import block_geojson


def test_create_user_then_sign_in(app, client):
    name = f"cli_{uuid.uuid4().hex[:8]}"
    result = app.test_cli_runner().invoke(create_user, args=["--username", name, "--password", "Cli-pass-2026!",
                                                "--role", "dispatcher", "--role", "supervisor", "--scope", "310199"])
    assert result.exit_code == 0, result.output
    assert f"{name}: dispatcher, supervisor in 310199" in result.output
    r = client.post("/api/v1/auth/token", json={"username": name, "password": "Cli-pass-2026!"})
    assert r.status_code == 200 and r.get_json()["user"]["display_name"] == name


def test_create_user_refuses_bad_input(app):
    result = app.test_cli_runner().invoke(create_user, args=["--username", "x", "--password", "short",
                                                "--role", "mayor", "--scope", "31"])
    assert result.exit_code != 0
    assert "password" in result.output and "roles" in result.output and "scope" in result.output


def test_import_grids_reports_each_rejected_feature(app, tmp_path):
    doc = block_geojson("970901", x0=110.0, y0=20.0, n=2)
    doc["features"][1]["properties"]["code"] = "12AB"
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps(doc))
    result = app.test_cli_runner().invoke(import_grids, args=[str(path)])
    assert result.exit_code == 0, result.output
    assert "created 3, updated 0, rejected 1" in result.output
    assert "feature 1 (12AB)" in result.output
    again = app.test_cli_runner().invoke(import_grids, args=[str(path)])
    assert "created 0, updated 3, rejected 1" in again.output
