from flask import Blueprint, jsonify
from sqlalchemy import text

from ..extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database is "not healthy", not a crash
        db.session.rollback()
        # the same wait the API asks for while the database is away (core.api.database_problem)
        return jsonify(status="unavailable", database=False), 503, {"Retry-After": "2"}
    return jsonify(status="ok", database=True)
