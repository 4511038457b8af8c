from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import TeamIn, TeamList, TeamOut, TeamPatch, TeamQuery

blp = Blueprint("teams", __name__, description="Integrated teams (四整合)")


@blp.route("/teams")
class TeamsView(MethodView):
    @requires()
    @blp.arguments(TeamQuery, location="query")
    @blp.response(200, TeamList)
    def get(self, args):
        """Teams serving an area inside the caller's scope, paged (active ones unless include_inactive)"""
        teams, total = services.list_teams(current_user().scope, args["page"], args["per_page"],
                                           args["include_inactive"])
        return {"items": teams, "total": total, "page": args["page"], "per_page": args["per_page"]}

    @requires("admin")
    @blp.arguments(TeamIn)
    @blp.response(201, TeamOut)
    def post(self, body):
        """Create a team (admin)"""
        return services.create_team(actor=current_user(), **body)


@blp.route("/teams/<int:team_id>")
class TeamView(MethodView):
    @requires()
    @blp.response(200, TeamOut)
    def get(self, team_id):
        """One team"""
        return services.get_team(team_id, current_user().scope)

    @requires("admin")
    @blp.arguments(TeamPatch)
    @blp.response(200, TeamOut)
    def patch(self, body, team_id):
        """Change a team: only the fields sent, validated as when creating one (admin)"""
        return services.update_team(team_id, current_user(), body)
