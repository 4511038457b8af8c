from marshmallow import ValidationError, fields, post_dump, validate, validates_schema

from ..catalog.models import URGENCIES
from ..core.authz import current_user
from ..core.schemas import AREA_CODE, CATEGORY_CODE, GRID_CODE, AwareDateTime, FiniteFloat, Lat, Lon, PageArgs, Schema
from ..grids.schemas import BBoxField
from ..kpis.services import FIGURES
from . import services
from .states import STATES

TEXT = validate.Length(max=4000)
NOTE = validate.Length(1, 2000)
# ids as PostgreSQL holds them: teams and users integer, cases and photos bigint
INT_ID = validate.Range(1, 2**31 - 1)
BIGINT_ID = validate.Range(1, 2**63 - 1)


class ContactIn(Schema):
    name = fields.String(validate=validate.Length(max=100))
    phone = fields.String(validate=validate.Length(max=40))
    email = fields.Email(validate=validate.Length(max=200))


class ReportIn(Schema):
    category_code = fields.String(required=True, validate=CATEGORY_CODE)
    description = fields.String(load_default="", validate=TEXT)
    lon = Lon(required=True)
    lat = Lat(required=True)
    accuracy_m = FiniteFloat(validate=validate.Range(0, 100_000), allow_none=True)
    observed_at = AwareDateTime(required=True)
    urgency = fields.String(validate=validate.OneOf(URGENCIES))
    address = fields.String(validate=validate.Length(max=300), allow_none=True)
    catalog_version = fields.Integer(validate=validate.Range(1, 1_000_000), allow_none=True)
    # how the position was taken, recorded as flags: "pin" placed on the map, "poor_accuracy" accepted
    location_flags = fields.List(fields.String(validate=validate.OneOf(["pin", "poor_accuracy"])),
                                 validate=validate.Length(max=2))
    # a hotline caller's contact, kept for the dispatch centre only
    contact = fields.Nested(ContactIn, allow_none=True)
    client_time = AwareDateTime()


class Location(Schema):
    lon = fields.Float()
    lat = fields.Float()
    accuracy_m = fields.Float(allow_none=True)


class Deadlines(Schema):
    register = AwareDateTime(attribute="deadline_register", allow_none=True)
    dispatch = AwareDateTime(attribute="deadline_dispatch", allow_none=True)
    handle = AwareDateTime(attribute="deadline_handle", allow_none=True)
    verify = AwareDateTime(attribute="deadline_verify", allow_none=True)


# one instance for every dump: building a schema costs more than dumping four dates with it
_DEADLINES = Deadlines()


class CaseOut(Schema):
    id = fields.Integer()
    number = fields.String()
    status = fields.String()
    category_code = fields.String()
    urgency = fields.String()
    description = fields.String()
    address = fields.String(allow_none=True)
    location = fields.Method("_location", dump_only=True)
    grid_code = fields.String(allow_none=True)
    street_code = fields.String(allow_none=True)
    community_code = fields.String(allow_none=True)
    district_code = fields.String()
    location_flags = fields.List(fields.String())
    source = fields.String()
    reporter_id = fields.Integer(allow_none=True)
    observed_at = AwareDateTime(allow_none=True)
    reported_at = AwareDateTime()
    registered_at = AwareDateTime(allow_none=True)
    dispatched_at = AwareDateTime(allow_none=True)
    handled_at = AwareDateTime(allow_none=True)
    closed_at = AwareDateTime(allow_none=True)
    lead_team_id = fields.Integer(allow_none=True)
    assisting_team_ids = fields.List(fields.Integer())
    parent_id = fields.Integer(allow_none=True)
    rework_count = fields.Integer()
    extension_hours = fields.Float()
    pending_extension = fields.Dict(allow_none=True)
    suspended_from = fields.String(allow_none=True)
    deadlines = fields.Function(lambda c: _DEADLINES.dump(c), dump_only=True)
    stage_deadline = AwareDateTime(allow_none=True)
    timer = fields.Function(lambda c: services.timer(c), dump_only=True, allow_none=True)
    escalation_level = fields.Integer()
    escalation_note = fields.String(allow_none=True)
    contact = fields.Dict(allow_none=True, metadata={"description": "citizen's contact; dispatch centre only"})
    allowed_actions = fields.Function(lambda c: services.allowed_actions(c, current_user()), dump_only=True)
    version = fields.Integer()
    updated_at = AwareDateTime()

    def _location(self, case):
        lon, lat = services.lonlat(case)
        return {"lon": lon, "lat": lat, "accuracy_m": case.accuracy_m}

    @post_dump
    def _privacy(self, data, **kw):
        # a citizen's contact details are never shown outside the dispatch centre
        if not current_user().has_role("dispatcher"):
            data.pop("contact", None)
        return data


class CommaList(fields.List):
    """A query parameter given as a comma-separated list, repeated, or both (webargs hands a list).

    A parameter with no value at all (`?status=`) is refused: a filter that filters nothing is a
    mistake to show, not a reason to answer with everything. `allow_empty=True` reads it as not
    given (for doors whose clients send every form field)."""
    def __init__(self, *args, allow_empty: bool = False, **kw):
        super().__init__(*args, **kw)
        self.allow_empty = allow_empty

    def _deserialize(self, value, attr, data, **kw):
        parts = value if isinstance(value, (list, tuple)) else [value]
        value = [v for part in parts for v in (part.split(",") if isinstance(part, str) else [part]) if v != ""]
        if not value and not self.allow_empty:
            raise ValidationError("give at least one value, or leave the parameter out")
        return super()._deserialize(value, attr, data, **kw)


class CaseQuery(PageArgs):
    status = CommaList(fields.String(validate=validate.OneOf(sorted(STATES))))
    grid = CommaList(fields.String(validate=GRID_CODE))
    street = CommaList(fields.String(validate=validate.Regexp(r"^\d{9}$")))
    community = CommaList(fields.String(validate=validate.Regexp(r"^\d{12}$")))
    team = CommaList(fields.Integer(validate=INT_ID))
    category = CommaList(fields.String(validate=CATEGORY_CODE))
    source = CommaList(fields.String(validate=validate.OneOf(["inspector", "hotline", "open311"])))
    urgency = CommaList(fields.String(validate=validate.OneOf(URGENCIES)))
    reporter = fields.Integer(validate=INT_ID)
    bbox = BBoxField()
    overdue = fields.Boolean()
    escalated = fields.Boolean()
    pending_extension = fields.Boolean()
    queue = fields.String(validate=validate.OneOf(list(services.QUEUES)),
                          metadata={"description": "a dispatcher's queue: " + ", ".join(services.QUEUES)})
    q = fields.String(validate=validate.Length(1, 200), metadata={"description": (
        "free text: cases whose number begins or ends with it, or whose description or address holds it "
        "anywhere (letters in any case); % and _ are taken literally")})
    sort = fields.String(validate=validate.OneOf(["newest", "oldest"]))
    # KPI drill-down: the cases behind one figure of GET /kpis
    kpi = fields.String(validate=validate.OneOf(list(FIGURES)))
    group_by = fields.String(validate=validate.OneOf(["team", "grid", "street", "community", "category", "inspector"]))
    key = fields.String(validate=validate.Length(1, 20))
    area = fields.String(validate=AREA_CODE, metadata={"description": "with `kpi`: the KPIs' `area`"})
    as_of = AwareDateTime()
    # with `kpi`: the KPI period; without it: reported in [from, to)
    from_ = AwareDateTime(data_key="from")
    to = AwareDateTime()

    @validates_schema
    def _kpi_needs_group(self, data, **kw):
        if "kpi" in data and ("group_by" in data) != ("key" in data):
            raise ValidationError("give group_by and key together", "key")
        if "area" in data and "kpi" not in data:
            raise ValidationError("area narrows a KPI drill-down: give kpi with it (or street, community, grid)",
                                  "area")


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class EventOut(Schema):
    id = fields.Integer()
    seq = fields.Integer()
    at = AwareDateTime()
    actor_id = fields.Integer(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    payload = fields.Dict()
    client_time = AwareDateTime(allow_none=True)
    hash = fields.String()
    actor_name = fields.Function(lambda e: e.actor.display_name if e.actor else None, allow_none=True)
    team_name = fields.Function(lambda e: e.team.name if e.team else None, allow_none=True)

    @post_dump
    def _privacy(self, data, **kw):
        if not current_user().has_role("dispatcher"):
            data["payload"].pop("contact", None)
        return data


class EventList(Schema):
    items = fields.List(fields.Nested(EventOut))


# ----------------------------------------------------------- action bodies

class ActionBase(Schema):
    client_time = AwareDateTime()


class RegisterIn(ActionBase):
    category_code = fields.String(validate=CATEGORY_CODE)
    urgency = fields.String(validate=validate.OneOf(URGENCIES))


class RejectIn(ActionBase):
    reason = fields.String(required=True, validate=NOTE)


class MergeIn(ActionBase):
    parent_id = fields.Integer(required=True, validate=BIGINT_ID)


class DispatchIn(ActionBase):
    team_id = fields.Integer(required=True, validate=INT_ID)
    assisting_team_ids = fields.List(fields.Integer(validate=INT_ID), validate=validate.Length(max=10))
    note = fields.String(validate=validate.Length(max=2000))


class ReturnIn(ActionBase):
    reason_code = fields.String(required=True, validate=validate.OneOf(
        ["not_competent", "outside_area", "wrong_category", "duplicate", "cannot_locate", "other"]))
    note = fields.String(required=True, validate=NOTE)


PhotoIds = lambda **kw: fields.List(fields.Integer(validate=BIGINT_ID), validate=validate.Length(max=20), **kw)  # noqa: E731


class HandleIn(ActionBase):
    note = fields.String(required=True, validate=NOTE)
    photo_ids = PhotoIds(required=True)


class VerifyPassIn(ActionBase):
    photo_ids = PhotoIds(required=True)
    lon = Lon(required=True)
    lat = Lat(required=True)
    accuracy_m = FiniteFloat(validate=validate.Range(0, 100_000), allow_none=True)
    note = fields.String(validate=validate.Length(max=2000))


class VerifyFailIn(ActionBase):
    reason = fields.String(required=True, validate=NOTE)
    photo_ids = PhotoIds()


class SuspendIn(ActionBase):
    reason = fields.String(required=True, validate=NOTE)


class EmptyIn(ActionBase):
    note = fields.String(validate=validate.Length(max=2000))


class RequestExtensionIn(ActionBase):
    hours = FiniteFloat(required=True, validate=validate.Range(min=0.5, max=24 * 60))
    reason = fields.String(required=True, validate=NOTE)


class DecideExtensionIn(ActionBase):
    approve = fields.Boolean(required=True)
    note = fields.String(validate=validate.Length(max=2000))


class EscalateIn(ActionBase):
    level = fields.Integer(required=True, validate=validate.Range(1, 3))
    note = fields.String(required=True, validate=NOTE)


ACTION_SCHEMAS = {
    "register": RegisterIn, "reject": RejectIn, "merge": MergeIn, "dispatch": DispatchIn, "accept": EmptyIn,
    "return": ReturnIn, "handle": HandleIn, "verify_pass": VerifyPassIn, "verify_fail": VerifyFailIn,
    "suspend": SuspendIn, "resume": EmptyIn, "request_extension": RequestExtensionIn,
    "decide_extension": DecideExtensionIn, "escalate": EscalateIn,
}


class QueueCounts(Schema):
    register = fields.Integer()
    dispatch = fields.Integer()
    returned = fields.Integer()
    extensions = fields.Integer()
    overdue = fields.Integer()
    escalated = fields.Integer()


class DuplicateQuery(Schema):
    radius_m = FiniteFloat(load_default=50, validate=validate.Range(1, 2000))
    hours = FiniteFloat(load_default=24, validate=validate.Range(1, 24 * 30))


class DuplicateOut(CaseOut):
    distance_m = fields.Float()


class DuplicateList(Schema):
    items = fields.List(fields.Nested(DuplicateOut))
