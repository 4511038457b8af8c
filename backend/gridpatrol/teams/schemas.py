from marshmallow import fields, validate

from ..catalog.models import TEAM_KINDS
from ..core.schemas import CATEGORY_CODE, GRID_CODE, Schema, page_schema

# a team serves real areas: a district, street or community, never "the whole deployment"
TEAM_AREA_CODE = validate.Regexp(r"^(\d{6}|\d{9}|\d{12})$",
                                 error="a district, street or community code of 6, 9 or 12 digits")


class TeamIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    kind = fields.String(required=True, validate=validate.OneOf(TEAM_KINDS))
    agencies = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=list,
                           validate=validate.Length(max=50))
    area_codes = fields.List(fields.String(validate=TEAM_AREA_CODE), load_default=list,
                             validate=validate.Length(max=500))
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


TeamList = page_schema(TeamOut, "TeamList")


class Suggestion(Schema):
    team_id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    score = fields.Float()
    reasons = fields.List(fields.String())
    competent = fields.Boolean()
    covers = fields.Boolean()
    open_cases = fields.Integer()
