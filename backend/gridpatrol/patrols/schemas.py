from marshmallow import fields, validate

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
