from marshmallow import fields, validate

from ..core.schemas import AREA_CODE, AwareDateTime, Schema
from .services import GROUP_KEYS, INTERVALS


def _area():
    return fields.String(validate=AREA_CODE, metadata={
        "description": "a district, street, community or grid code: the KPIs of the part of the caller's scope "
                       "inside it (404 when none is)"})


class KpiQuery(Schema):
    group_by = fields.String(load_default="team", validate=validate.OneOf(list(GROUP_KEYS)))
    area = _area()
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
    area = fields.String(allow_none=True, metadata={"description": "the `area` asked for, if any"})
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    source = fields.String(metadata={"description": "`rollup`: as of now, from the facts the event log keeps "
                                                   "current; `events`: worked out from the event log as of `as_of`"})
    percentiles = fields.String(metadata={"description": "`exact`: handling_hours_p50/p90 from every case's hours; "
                                                        "`buckets`: from the daily sums' buckets (more registrations "
                                                        "than KPI_EXACT_PERCENTILE_ROWS), within 0.1 h under a day, "
                                                        "1 h under 10 days, 10 h beyond"})
    hours_recounting = fields.Boolean(metadata={
        "description": "true while the kept handling hours are being counted again after a change of the working "
                       "week or time zone (`gridpatrol kpis compact` does it in batches): until it ends, "
                       "handling_hours_p50/p90 mix hours counted with the old week and the new. Always false "
                       "with `as_of` (worked out from the event log with the calendar in force)"})
    rows = fields.List(fields.Nested(KpiRow))


class TrendQuery(Schema):
    group_by = fields.String(load_default="team", validate=validate.OneOf(list(GROUP_KEYS)))
    area = _area()
    interval = fields.String(load_default="month", validate=validate.OneOf(INTERVALS),
                             metadata={"description": "local weeks (from Monday) or months"})
    from_ = AwareDateTime(data_key="from", metadata={"description": "widened to the start of its week or month; "
                                                                    "default: twelve periods before `to`"})
    to = AwareDateTime(metadata={"description": "widened to the end of its week or month; default: now"})
    as_of = AwareDateTime()


class TrendPoint(Schema):
    period_start = AwareDateTime()
    period_end = AwareDateTime()
    registered = fields.Integer()
    closed = fields.Integer()
    closure_rate = fields.Float(allow_none=True)
    on_time_rate = fields.Float(allow_none=True)
    rework_rate = fields.Float(allow_none=True)


class TrendSeries(Schema):
    key = fields.String(allow_none=True)
    label = fields.String()
    points = fields.List(fields.Nested(TrendPoint))


class TrendOut(Schema):
    group_by = fields.String()
    area = fields.String(allow_none=True, metadata={"description": "the `area` asked for, if any"})
    interval = fields.String()
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    source = fields.String(metadata={"description": "`rollup`: as of now, from the facts the event log keeps "
                                                   "current; `events`: worked out from the event log as of `as_of`"})
    series = fields.List(fields.Nested(TrendSeries))


class InspectorQuery(Schema):
    from_ = AwareDateTime(data_key="from", metadata={
        "description": "default: the start of the 30 local days that end with the day of `to`"})
    to = AwareDateTime(metadata={"description": "default: now"})


class InspectorRow(Schema):
    key = fields.String(metadata={"description": "the user id"})
    label = fields.String()
    reports = fields.Integer()
    registered = fields.Integer()
    rejected = fields.Integer()
    valid_report_rate = fields.Float(allow_none=True)
    verifications = fields.Integer(metadata={"description": "verify_pass and verify_fail made in the period"})
    verifications_on_time = fields.Integer(metadata={"description": "made by the verification deadline"})
    verification_timely_rate = fields.Float(allow_none=True)
    responsibility_grids = fields.Integer(metadata={"description": "their responsibility grids in the caller's scope"})
    coverage_rate = fields.Float(allow_none=True, metadata={
        "description": "grid-days of their responsibility grids visited by their own tracks ÷ (grids × days)"})


class InspectorsOut(Schema):
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    days = fields.Integer()
    rows = fields.List(fields.Nested(InspectorRow))


class InspectorDrillQuery(Schema):
    from_ = AwareDateTime(data_key="from", metadata={"description": "as for GET /kpis/inspectors"})
    to = AwareDateTime()
    as_of = AwareDateTime(metadata={"description": "the `as_of` of the figures drilled (default: now)"})


class VerificationDrillQuery(InspectorDrillQuery):
    on_time = fields.Boolean(metadata={"description": "only those made by (true) or after (false) the deadline"})


class VerificationItem(Schema):
    case_id = fields.Integer()
    number = fields.String()
    status = fields.String()
    category_code = fields.String()
    action = fields.String(metadata={"description": "verify_pass or verify_fail"})
    at = AwareDateTime()
    handled_at = AwareDateTime(allow_none=True, metadata={"description": "the feedback verified"})
    deadline = AwareDateTime(allow_none=True, metadata={"description": "the verification deadline then in force"})
    on_time = fields.Boolean()


class VerificationsOut(Schema):
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    inspector_id = fields.Integer()
    label = fields.String()
    total = fields.Integer()
    items = fields.List(fields.Nested(VerificationItem))


class CoverageGridItem(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)
    visited_days = fields.List(fields.Date(), metadata={"description": "local days a track of theirs visited it"})
    patrol_ids = fields.List(fields.Integer())


class InspectorCoverageOut(Schema):
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    as_of = AwareDateTime()
    inspector_id = fields.Integer()
    label = fields.String()
    days = fields.Integer()
    first_day = fields.Date()
    last_day = fields.Date()
    responsibility_grids = fields.Integer()
    visited_grid_days = fields.Integer()
    coverage_rate = fields.Float(allow_none=True, metadata={"description": "visited_grid_days ÷ (grids × days)"})
    grids = fields.List(fields.Nested(CoverageGridItem))
