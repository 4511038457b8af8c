from geoalchemy2.shape import to_shape
from marshmallow import fields, validate
from shapely.geometry import mapping

from ..core.schemas import AREA_CODE, AwareDateTime, FiniteFloat, Lat, Lon, Schema


class PatrolIn(Schema):
    client_time = AwareDateTime()


class PointIn(Schema):
    lon = Lon(required=True)
    lat = Lat(required=True)
    accuracy_m = FiniteFloat(validate=validate.Range(0, 100_000), allow_none=True)
    recorded_at = AwareDateTime(required=True)


class BatchIn(Schema):
    seq = fields.Integer(required=True, validate=validate.Range(0, 10_000_000))
    points = fields.List(fields.Nested(PointIn), required=True, validate=validate.Length(1, 2000))


class BatchOut(Schema):
    patrol_id = fields.Integer()
    seq = fields.Integer()
    stored = fields.Integer()
    duplicate = fields.Boolean()
    points = fields.Integer()


class PatrolOut(Schema):
    id = fields.Integer()
    inspector_id = fields.Integer()
    started_at = AwareDateTime()
    ended_at = AwareDateTime(allow_none=True)
    length_m = fields.Float()
    grid_codes = fields.List(fields.String())


class CoverageQuery(Schema):
    date = fields.Date(required=True)
    area = fields.String(validate=AREA_CODE)


class CoverageGrid(Schema):
    code = fields.String()
    name = fields.String()
    responsible = fields.List(fields.Integer())
    visited = fields.Boolean()
    visits = fields.List(fields.Dict())


class CoverageOut(Schema):
    date = fields.Date()
    area = fields.String(allow_none=True)
    responsibility_grids = fields.Integer()
    total = fields.Integer()
    visited = fields.Integer()
    coverage_rate = fields.Float(allow_none=True)
    grids = fields.List(fields.Nested(CoverageGrid))


class PatrolQuery(Schema):
    date = fields.Date(required=True, metadata={"description": "the local day: patrols started on it or visiting "
                                                               "grids on it"})
    inspector = fields.Integer(validate=validate.Range(1, 2**63 - 1), metadata={"description": "an inspector's id"})
    area = fields.String(validate=AREA_CODE, metadata={"description": "a district, street, community or grid code"})


class GeoJSONLine(fields.Field):
    """A PostGIS line as a GeoJSON LineString object (null without one)."""

    def _serialize(self, value, attr, obj, **kw):
        if value is None:
            return None
        geometry = mapping(to_shape(value))
        return {"type": geometry["type"], "coordinates": [list(c) for c in geometry["coordinates"]]}


class PatrolListItem(Schema):
    id = fields.Integer()
    inspector_id = fields.Integer()
    inspector_name = fields.String()
    started_at = AwareDateTime()
    ended_at = AwareDateTime(allow_none=True)
    length_m = fields.Float()
    grid_codes = fields.List(fields.String(), metadata={"description": "grids visited, inside the caller's scope"})
    track = GeoJSONLine(allow_none=True, metadata={
        "description": "GeoJSON LineString (of the points so far while the patrol runs), null below two points",
        "type": "object", "nullable": True})


class PatrolList(Schema):
    items = fields.List(fields.Nested(PatrolListItem))
