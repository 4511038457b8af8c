from marshmallow import fields, validate

from ..core.schemas import AREA_CODE, AwareDateTime, PageArgs, Schema, page_schema
from .models import STATUSES
from .services import EVENT_TYPES

EVENT_TYPE = validate.OneOf(sorted(EVENT_TYPES.values()))
URL = validate.And(validate.URL(schemes={"http", "https"}, require_tld=False), validate.Length(max=2000))


class WebhookIn(Schema):
    url = fields.String(required=True, validate=URL)
    events = fields.List(fields.String(validate=EVENT_TYPE), validate=validate.Length(max=len(EVENT_TYPES)),
                         metadata={"description": "event types to send; empty or absent: every event"})
    scope = fields.List(fields.String(validate=AREA_CODE), validate=validate.Length(1, 100),
                        metadata={"description": "the areas whose cases are sent; default: the admin's scope"})
    description = fields.String(validate=validate.Length(max=200))
    secret = fields.String(validate=validate.Length(16, 100),
                           metadata={"description": "the shared signing secret; generated when absent"})
    active = fields.Boolean()


class WebhookPatch(Schema):
    url = fields.String(validate=URL)
    events = fields.List(fields.String(validate=EVENT_TYPE), validate=validate.Length(max=len(EVENT_TYPES)))
    scope = fields.List(fields.String(validate=AREA_CODE), validate=validate.Length(1, 100))
    description = fields.String(validate=validate.Length(max=200))
    active = fields.Boolean()


class DeliveryStats(Schema):
    pending = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    last_attempt_at = AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)


class WebhookOut(Schema):
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    scope = fields.List(fields.String())
    description = fields.String()
    active = fields.Boolean()
    created_by = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
    deliveries = fields.Nested(DeliveryStats)


class WebhookCreated(WebhookOut):
    secret = fields.String(metadata={"description": "the signing secret, shown this once"})


class WebhookList(Schema):
    items = fields.List(fields.Nested(WebhookOut))
    total = fields.Integer()


class DeliveryQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))


class DeliveryOut(Schema):
    id = fields.Integer()
    delivery_id = fields.UUID(attribute="uid")
    event_id = fields.Integer()
    case_id = fields.Integer()
    case_number = fields.Function(lambda d: (d.body or {}).get("case", {}).get("number"))
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    created_at = AwareDateTime()
    next_attempt_at = AwareDateTime()
    last_attempt_at = AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = AwareDateTime(allow_none=True)


DeliveryList = page_schema(DeliveryOut, "DeliveryList")
