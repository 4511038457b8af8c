from marshmallow import fields, validate

from ..catalog.models import TEAM_KINDS
from ..core.schemas import CATEGORY_CODE, GRID_CODE, JSON_BOOLEAN, PageArgs, Schema, page_schema

# a JSON boolean only (marshmallow would also take "yes", "on", 1 …); core/schemas.py is its home

# a team serves real areas: a district, street or community, never "the whole deployment"
TEAM_AREA_CODE = validate.Regexp(r"^(\d{6}|\d{9}|\d{12})$",
                                 error="a district, street or community code of 6, 9 or 12 digits")


def _fields(create: bool) -> dict:
    """The team's fields, for the create body (required, with defaults) or a change (each optional)."""
    required = {"required": True} if create else {}
    empty = {"load_default": list} if create else {}
    return {
        "name": fields.String(validate=validate.Length(1, 100), **required),
        "kind": fields.String(validate=validate.OneOf(TEAM_KINDS), **required),
        "agencies": fields.List(fields.String(validate=validate.Length(1, 100)), validate=validate.Length(max=50),
                                **empty),
        "area_codes": fields.List(fields.String(validate=TEAM_AREA_CODE), validate=validate.Length(max=500), **empty),
        "grid_codes": fields.List(fields.String(validate=GRID_CODE), validate=validate.Length(max=5000), **empty),
        "category_codes": fields.List(fields.String(validate=CATEGORY_CODE), validate=validate.Length(max=500),
                                      **empty),
    }


TeamIn = Schema.from_dict(_fields(create=True), name="TeamIn")
TeamPatch = Schema.from_dict({
    **_fields(create=False),
    "active": fields.Boolean(**JSON_BOOLEAN, metadata={
        "description": "an inactive team is not offered or dispatched to; its cases stay with it"}),
}, name="TeamPatch")


class TeamQuery(PageArgs):
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "list inactive teams too"})


class TeamOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    agencies = fields.List(fields.String())
    area_codes = fields.List(fields.String())
    grid_codes = fields.List(fields.String())
    category_codes = fields.List(fields.String())
    active = fields.Boolean()


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
