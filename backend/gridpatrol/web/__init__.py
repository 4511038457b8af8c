"""The browser apps, served by the backend itself (no CDN): the field client at /field/."""
from pathlib import Path

from flask import Blueprint, current_app, jsonify, redirect, send_from_directory

FIELD_DIR = Path(__file__).resolve().parents[3] / "field_client"

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return redirect("/field/")


@bp.get("/field/config.json")
def field_config():
    """Deployment settings the client needs before sign-in (the base map's tile URL, if any)."""
    response = jsonify(tile_url=current_app.config.get("TILE_URL") or None)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/field/")
@bp.get("/field/<path:path>")
def field(path: str = "index.html"):
    root = Path(current_app.config.get("FIELD_CLIENT_DIR") or FIELD_DIR)
    response = send_from_directory(root, path, max_age=0)
    if path in ("sw.js", "index.html"):
        # the service worker and the shell must be revalidated so a new version is found
        response.headers["Cache-Control"] = "no-cache"
    if path == "sw.js":
        response.headers["Service-Worker-Allowed"] = "/field/"
    return response
