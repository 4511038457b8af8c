"""Settings from the environment, in one place."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Config:
    # Two database URLs. DATABASE_URL is the one the application serves with: in production a
    # restricted role made by `gridpatrol db app-role NAME` (rows only, the event log append-only,
    # no DDL). MIGRATE_DATABASE_URL is the schema's owner, used by `gridpatrol db …` (upgrade,
    # app-role); without it those commands use DATABASE_URL too, which must then own the schema.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "postgresql+psycopg:///gridpatrol")
    MIGRATE_DATABASE_URL = os.environ.get("MIGRATE_DATABASE_URL") or SQLALCHEMY_DATABASE_URI
    # a database host that drops packets fails a request in seconds instead of hanging it. No
    # pool_pre_ping: it costs a round trip per request; a pooled connection the server closed is
    # found at checkout without one (core.db.watch_connections)
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": _int("DB_POOL_SIZE", 5),
                                 # no JIT: its compilation cost 30-580 ms a statement on KPI and list queries at
                                 # 10M cases, more than it saved (docs/performance.md, fourth round). The
                                 # database checks every 2 s that the client of a running statement is still
                                 # there: a worker killed or restarted mid-request leaves no statement running
                                 "connect_args": {"connect_timeout": _int("DB_CONNECT_TIMEOUT_S", 5),
                                                  "options": "-c jit=off -c client_connection_check_interval=2000"}}
    # the longest a served request's statement may run (seconds; 0: no limit). A read of a whole city's
    # raw KPIs over years runs minutes of a CPU; past this it is cancelled and answered 503. Only the
    # served app's connections carry it: the `gridpatrol` commands (rebuilds, imports) run unlimited.
    REQUEST_STATEMENT_TIMEOUT_S = _float("REQUEST_STATEMENT_TIMEOUT_S", 60)
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    TIMEZONE = os.environ.get("GRIDPATROL_TIMEZONE", "Asia/Shanghai")
    PHOTO_STORAGE = os.environ.get("PHOTO_STORAGE", str(ROOT / "var" / "photos"))
    GEODATA_DIR = os.environ.get("GEODATA_DIR", str(ROOT / "geodata"))
    TOKEN_TTL_HOURS = _int("TOKEN_TTL_HOURS", 24 * 7)
    # sign-in attempts allowed per minute, per account and per address
    LOGIN_ATTEMPTS_PER_MINUTE = _int("LOGIN_ATTEMPTS_PER_MINUTE", 10)
    # KPIs as of now over more registrations than this give handling-hour percentiles from the daily
    # buckets (within a tenth of an hour under a day, an hour under ten days) instead of exactly
    KPI_EXACT_PERCENTILE_ROWS = _int("KPI_EXACT_PERCENTILE_ROWS", 5000)
    LOCATE_TOLERANCE_M = _float("LOCATE_TOLERANCE_M", 30.0)
    VERIFY_DISTANCE_M = _float("VERIFY_DISTANCE_M", 100.0)
    PHOTO_FAR_M = _float("PHOTO_FAR_M", 200.0)
    IMPORT_SLIVER_M2 = _float("IMPORT_SLIVER_M2", 1.0)
    # stage limits in working hours (domain.md, "Deadlines and timers")
    REGISTER_LIMIT_HOURS = _float("REGISTER_LIMIT_HOURS", 1)
    DISPATCH_LIMIT_HOURS = _float("DISPATCH_LIMIT_HOURS", 1)
    VERIFY_LIMIT_HOURS = _float("VERIFY_LIMIT_HOURS", 2)
    IDEMPOTENCY_WAIT_MS = _int("IDEMPOTENCY_WAIT_MS", 5000)
    # how long an Idempotency-Key and its answer are kept (days, at least 7): a phone resending an item
    # it sent longer ago than this makes a new write. `gridpatrol purge-keys` deletes the older ones
    IDEMPOTENCY_KEEP_DAYS = _int("IDEMPOTENCY_KEEP_DAYS", 30)
    MAX_CONTENT_LENGTH = _int("MAX_UPLOAD_BYTES", 40 * 1024 * 1024)
    PHOTO_MAX_BYTES = _int("PHOTO_MAX_BYTES", 15 * 1024 * 1024)
    PHOTO_MAX_PIXELS = _int("PHOTO_MAX_PIXELS", 40_000_000)

    # base map tiles for the field client, e.g. https://tiles.example.org/{z}/{x}/{y}.png (none: plain background)
    TILE_URL = os.environ.get("TILE_URL", "")
    TILE_URL_ORIGIN = "/".join(TILE_URL.split("/")[:3]) if TILE_URL.startswith("http") else ""
    # send Strict-Transport-Security (behind TLS)
    HSTS = os.environ.get("HSTS", "") == "1"

    # the Open311 GeoReport v2 door
    OPEN311_REQUESTS_PER_MINUTE = _int("OPEN311_REQUESTS_PER_MINUTE", 60)
    OPEN311_MAX_REQUESTS = _int("OPEN311_MAX_REQUESTS", 1000)
    OPEN311_JURISDICTION_ID = os.environ.get("OPEN311_JURISDICTION_ID", "")
    OPEN311_LOCALE = os.environ.get("OPEN311_LOCALE", "zh-CN")
    OPEN311_CONTACT = os.environ.get("OPEN311_CONTACT", "")
    OPEN311_KEY_SERVICE = os.environ.get("OPEN311_KEY_SERVICE", "")
    OPEN311_BASE_URL = os.environ.get("OPEN311_BASE_URL", "")  # else taken from the request
    OPEN311_ENDPOINT_TYPE = os.environ.get("OPEN311_ENDPOINT_TYPE", "production")

    COMPRESS_MIMETYPES = ["application/json", "application/geo+json", "application/problem+json", "text/csv",
                          "text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml"]
    COMPRESS_ALGORITHM = ["gzip"]
    COMPRESS_MIN_SIZE = 1024

    # outgoing webhooks (`gridpatrol webhooks deliver`)
    WEBHOOK_TIMEOUT_S = _float("WEBHOOK_TIMEOUT_S", 10)
    WEBHOOK_RETRY_BASE_S = _float("WEBHOOK_RETRY_BASE_S", 5)
    WEBHOOK_RETRY_MAX_S = _float("WEBHOOK_RETRY_MAX_S", 3600)
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 20)
    # receivers on loopback or private addresses (a test receiver, an office inside the same network)
    WEBHOOK_ALLOW_PRIVATE = os.environ.get("WEBHOOK_ALLOW_PRIVATE", "") == "1"

    API_TITLE = "GridPatrol API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    JSON_SORT_KEYS = False
