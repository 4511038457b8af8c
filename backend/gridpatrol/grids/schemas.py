from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, validate

from ..core.schemas import FiniteFloat, Lat, Lon, MultipartForm, Schema


def _bbox(value: str):
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        raise ValidationError("four numbers: minlon,minlat,maxlon,maxlat")
    if len(parts) != 4 or any(p != p for p in parts):
        raise ValidationError("four numbers: minlon,minlat,maxlon,maxlat")
    x1, y1, x2, y2 = parts
    if not (-180 <= x1 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
        raise ValidationError("minlon ≤ maxlon within ±180 and minlat ≤ maxlat within ±90")
    return tuple(parts)


class BBoxField(fields.String):
    def _deserialize(self, value, attr, data, **kw):
        return _bbox(super()._deserialize(value, attr, data, **kw))


class GridsQuery(Schema):
    bbox = BBoxField(required=True, metadata={"description": "minlon,minlat,maxlon,maxlat"})
    limit = fields.Integer(load_default=20000, validate=validate.Range(1, 100000))


class LocateQuery(Schema):
    lon = Lon(required=True)
    lat = Lat(required=True)


class GridRef(Schema):
    code = fields.String()
    name = fields.String()
    street_code = fields.String()
    community_code = fields.String()


class LocateOut(Schema):
    grid = fields.Nested(GridRef, allow_none=True)
    snapped = fields.Boolean()
    distance_m = FiniteFloat(allow_none=True)


class ImportIn(MultipartForm):
    file = Upload(required=True, metadata={"description": "GeoJSON, GeoPackage or zipped Shapefile"})
    code_field = fields.String(load_default="code", validate=validate.Length(1, 64))
    name_field = fields.String(load_default="name", validate=validate.Length(1, 64))
    dry_run = fields.Boolean(load_default=False)


class Rejected(Schema):
    index = fields.Integer()
    code = fields.String(allow_none=True)
    reason = fields.String()


class ImportOut(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    rejected = fields.List(fields.Nested(Rejected))
    accepted = fields.List(fields.Dict(), metadata={"description": "the accepted features (index, code, name)"})
