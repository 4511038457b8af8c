import gzip
import hashlib

from flask import Response, request
from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from ..core.errors import NotFound
from . import services
from .schemas import AreaList, Extent, GridNames, GridNamesQuery, TileQuery

blp = Blueprint("maps", __name__, description="Map layers: vector tiles of grids and cases, and lookups")

MVT = "application/vnd.mapbox-vector-tile"
_TILE_DOC = {200: {"description": "a Mapbox Vector Tile (possibly empty)",
                   "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}}}


def _args(args: dict) -> dict:
    if "from_" in args:
        args["from"] = args.pop("from_")
    return args


def _tile_response(body: bytes) -> Response:
    """The tile, gzipped when the client takes it, with an ETag so an unchanged tile is a 304."""
    etag = hashlib.sha256(body).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        compress = "gzip" in request.headers.get("Accept-Encoding", "") and len(body) > 512
        response = Response(gzip.compress(body, 5) if compress else body, mimetype=MVT)
        if compress:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.headers["Vary"] = "Accept-Encoding, Authorization"
    # counts move with every action: the client asks again, an unchanged tile costs a 304
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _check(z, x, y):
    if not services.valid_tile(z, x, y):
        raise NotFound(f"No tile {z}/{x}/{y}")


@blp.route("/tiles/grids/<int:z>/<int:x>/<int:y>.mvt")
class GridTilesView(MethodView):
    @requires()
    @blp.arguments(TileQuery, location="query")
    @blp.response(200, content_type=MVT)
    @blp.doc(responses=_TILE_DOC)
    def get(self, args, z, x, y):
        """Grids with the number of cases passing the filters and how many are overdue (layer `grids`);
        zoomed out, square bins of grids with their sums (layer `bins`)"""
        _check(z, x, y)
        return _tile_response(services.grids_tile(z, x, y, _args(args), current_user().scope))


@blp.route("/tiles/cases/<int:z>/<int:x>/<int:y>.mvt")
class CaseTilesView(MethodView):
    @requires()
    @blp.arguments(TileQuery, location="query")
    @blp.response(200, content_type=MVT)
    @blp.doc(responses=_TILE_DOC)
    def get(self, args, z, x, y):
        """Cases passing the filters as points (layer `cases`), clustered when zoomed out"""
        _check(z, x, y)
        return _tile_response(services.cases_tile(z, x, y, _args(args), current_user().scope))


@blp.route("/map/extent")
class ExtentView(MethodView):
    @requires()
    @blp.response(200, Extent)
    def get(self):
        """The bounding box of the grids in the caller's scope"""
        return services.extent(current_user().scope)


@blp.route("/map/areas")
class AreasView(MethodView):
    @requires()
    @blp.response(200, AreaList)
    def get(self):
        """The districts, streets and communities in the caller's scope, with their names"""
        return {"items": services.areas(current_user().scope)}


@blp.route("/map/grid-names")
class GridNamesView(MethodView):
    @requires()
    @blp.arguments(GridNamesQuery, location="query")
    @blp.response(200, GridNames)
    def get(self, args):
        """Names of up to 500 grids (those in the caller's scope)"""
        return {"names": services.grid_names(args["codes"], current_user().scope)}
