from flask import request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from ..core import idempotency
from ..core.authz import current_user, requires
from ..core.errors import NotFound, PreconditionRequired
from ..kpis import services as kpis
from ..teams import services as teams
from ..teams.schemas import Suggestion
from . import services
from .schemas import ACTION_SCHEMAS, CaseList, CaseOut, CaseQuery, EventList, ReportIn

blp = Blueprint("cases", __name__, description="Reports, cases and the workflow")


@blp.route("/reports")
class ReportsView(MethodView):
    @requires("inspector", "dispatcher")
    @blp.arguments(ReportIn)
    @blp.response(201, CaseOut)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"}}])
    def post(self, body):
        """Report a problem: a new case in state `reported` (exactly once per Idempotency-Key)"""
        user = current_user()
        key = idempotency.request_key()

        def produce():
            case = services.report(user, body)
            return CaseOut().dump(case), 201, {"Location": f"/api/v1/cases/{case.id}"}

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


@blp.route("/cases/<int:case_id>/actions/<action>")
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
        expected = services.parse_if_match(request.headers.get("If-Match"))
        body = _load(schema)
        if expected is None:
            services.get_case(case_id, user)
            raise PreconditionRequired("Send If-Match with the case's ETag (its version)")
        case = services.act(case_id, action, body, user, expected)
        return case, 200, {"ETag": f'"{case.version}"'}


def _load(schema_cls):
    from flask_smorest import abort
    from marshmallow import ValidationError

    data = request.get_json(silent=True) if request.content_length else {}
    if data is None:
        abort(400, message="The body is not valid JSON", messages={"json": {"_body": ["not valid JSON"]}})
    try:
        return schema_cls().load(data)
    except ValidationError as err:
        abort(422, messages={"json": err.messages})
