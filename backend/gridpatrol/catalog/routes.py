from flask.views import MethodView
from flask_smorest import Blueprint

from ..core.authz import requires
from . import services
from .schemas import CatalogOut

blp = Blueprint("catalog", __name__, description="Categories of parts and events")


@blp.route("/categories")
class CategoriesView(MethodView):
    @requires()
    @blp.response(200, CatalogOut)
    def get(self):
        """The category catalog, retired categories included (marked inactive)"""
        return {"version": services.current_version(), "items": services.categories()}
