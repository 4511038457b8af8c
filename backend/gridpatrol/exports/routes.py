"""Exports: cases, grids and patrol tracks as files other offices can open."""
import os

from flask import Response, send_file, stream_with_context
from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import CaseExportQuery, GridExportQuery, PatrolExportQuery

blp = Blueprint("exports", __name__, description="Exports (数据导出)")

GEOJSON = "application/geo+json"
CSV = "text/csv"
GPKG = "application/geopackage+sqlite3"


def _doc(media_type: str, description: str, binary: bool = False) -> dict:
    schema = {"type": "string", "format": "binary"} if binary else (
        {"type": "string"} if media_type == CSV else {"type": "object"})
    return {"responses": {200: {"description": description, "content": {media_type: {"schema": schema}}}}}


def _streamed(body, media_type: str, name: str) -> Response:
    """A download written while it is sent (chunked): the body is a generator reading the database.

    Its first chunk (the opening of the collection, the header row) needs no database and is taken
    here; the rest runs in the request's contexts. So a client that reads only the first chunk (as
    werkzeug's test client does with every answer) leaves no context pushed behind it."""
    first = next(body)
    rest = stream_with_context(body)

    def chunks():
        try:
            yield first
            yield from rest
        finally:
            rest.close()

    return Response(chunks(), mimetype=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _cases(args, suffix: str) -> Response:
    """The cases GET /cases finds for `args`, streamed in one of the case formats."""
    write, media_type = {"geojson": (services.cases_geojson, GEOJSON), "csv": (services.cases_csv, CSV)}[suffix]
    tz = services.local_tz()
    query = services.case_query(current_user(), args)
    return _streamed(write(query, tz), media_type, services.filename("cases", suffix, tz))


@blp.route("/exports/cases.geojson")
class CasesGeoJSONView(MethodView):
    @requires()
    @blp.arguments(CaseExportQuery, location="query")
    @blp.response(200, content_type=GEOJSON)
    @blp.doc(**_doc(GEOJSON, "a FeatureCollection of points, one per case; properties as the columns of the "
                             "CSV export, never a citizen's contact details"))
    def get(self, args):
        """Every case GET /cases finds for these filters (no paging), as GeoJSON, streamed"""
        return _cases(args, "geojson")


@blp.route("/exports/cases.csv")
class CasesCsvView(MethodView):
    @requires()
    @blp.arguments(CaseExportQuery, location="query")
    @blp.response(200, content_type=CSV)
    @blp.doc(**_doc(CSV, "UTF-8 with a byte order mark, a header row, one row per case; a text cell that a "
                         "spreadsheet would read as a formula starts with an apostrophe"))
    def get(self, args):
        """Every case GET /cases finds for these filters (no paging), as CSV for spreadsheets, streamed"""
        return _cases(args, "csv")


@blp.route("/exports/grids.geojson")
class GridsGeoJSONView(MethodView):
    @requires()
    @blp.arguments(GridExportQuery, location="query")
    @blp.response(200, content_type=GEOJSON)
    @blp.doc(**_doc(GEOJSON, "a FeatureCollection of polygons; properties code, name, district/street/community "
                             "codes and names, area_m2"))
    def get(self, args):
        """The grids in the caller's scope as GeoJSON, streamed"""
        query = services.grid_query(current_user(), args, "geojson")
        return _streamed(services.grids_geojson(query), GEOJSON,
                         services.filename("grids", "geojson", services.local_tz()))


@blp.route("/exports/grids.gpkg")
class GridsGpkgView(MethodView):
    @requires()
    @blp.arguments(GridExportQuery, location="query")
    @blp.response(200, content_type=GPKG)
    @blp.doc(**_doc(GPKG, "a GeoPackage with one layer `grids` in EPSG:4326, fields as the GeoJSON export",
                    binary=True))
    def get(self, args):
        """The grids in the caller's scope as a GeoPackage"""
        query = services.grid_query(current_user(), args, "wkb")
        file = services.grids_gpkg(query)
        response = send_file(file, mimetype=GPKG, as_attachment=True, etag=False,
                             download_name=services.filename("grids", "gpkg", services.local_tz()))
        response.content_length = os.fstat(file.fileno()).st_size
        return response


@blp.route("/exports/patrols.geojson")
class PatrolsGeoJSONView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(PatrolExportQuery, location="query")
    @blp.response(200, content_type=GEOJSON)
    @blp.doc(**_doc(GEOJSON, "a FeatureCollection of LineStrings, one per patrol of the local day (null "
                             "geometry below two points); properties id, inspector_id, inspector_name, "
                             "started_at, ended_at, length_m, point_count, grid_codes, recorded_at (the time "
                             "of each point)"))
    def get(self, args):
        """The patrol tracks of a local day (as GET /patrols lists them) as GeoJSON, streamed"""
        tz = services.local_tz()
        items = services.day_patrols(current_user(), args)
        return _streamed(services.patrols_geojson(items, tz), GEOJSON, f"patrols-{args['date']:%Y%m%d}.geojson")
