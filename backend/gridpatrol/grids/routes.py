from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from ..core.authz import current_user, requires
from . import importer, services
from .schemas import GridsQuery, ImportFiles, ImportForm, ImportOut, LocateOut, LocateQuery

blp = Blueprint("grids", __name__, description="Unit grids: map, locate, import")


@blp.route("/grids")
class GridsView(MethodView):
    @requires()
    @blp.arguments(GridsQuery, location="query")
    @blp.response(200, content_type="application/geo+json")
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
    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFiles, location="files")
    @blp.response(200, ImportOut)
    def post(self, form, files):
        """Import grids from GeoJSON, GeoPackage or a zipped Shapefile; upsert by code"""
        upload = files["file"]
        return importer.import_grids(upload.read(), upload.filename or "", form["code_field"], form["name_field"],
                                     dry_run=form["dry_run"], scope=current_user().scope)
