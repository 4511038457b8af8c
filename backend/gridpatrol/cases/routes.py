from functools import wraps

import click
from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from ..core import idempotency
from ..core.api import Blueprint
from ..core.authz import current_user, requires
from ..core.errors import BadRequest, NotFound, PreconditionRequired, UnsupportedMedia
from ..extensions import db
from ..kpis import services as kpis
from ..teams import services as teams
from ..teams.schemas import Suggestion
from . import services
from .schemas import (ACTION_SCHEMAS, CaseList, CaseOut, CaseQuery, DuplicateList, DuplicateQuery, EventList,
                      QueueCounts, ReportIn)

blp = Blueprint("cases", __name__, description="Reports, cases and the workflow")

# schema instances made once: a class given to webargs or dumped with would be instantiated on
# every request, which costs more than the loading or dumping itself
_REPORT_IN = ReportIn()
_CASE_OUT = CaseOut()
_DUPLICATE_QUERY = DuplicateQuery()


def _json_body() -> dict:
    """The request's JSON body, {} when there is none: 415 for another media type, 400 when malformed."""
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise UnsupportedMedia("Send the body as application/json", {"Content-Type": ["application/json expected"]})
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("The body is not valid JSON", {"_body": ["not valid JSON"]})
    return data


def _json_only(view):
    """415 before webargs reads the body: it would read another media type as an empty body (422)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        _json_body()
        return view(*args, **kwargs)
    return wrapper


@blp.route("/reports")
class ReportsView(MethodView):
    @requires("inspector", "dispatcher")
    @_json_only
    @blp.arguments(_REPORT_IN)
    @blp.response(201, CaseOut)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"}}])
    def post(self, body):
        """Report a problem: a new case in state `reported` (exactly once per Idempotency-Key)"""
        user = current_user()
        key = idempotency.request_key()

        def produce():
            case = services.report(user, body)
            return _CASE_OUT.dump(case), 201, {"Location": f"/api/v1/cases/{case.id}"}

        return idempotency.respond(idempotency.once(
            user.id, key, "report", idempotency.fingerprint(request.get_json(silent=True)), produce))


@blp.route("/cases")
class CasesView(MethodView):
    @requires()
    @blp.arguments(CaseQuery, location="query")
    @blp.response(200, CaseList)
    def get(self, args):
        """Cases in the caller's scope, filtered, newest first"""
        user = current_user()
        if "from_" in args:
            args["from"] = args.pop("from_")
        if args.get("kpi"):
            args["ids"] = kpis.case_ids(user, args)
        items, total = services.list_cases(user, args, args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


@blp.route("/cases/queue-counts")
class QueueCountsView(MethodView):
    @requires()
    @blp.response(200, QueueCounts)
    def get(self):
        """How many cases wait in each dispatcher's queue (the `queue` filter of GET /cases)"""
        return services.queue_counts(current_user())


@blp.route("/cases/<int:case_id>/duplicates")
class DuplicatesView(MethodView):
    @requires("dispatcher", "supervisor")
    @blp.arguments(_DUPLICATE_QUERY, location="query")
    @blp.response(200, DuplicateList)
    def get(self, args, case_id):
        """Open cases of the same category within radius_m and ±hours of this one, nearest first"""
        return {"items": services.duplicates(case_id, current_user(), args["radius_m"], args["hours"])}


@blp.route("/cases/<int:case_id>")
class CaseView(MethodView):
    @requires()
    @blp.response(200, CaseOut)
    def get(self, case_id):
        """One case, with its version as ETag"""
        case = services.get_case(case_id, current_user())
        return case, 200, {"ETag": f'"{case.version}"'}


@blp.route("/cases/<int:case_id>/events")
class EventsView(MethodView):
    @requires()
    @blp.response(200, EventList)
    def get(self, case_id):
        """The case's append-only event log, oldest first"""
        return {"items": services.events(services.get_case(case_id, current_user()))}


@blp.route("/cases/<int:case_id>/dispatch-suggestions")
class SuggestionsView(MethodView):
    @requires("dispatcher")
    @blp.response(200, Suggestion(many=True))
    def get(self, case_id):
        """Teams ranked by competence, coverage of the grid and open workload, with reasons"""
        user = current_user()
        return teams.suggestions(services.get_case(case_id, user), user.scope)


@blp.route("/cases/<int:case_id>/actions/<action>", parameters=[
    {"in": "path", "name": "action", "required": True, "description": "an action of the state table",
     "schema": {"type": "string", "enum": sorted(ACTION_SCHEMAS)}}])
class ActionView(MethodView):
    @requires()
    @blp.response(200, CaseOut)
    @blp.doc(parameters=[{"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}],
             requestBody={"content": {"application/json": {"schema": {"oneOf": [
                 {"$ref": f"#/components/schemas/{s.__name__.removesuffix('Schema')}"}
                 for s in dict.fromkeys(ACTION_SCHEMAS.values())]}}}})
    def post(self, case_id, action):
        """Take a workflow action (see the state table); If-Match carries the case version"""
        schema = ACTION_SCHEMAS.get(action)
        if schema is None:
            raise NotFound(f"No action {action!r}; actions are {', '.join(sorted(ACTION_SCHEMAS))}")
        user = current_user()
        services.check_actor(case_id, action, user)
        expected = services.parse_if_match(request.headers.get("If-Match"))
        body = _load(schema)
        if expected is None:
            raise PreconditionRequired("Send If-Match with the case's ETag (its version)")
        case = services.act(case_id, action, body, user, expected)
        return case, 200, {"ETag": f'"{case.version}"'}


def _load(schema_cls):
    try:
        return schema_cls().load(_json_body())
    except ValidationError as err:
        abort(422, messages={"json": err.messages})


@blp.cli.command("recount")
def recount():
    """Count the cases per area, status and urgency, and each grid's open cases, again (the case list's
    totals and the map's grid counts read them, and every write to cases keeps them itself: this is for
    a repair). Writes to cases wait meanwhile."""
    mended = services.recount()
    db.session.commit()
    click.echo(f"{mended} case counts mended")
