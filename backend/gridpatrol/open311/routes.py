"""The Open311 door (`bp`, /open311/v2, the specification's formats and errors) and the admin's
keys (`blp`, /api/v1, problem+json like the rest of the API)."""
import logging

from flask import Blueprint as FlaskBlueprint
from flask import current_app, request
from flask.views import MethodView
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound as RouteNotFound

from ..core.api import Blueprint, database_error, from_the_database, schema_instance
from ..core.authz import current_user, requires
from ..core.errors import BadRequest, Problem
from . import formats, services
from .schemas import KeyCreated, KeyIn, KeyList, RequestsQuery, ServiceRequestIn, form_data

log = logging.getLogger(__name__)

bp = FlaskBlueprint("open311", __name__, url_prefix="/open311/v2")
FMT = "<any(xml, json):fmt>"


def _answer(root: str, data, fmt: str, status: int = 200, headers: dict | None = None):
    return current_app.response_class(formats.render(root, data, fmt), status=status, headers=headers,
                                      content_type=formats.CONTENT_TYPES[fmt])


def _english() -> bool:
    return services.is_english(request.values.get("locale"))


def _load(schema, data: dict) -> dict:
    try:
        return schema_instance(schema).load(data)
    except ValidationError as err:
        raise BadRequest("Some fields are missing or not valid",
                         {name: msgs if isinstance(msgs, list) else [str(msgs)] for name, msgs in err.messages.items()})


@bp.before_request
def _jurisdiction():
    services.check_jurisdiction(request.values.get("jurisdiction_id"))


@bp.after_request
def _public_reads(response):
    if request.method in ("GET", "HEAD"):
        response.headers.setdefault("Access-Control-Allow-Origin", "*")  # any citizen app may read
    return response


@bp.get("/")
@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str = "xml"):
    return _answer("discovery", services.discovery(request.url_root + bp.url_prefix.lstrip("/")), fmt)


@bp.get(f"/services.{FMT}")
def service_list(fmt):
    return _answer("services", services.service_list(_english()), fmt)


@bp.get(f"/services/<service_code>.{FMT}")
def service_definition(service_code, fmt):
    return _answer("service_definition", services.service_definition(service_code, _english()), fmt)


@bp.get(f"/requests.{FMT}")
def request_list(fmt):
    args = _load(RequestsQuery, request.args.to_dict())
    return _answer("service_requests", services.request_list(args, _english()), fmt)


@bp.post(f"/requests.{FMT}")
def create_request(fmt):
    """A citizen's request: the key (403), its rate (429), the fields (400), the service (404)."""
    if request.is_json:
        raise BadRequest("Send the request as application/x-www-form-urlencoded")
    key = services.key_for(request.values.get("api_key"))
    services.count_use(key)
    body = _load(ServiceRequestIn, form_data(request.values))
    return _answer("service_requests", services.create_request(key, body, _english()), fmt, 201)


@bp.get(f"/requests/<service_request_id>.{FMT}")
def request_one(service_request_id, fmt):
    return _answer("service_requests", services.request_one(service_request_id, _english()), fmt)


@bp.get(f"/tokens/<token>.{FMT}")
def token(token, fmt):
    return _answer("service_requests", services.request_for_token(token), fmt)


ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("/<path:rest>", methods=ANY_METHOD)
def unknown(rest):
    """Anything else: 405 for a resource that exists with another method, else 404."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed, description=f"{request.method} is not allowed here; "
                                                                   f"use {' or '.join(allowed)}")
    raise RouteNotFound(f"No Open311 resource {rest!r}: see discovery.xml; resources end in .xml or .json")


def _format() -> str:
    fmt = (request.view_args or {}).get("fmt")
    if fmt in formats.FORMATS:
        return fmt
    return "json" if request.path.endswith(".json") else "xml"


def _spec_status(status: int) -> int:
    """The specification's codes: 403 for keys, 404 for what does not exist, 400 for anything else
    (kept: 405 with Allow, 409 two requests that collided, to retry, 413, 429 rate limited, and 5xx)."""
    if status == 401:
        return 403
    if status in (403, 404, 405, 409, 413, 429) or status >= 500:
        return status
    return 400


@bp.errorhandler(Exception)
def _error(exc: Exception):
    headers = {}
    if from_the_database(exc):  # the database away, or a statement past its limit: 503, as on the API
        exc = database_error(exc)
    if isinstance(exc, Problem):
        status, headers = exc.status, dict(exc.headers)
        if exc.errors:
            descriptions = [f"{name}: {m}" if not name.startswith("_") else m
                            for name, messages in exc.errors.items() for m in messages]
        else:
            descriptions = [exc.detail]
    elif isinstance(exc, HTTPException):
        status, descriptions = exc.code or 500, [exc.description or exc.name]
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
    else:
        log.exception("unhandled error at the Open311 door")
        status, descriptions = 500, ["An unexpected error; it has been logged"]
    status = _spec_status(status)
    headers.pop("WWW-Authenticate", None)
    return _answer("errors", [{"code": status, "description": d} for d in descriptions], _format(), status, headers)


# ---------------------------------------------------------------- the admin's keys

blp = Blueprint("open311_keys", __name__, description="API keys for the Open311 door")


@blp.route("/open311/keys")
class KeysView(MethodView):
    @requires("admin")
    @blp.response(200, KeyList)
    def get(self):
        """The keys of the caller's areas, live and revoked (never their secrets)"""
        keys = services.visible_keys(current_user())
        return {"items": keys, "total": len(keys)}

    @requires("admin")
    @blp.arguments(KeyIn)
    @blp.response(201, KeyCreated)
    def post(self, body):
        """Issue a key for a citizen app; `api_key` is shown this once"""
        secret, key = services.create_key(actor=current_user(), **body)
        return {"id": key.id, "name": key.name, "scope": key.scope, "created_by": key.created_by,
                "created_at": key.created_at, "revoked_at": key.revoked_at, "api_key": secret}


@blp.route("/open311/keys/<int:key_id>")
class KeyView(MethodView):
    @requires("admin")
    @blp.response(204)
    def delete(self, key_id):
        """Revoke a key: requests posted with it are refused from now on"""
        services.revoke_key(key_id, current_user())
