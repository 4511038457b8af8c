from flask import request
from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import TokenOut, TokenRequest, UserAdminOut, UserIn, UserList, UserOut, UserPatch, UserQuery

blp = Blueprint("auth", __name__, description="Sign-in, tokens and users")


@blp.route("/auth/token")
class TokenView(MethodView):
    @blp.arguments(TokenRequest)
    @blp.response(200, TokenOut)
    @blp.doc(security=[])
    def post(self, body):
        """Sign in: a bearer token for a username and password"""
        secret, token = services.sign_in(body["username"], body["password"], request.remote_addr or "unknown")
        return {"access_token": secret, "token_type": "Bearer", "expires_at": token.expires_at, "user": token.user}

    @requires()
    @blp.response(204)
    def delete(self):
        """Sign out: the token is dead from now on"""
        services.revoke(request.headers["Authorization"].split(" ", 1)[1].strip())


@blp.route("/me")
class MeView(MethodView):
    @requires()
    @blp.response(200, UserOut)
    def get(self):
        """The signed-in user"""
        return current_user()


@blp.route("/users")
class UsersView(MethodView):
    @requires("admin")
    @blp.arguments(UserQuery, location="query")
    @blp.response(200, UserList)
    def get(self, args):
        """Users whose scope lies inside the administrator's, by username, paged (admin)"""
        users, total = services.list_users(current_user(), args.get("role"), args.get("q"), args["page"],
                                           args["per_page"])
        return {"items": users, "total": total, "page": args["page"], "per_page": args["per_page"]}

    @requires("admin")
    @blp.arguments(UserIn)
    @blp.response(201, UserAdminOut)
    def post(self, body):
        """Create a user (admin)"""
        return services.create_user(actor=current_user(), **body)


@blp.route("/users/<int:user_id>")
class UserView(MethodView):
    @requires("admin")
    @blp.response(200, UserAdminOut)
    def get(self, user_id):
        """One user the administrator manages (admin)"""
        return services.get_user(user_id, current_user())

    @requires("admin")
    @blp.arguments(UserPatch)
    @blp.response(200, UserAdminOut)
    def patch(self, body, user_id):
        """Change a user: only the fields sent (admin). Deactivating or a new password revokes their tokens"""
        return services.update_user(user_id, current_user(), body)
