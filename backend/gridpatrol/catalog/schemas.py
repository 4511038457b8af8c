from marshmallow import fields, validate

from ..core.schemas import CATEGORY_CODE, JSON_BOOLEAN, FiniteFloat, Schema
from ..core.worktime import WEEKDAY_KEYS
from .models import KINDS, TEAM_KINDS, URGENCIES

# a JSON boolean only (marshmallow would also take "yes", "on", 1 …); core/schemas.py is its home

UNITS = ("hour", "day")


class Limit(Schema):
    amount = fields.Float()
    unit = fields.String()
    clock = fields.Boolean()


class LimitIn(Schema):
    amount = FiniteFloat(required=True, validate=validate.Range(min=0, min_inclusive=False, max=10_000))
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    clock = fields.Boolean(required=True, **JSON_BOOLEAN,
                           metadata={"description": "true: 24×7 clock time; false: working time"})


# the handling time limit of each urgency class: all three, each complete
LimitsIn = Schema.from_dict({u: fields.Nested(LimitIn, required=True) for u in URGENCIES}, name="LimitsIn")


def _fields(create: bool) -> dict:
    """A category's fields, for the create body (required, with defaults) or a change (each optional)."""
    required = {"required": True} if create else {}
    name = validate.Length(1, 100)
    condition = validate.Length(max=2000)
    out = {
        "kind": fields.String(validate=validate.OneOf(KINDS), **required),
        "name_zh": fields.String(validate=name, **required),
        "name_en": fields.String(validate=name, **required),
        "major_name_zh": fields.String(validate=name, allow_none=True),
        "major_name_en": fields.String(validate=name, allow_none=True),
        "team_kind": fields.String(validate=validate.OneOf(TEAM_KINDS), **required),
        "filing_condition": fields.String(validate=condition, **required,
                                          metadata={"description": "立案条件: when a report becomes a case"}),
        "closure_condition": fields.String(validate=condition, **required,
                                           metadata={"description": "结案条件: when a case is fixed"}),
        "limits": fields.Nested(LimitsIn, **required),
        "public": fields.Boolean(**({"load_default": True} if create else {}), **JSON_BOOLEAN,
                                 metadata={"description": "offered to citizens as an Open311 service"}),
    }
    if create:
        out = {"code": fields.String(required=True, validate=CATEGORY_CODE), **out}
    return out


CategoryIn = Schema.from_dict(_fields(create=True), name="CategoryIn")
CategoryPatch = Schema.from_dict(_fields(create=False), name="CategoryPatch")


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
    public = fields.Boolean()
    since_version = fields.Integer()
    retired_in_version = fields.Integer(allow_none=True)


class CatalogOut(Schema):
    version = fields.Integer()
    items = fields.List(fields.Nested(CategoryOut))


# ------------------------------------------------------------------ the working calendar

_PERIOD = fields.List(fields.String(validate=validate.Regexp(r"^\d{1,2}:\d{2}(:\d{2})?$", error="a time HH:MM")),
                      validate=validate.Length(equal=2, error="a period is [start, end]"))

WorkPeriodsIn = Schema.from_dict(
    {day: fields.List(_PERIOD, validate=validate.Length(max=24), allow_none=True,
                      metadata={"description": f"{day}: [[start, end], …] local times; \"24:00\" may end one"})
     for day in WEEKDAY_KEYS}, name="WorkPeriodsIn")

WorkPeriodsOut = Schema.from_dict(
    {day: fields.List(fields.List(fields.String())) for day in WEEKDAY_KEYS}, name="WorkPeriodsOut")


class CalendarQuery(Schema):
    year = fields.Integer(validate=validate.Range(1900, 2200),
                          metadata={"description": "the days of this year only (default: every listed day)"})


class DayIn(Schema):
    workday = fields.Boolean(required=True, **JSON_BOOLEAN,
                             metadata={"description": "false: a holiday; true: a swapped working day (调休)"})
    name = fields.String(load_default="", validate=validate.Length(max=100))


class DayOut(Schema):
    date = fields.Date()
    workday = fields.Boolean()
    name = fields.String()


class CalendarOut(Schema):
    timezone = fields.String()
    work_periods = fields.Nested(WorkPeriodsOut)
    days = fields.List(fields.Nested(DayOut))


class WorkWeekOut(Schema):
    timezone = fields.String()
    work_periods = fields.Nested(WorkPeriodsOut)
