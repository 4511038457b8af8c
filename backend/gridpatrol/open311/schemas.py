"""What the Open311 door reads (the citizen's form, the list filters) and the admin key schemas."""
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import current_app
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from ..cases.schemas import CommaList
from ..core.schemas import AREA_CODE, AwareDateTime, Lat, Lon, Schema

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n]")
ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]{1,50})\](\[\])?$")


def no_control_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("control characters are not allowed")


def one_line(value: str) -> None:
    no_control_characters(value)
    if _LINE_BREAK.search(value):
        raise ValidationError("a single line is expected")


def Line(max_length: int, **kw):
    return fields.String(validate=[validate.Length(max=max_length), one_line], **kw)


class W3CDateTime(fields.Field):
    """A W3C date-time (ISO 8601). Without an offset it is read in the deployment's time zone."""
    def _deserialize(self, value, attr, data, **kw):
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError("a W3C date-time such as 2026-11-26T09:00:00+08:00 or 2026-11-26T01:00:00Z")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
        return moment


class _Open311Args(ma.Schema):
    """A blank parameter is one not given ("Optional Arguments" in the specification); others are ignored."""
    class Meta:
        ordered = True
        unknown = ma.EXCLUDE

    @pre_load
    def _blank_is_absent(self, data, **kw):
        return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}


class ServiceRequestIn(_Open311Args):
    """POST requests: the form fields of GeoReport v2 (attribute[...] gathered by `form_data`)."""
    service_code = fields.String(required=True, validate=[validate.Length(max=20), one_line],
                                 error_messages={"required": "service_code is required"})
    lat = Lat()
    lon = Lon(data_key="long")
    address_string = Line(300)
    address_id = Line(100)
    email = fields.Email(validate=validate.Length(max=200))
    device_id = Line(100)
    account_id = Line(100)
    first_name = Line(50)
    last_name = Line(50)
    phone = fields.String(validate=validate.Regexp(r"^[0-9+()\- ]{3,40}$", error="a phone number of digits, + ( ) -"))
    description = fields.String(validate=[validate.Length(max=4000), no_control_characters])
    media_url = fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    attributes = fields.Dict(keys=fields.String(), load_default=dict)

    @validates_schema
    def _a_location(self, data, **kw):
        if ("lat" in data) != ("lon" in data):
            raise ValidationError("lat and long are sent together", "lat" if "lat" not in data else "long")
        if "lat" not in data and "address_string" not in data:
            if "address_id" in data:
                raise ValidationError("address_id is not known to this jurisdiction; send lat and long, "
                                      "or address_string", "address_id")
            raise ValidationError("a location is required: lat and long, or address_string", "lat")


def form_data(values) -> dict:
    """The posted form as a plain dict, with attribute[CODE] and attribute[CODE][] gathered as
    {CODE: [values]} (blank answers dropped: not answered)."""
    data, attributes = {}, {}
    for key in values.keys():
        match = ATTRIBUTE_KEY.match(key)
        if match:
            answers = [v for v in values.getlist(key) if v.strip()]
            if answers:
                attributes.setdefault(match.group(1), []).extend(answers)
        elif key != "api_key":
            data[key] = values.get(key)
    data["attributes"] = attributes
    return data


class RequestsQuery(_Open311Args):
    """GET requests: the filters of GeoReport v2."""
    # GeoReport clients send empty form fields: an empty list is no filter here
    service_request_id = CommaList(fields.String(validate=validate.Length(1, 40)), validate=validate.Length(max=1000),
                                   allow_empty=True)
    service_code = CommaList(fields.String(validate=validate.Length(1, 20)), validate=validate.Length(max=200),
                             allow_empty=True)
    start_date = W3CDateTime()
    end_date = W3CDateTime()
    status = CommaList(fields.String(validate=validate.OneOf(["open", "closed"])), allow_empty=True)

    @validates_schema
    def _a_window(self, data, **kw):
        if "start_date" in data and "end_date" in data and data["start_date"] > data["end_date"]:
            raise ValidationError("start_date is after end_date", "start_date")


# ---------------------------------------------------------------- the admin's keys (/api/v1)

class KeyIn(Schema):
    name = fields.String(required=True, validate=[validate.Length(1, 100), one_line])
    scope = fields.List(fields.String(validate=AREA_CODE), validate=validate.Length(1, 100),
                        metadata={"description": "the areas the key reports into; default: the admin's scope"})


class KeyOut(Schema):
    id = fields.Integer()
    name = fields.String()
    scope = fields.List(fields.String())
    created_by = fields.Integer(allow_none=True)
    created_at = AwareDateTime()
    revoked_at = AwareDateTime(allow_none=True)


class KeyCreated(KeyOut):
    api_key = fields.String(metadata={"description": "the secret, shown this once; only its hash is kept"})


class KeyList(Schema):
    items = fields.List(fields.Nested(KeyOut))
    total = fields.Integer()
