"""GridPatrol: grid-based urban management, from a patrol report to a verified fix."""
import logging

from flask import Flask, request
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from werkzeug.routing import IntegerConverter

from .config import Config
from .extensions import api, compress, db, migrate

MIGRATIONS = __import__("pathlib").Path(__file__).parent / "migrations"


class BoundedInt(IntegerConverter):
    """Ids in paths fit PostgreSQL's bigint; a larger number is simply not found."""
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.url_map.converters["int"] = BoundedInt
    app.json.sort_keys = False  # fields in the order the schemas declare them
    app.config.from_object(Config)
    if config:
        app.config.update(config)
    logging.basicConfig(level=logging.INFO)
    _limit_statements(app)

    from . import models  # noqa: F401  (every table on the metadata, for Alembic)

    db.init_app(app)
    from .core.db import watch_connections
    with app.app_context():
        for engine in db.engines.values():
            watch_connections(engine)
    compress.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})

    from .auth.routes import blp as auth_blp
    from .cases.routes import blp as cases_blp
    from .exports.routes import blp as exports_blp
    from .catalog.routes import blp as catalog_blp
    from .grids.routes import blp as grids_blp
    from .kpis.routes import blp as kpis_blp
    from .maps.routes import blp as maps_blp
    from .open311.routes import blp as open311_blp
    from .patrols.routes import blp as patrols_blp
    from .photos.routes import blp as photos_blp
    from .teams.routes import blp as teams_blp
    from .webhooks.routes import blp as webhooks_blp

    for blp in (auth_blp, grids_blp, catalog_blp, teams_blp, cases_blp, photos_blp, patrols_blp, kpis_blp,
                open311_blp, exports_blp, webhooks_blp):
        api.register_blueprint(blp, url_prefix="/api/v1")
    api.register_blueprint(maps_blp, url_prefix="/api/v1")

    # the action bodies are validated by hand (one schema per action): document them all
    from .cases.schemas import ACTION_SCHEMAS
    for schema in dict.fromkeys(ACTION_SCHEMAS.values()):
        if schema.__name__ not in api.spec.components.schemas:
            api.spec.components.schema(schema.__name__, schema=schema)

    from .core.health import bp as health_bp
    from .open311.routes import bp as open311_bp
    from .web import bp as web_bp
    app.register_blueprint(health_bp)
    app.register_blueprint(open311_bp)
    app.register_blueprint(web_bp)

    _commit_at_the_boundary(app)
    _refuse_other_media(app)
    _security_headers(app)
    return app


def _limit_statements(app: Flask) -> None:
    """REQUEST_STATEMENT_TIMEOUT_S as the connections' statement_timeout, set when each connects (no
    round trip per request). A statement past it is cancelled and its request answered 503
    (core.api.database_problem). 0 (the commands' app) sends 0: no limit, whatever the role's default."""
    seconds = max(0.0, app.config["REQUEST_STATEMENT_TIMEOUT_S"] or 0)
    engine = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    connect = dict(engine.get("connect_args", {}))
    limit = max(1, round(seconds * 1000)) if seconds else 0
    connect["options"] = f"{connect.get('options', '')} -c statement_timeout={limit}".strip()
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**engine, "connect_args": connect}


def _refuse_other_media(app: Flask) -> None:
    """API bodies are JSON (or multipart for files): anything else is 415, before a schema would
    read it as an empty body."""
    from .core.errors import UnsupportedMedia

    @app.before_request
    def media_type():
        if (request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/api/v1/")
                and request.content_length and not request.is_json
                and request.mimetype != "multipart/form-data"):
            raise UnsupportedMedia("Send the body as application/json (or multipart/form-data for files)",
                                   {"Content-Type": [f"{request.mimetype or 'none'} is not accepted"]})


def _security_headers(app: Flask) -> None:
    """Headers for every answer: no sniffing, no framing, a strict CSP (no inline script)."""
    @app.after_request
    def headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        tiles = app.config.get("TILE_URL_ORIGIN") or ""
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; script-src 'self'; style-src 'self'; "
                     f"img-src 'self' data: blob: {tiles}".rstrip() + "; connect-src 'self'; worker-src 'self'; "
                     "manifest-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
                     "form-action 'self'")
        if app.config.get("HSTS"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def _commit_at_the_boundary(app: Flask) -> None:
    """Every request commits once when it succeeded and rolls back otherwise (services only flush)."""
    from .core.api import database_problem, problem_response

    @app.after_request
    def commit_or_rollback(response):
        if response.status_code >= 400 or request.method in ("GET", "HEAD", "OPTIONS"):
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            app.logger.info("conflict at commit: %s", exc.orig)
            return problem_response(409, "Conflict", "The change conflicts with another one; read and retry")
        except (OperationalError, InterfaceError) as exc:
            db.session.rollback()
            return database_problem(exc)
        return response
