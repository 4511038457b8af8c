"""The browser apps, served by the backend itself (no CDN): the field client at /field/ and the
desk console (dispatch, supervision, administration) at /console/."""
import hashlib
import json
import re
from pathlib import Path

from flask import Blueprint, current_app, jsonify, redirect, send_from_directory

FIELD_DIR = Path(__file__).resolve().parents[3] / "field_client"
CONSOLE_DIR = Path(__file__).resolve().parents[3] / "console"
_MANIFEST = re.compile(r"/\*MANIFEST\*/.*?/\*END\*/", re.S)
_cache: dict = {}

bp = Blueprint("web", __name__)


def _root() -> Path:
    return Path(current_app.config.get("FIELD_CLIENT_DIR") or FIELD_DIR)


def shell_manifest(root: Path) -> dict:
    """The app shell the service worker caches: every file of the client but the worker itself
    and the docs/licences, and a version that changes whenever any of them (or the worker) does."""
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if _cache.get("stamp") == (str(root), stamp):
        return _cache["manifest"]
    digest = hashlib.sha256()
    shell = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
        if rel != "sw.js" and not rel.endswith((".md", ".txt")) and not p.name.upper().startswith("LICENSE"):
            shell.append(rel)
    manifest = {"version": digest.hexdigest()[:16], "files": ["./", *shell],
                "bytes": sum((root / f).stat().st_size for f in shell)}
    _cache.update(stamp=(str(root), stamp), manifest=manifest)
    return manifest


@bp.get("/")
def index():
    return redirect("/field/")


@bp.get("/field/config.json")
@bp.get("/console/config.json")
def client_config():
    """Deployment settings the browser apps need before sign-in (the base map's tile URL, if any)."""
    response = jsonify(tile_url=current_app.config.get("TILE_URL") or None)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/field/sw.js")
def field_worker():
    """The service worker, with the shell's file list and version written in."""
    root = _root()
    manifest = shell_manifest(root)
    source = (root / "sw.js").read_text(encoding="utf-8")
    body = _MANIFEST.sub(lambda _: json.dumps({"version": manifest["version"], "files": manifest["files"]}), source, count=1)
    response = current_app.response_class(body, mimetype="text/javascript")
    # the worker must be revalidated so a new version is found
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/field/"
    return response


@bp.get("/field/")
@bp.get("/field/<path:path>")
def field(path: str = "index.html"):
    response = send_from_directory(_root(), path, max_age=0)
    if path == "index.html":
        # the shell must be revalidated so a new version is found
        response.headers["Cache-Control"] = "no-cache"
    return response


def _console_root() -> Path:
    return Path(current_app.config.get("CONSOLE_DIR") or CONSOLE_DIR)


@bp.get("/console")
def console_slash():
    return redirect("/console/")


@bp.get("/console/")
@bp.get("/console/<path:path>")
def console(path: str = "index.html"):
    # no service worker here (a desk app is online): every file is revalidated, so a new version
    # is picked up at the next load
    response = send_from_directory(_console_root(), path, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
