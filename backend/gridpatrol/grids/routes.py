from flask import Response
from flask.views import MethodView
from marshmallow import RAISE

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import importer, services
from .schemas import GridsQuery, ImportIn, ImportOut, LocateOut, LocateQuery

blp = Blueprint("grids", __name__, description="Unit grids: map, locate, import")


@blp.route("/grids")
class GridsView(MethodView):
    @requires()
    @blp.arguments(GridsQuery, location="query")
    @blp.response(200, content_type="application/geo+json")
    @blp.doc(responses={200: {"description": "a FeatureCollection; properties code, name, street_code, community_code",
                              "content": {"application/geo+json": {"schema": {"type": "object"}}}}})
    def get(self, args):
        """Grids meeting a bounding box, as a GeoJSON FeatureCollection"""
        body = services.grids_geojson(args["bbox"], current_user().scope, args["limit"])
        return Response(body, mimetype="application/geo+json")


@blp.route("/grids/locate")
class LocateView(MethodView):
    @requires()
    @blp.arguments(LocateQuery, location="query")
    @blp.response(200, LocateOut)
    def get(self, args):
        """The grid of a point (boundary: lowest code; within the tolerance: nearest, snapped)"""
        found = services.locate(args["lon"], args["lat"], current_user().scope)
        return {"grid": found.grid, "snapped": found.snapped, "distance_m": found.distance_m}


@blp.route("/grids/import")
class ImportView(MethodView):
    @requires("admin")
    @blp.arguments(ImportIn, location="files", unknown=RAISE)
    @blp.response(200, ImportOut)
    def post(self, body):
        """Import grids from GeoJSON, GeoPackage or a zipped Shapefile; upsert by code"""
        upload = body["file"]
        return importer.import_grids(upload.read(), upload.filename or "", body["code_field"], body["name_field"],
                                     dry_run=body["dry_run"], scope=current_user().scope)
