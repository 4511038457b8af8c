from marshmallow import fields, validate

from ..catalog.models import URGENCIES
from ..cases.schemas import INT_ID, CommaList
from ..cases.states import STATES
from ..core.schemas import CATEGORY_CODE, GRID_CODE, AwareDateTime, Schema


class TileQuery(Schema):
    """The map's filters, the same for both layers: which cases count (default: the open ones)."""
    status = CommaList(fields.String(validate=validate.OneOf(sorted(STATES))),
                       metadata={"description": "case states (default: every open state)"})
    category = CommaList(fields.String(validate=CATEGORY_CODE))
    team = CommaList(fields.Integer(validate=INT_ID), metadata={"description": "lead team ids"})
    urgency = CommaList(fields.String(validate=validate.OneOf(URGENCIES)))
    overdue = fields.Boolean(metadata={"description": "only cases past their stage deadline (or only not)"})
    escalated = fields.Boolean()
    from_ = AwareDateTime(data_key="from", metadata={"description": "reported at or after"})
    to = AwareDateTime(metadata={"description": "reported before"})


class Extent(Schema):
    bbox = fields.List(fields.Float(), allow_none=True, metadata={"description": "minlon, minlat, maxlon, maxlat"})
    grids = fields.Integer()


class Area(Schema):
    code = fields.String()
    level = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    parent_code = fields.String(allow_none=True)


class AreaList(Schema):
    items = fields.List(fields.Nested(Area))


class GridNamesQuery(Schema):
    codes = CommaList(fields.String(validate=GRID_CODE), required=True, validate=validate.Length(1, 500))


class GridNames(Schema):
    names = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "code → name"})
