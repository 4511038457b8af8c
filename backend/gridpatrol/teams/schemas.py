from marshmallow import fields, validate

from ..catalog.models import TEAM_KINDS
from ..core.schemas import AREA_CODE, CATEGORY_CODE, GRID_CODE, Schema


class TeamIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    kind = fields.String(required=True, validate=validate.OneOf(TEAM_KINDS))
    agencies = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=list,
                           validate=validate.Length(max=50))
    area_codes = fields.List(fields.String(validate=AREA_CODE), load_default=list, validate=validate.Length(max=500))
    grid_codes = fields.List(fields.String(validate=GRID_CODE), load_default=list, validate=validate.Length(max=5000))
    category_codes = fields.List(fields.String(validate=CATEGORY_CODE), load_default=list,
                                 validate=validate.Length(max=500))


class TeamOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    agencies = fields.List(fields.String())
    area_codes = fields.List(fields.String())
    grid_codes = fields.List(fields.String())
    category_codes = fields.List(fields.String())


class TeamList(Schema):
    items = fields.List(fields.Nested(TeamOut))
    total = fields.Integer()


class Suggestion(Schema):
    team_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    score = fields.Float()
    reasons = fields.List(fields.String())
    competent = fields.Boolean()
    covers = fields.Boolean()
    open_cases = fields.Integer()
