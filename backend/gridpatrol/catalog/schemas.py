from marshmallow import fields

from ..core.schemas import Schema


class Limit(Schema):
    amount = fields.Float()
    unit = fields.String()
    clock = fields.Boolean()


class CategoryOut(Schema):
    code = fields.String()
    kind = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    major_name_zh = fields.String(allow_none=True)
    major_name_en = fields.String(allow_none=True)
    team_kind = fields.String()
    filing_condition = fields.String()
    closure_condition = fields.String()
    limits = fields.Dict(keys=fields.String(), values=fields.Nested(Limit))
    active = fields.Boolean()
    since_version = fields.Integer()
    retired_in_version = fields.Integer(allow_none=True)


class CatalogOut(Schema):
    version = fields.Integer()
    items = fields.List(fields.Nested(CategoryOut))
