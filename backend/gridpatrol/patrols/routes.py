from flask import request
from flask.views import MethodView

from ..core import idempotency
from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import (BatchIn, BatchOut, CoverageOut, CoverageQuery, PatrolIn, PatrolList, PatrolOut,
                      PatrolQuery)

blp = Blueprint("patrols", __name__, description="Patrol tracks and grid coverage")


def _out(patrol):
    return {"id": patrol.id, "inspector_id": patrol.inspector_id, "started_at": patrol.started_at,
            "ended_at": patrol.ended_at, "length_m": patrol.length_m, "grid_codes": services.grid_codes(patrol)}


@blp.route("/patrols")
class PatrolsView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(PatrolQuery, location="query")
    @blp.response(200, PatrolList)
    def get(self, args):
        """The patrols of a day in the caller's scope, with their tracks as GeoJSON"""
        return {"items": services.patrols(args["date"], args.get("inspector"), args.get("area"), current_user())}

    @requires("inspector")
    @blp.arguments(PatrolIn)
    @blp.response(201, PatrolOut)
    @blp.doc(parameters=[{"in": "header", "name": idempotency.HEADER, "required": False,
                          "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                          "description": "optional: a retry with the same key answers the same patrol again"}])
    def post(self, body):
        """Start a patrol (once per Idempotency-Key, when one is sent)"""
        user = current_user()
        if idempotency.HEADER not in request.headers:
            return _out(services.start(user))

        def produce():
            return PatrolOut().dump(_out(services.start(user))), 201, {}

        return idempotency.respond(idempotency.once(
            user.id, idempotency.request_key(), "patrol", idempotency.fingerprint(request.get_json(silent=True) or {}),
            produce))


@blp.route("/patrols/<int:patrol_id>/points")
class PointsView(MethodView):
    @requires("inspector")
    @blp.arguments(BatchIn)
    @blp.response(200, BatchOut)
    def post(self, body, patrol_id):
        """Add an ordered batch of points; a batch with a seq already stored is a no-op"""
        return services.add_points(patrol_id, current_user(), body["seq"], body["points"])


@blp.route("/patrols/<int:patrol_id>/end")
class EndView(MethodView):
    @requires("inspector")
    @blp.arguments(PatrolIn)
    @blp.response(200, PatrolOut)
    def post(self, body, patrol_id):
        """End the patrol: its track, length and the grids visited"""
        return _out(services.end(patrol_id, current_user()))


@blp.route("/patrols/coverage")
class CoverageView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(CoverageQuery, location="query")
    @blp.response(200, CoverageOut)
    def get(self, args):
        """Per grid on a day: visited or not, by whom, when"""
        return services.coverage(args["date"], args.get("area"), current_user())
