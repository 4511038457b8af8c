from marshmallow import fields, validate

from ..core.schemas import AwareDateTime, Schema
from .services import GROUP_KEYS


class KpiQuery(Schema):
    group_by = fields.String(load_default="team", validate=validate.OneOf(list(GROUP_KEYS)))
    from_ = AwareDateTime(data_key="from")
    to = AwareDateTime()
    as_of = AwareDateTime()


class KpiRow(Schema):
    key = fields.String(allow_none=True)
    label = fields.String()
    reports = fields.Integer()
    registered = fields.Integer()
    rejected = fields.Integer()
    dispatched = fields.Integer()
    returned = fields.Integer()
    handled = fields.Integer()
    reworked = fields.Integer()
    closed = fields.Integer()
    closed_on_time = fields.Integer()
    open_overdue = fields.Integer()
    valid_report_rate = fields.Float(allow_none=True)
    closure_rate = fields.Float(allow_none=True)
    on_time_rate = fields.Float(allow_none=True)
    rework_rate = fields.Float(allow_none=True)
    accurate_dispatch_rate = fields.Float(allow_none=True)
    handling_hours_p50 = fields.Float(allow_none=True)
    handling_hours_p90 = fields.Float(allow_none=True)


class KpiOut(Schema):
    group_by = fields.String()
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    rows = fields.List(fields.Nested(KpiRow))
