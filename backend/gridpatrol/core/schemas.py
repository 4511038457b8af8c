"""Fields and schemas shared by the modules' schemas."""
import math
from datetime import datetime, timezone

import marshmallow as ma
from flask import request
from marshmallow import ValidationError, fields, pre_load, validate

AREA_CODE = validate.Regexp(r"^(\d{6}|\d{9}|\d{12}|\d{15}|\*)$",
                            error="an area code of 6, 9, 12 or 15 digits (or * for the whole deployment)")
GRID_CODE = validate.Regexp(r"^\d{15}$", error="a grid code of 15 digits")
# booleans in JSON bodies are true and false, not "yes", "on" or "1" as marshmallow would also take
JSON_BOOLEAN = {"truthy": {True}, "falsy": {False}}
CATEGORY_CODE = validate.Regexp(r"^\d{4}$", error="a category code of 4 digits")


def _nul_fields(value, path=""):
    """Paths of the strings holding a NUL character (PostgreSQL text cannot store one)."""
    if isinstance(value, str):
        return [path or "_body"] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_fields(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nul_fields(v, f"{path}.{i}" if path else str(i))]
    return []


class Schema(ma.Schema):
    class Meta:
        ordered = True
        unknown = ma.RAISE

    @pre_load
    def _refuse_nul(self, data, **kw):
        if hasattr(data, "to_dict"):  # query or form parameters
            items = {k: v[0] if len(v) == 1 else v for k, v in data.to_dict(flat=False).items()}
        else:
            items = data
        bad = _nul_fields(items)
        if bad:
            raise ValidationError({p: ["contains a NUL character"] for p in bad})
        return data


class FiniteFloat(fields.Float):
    """A float that refuses NaN and infinities (JSON from some clients carries them)."""
    def __init__(self, **kw):
        kw.setdefault("allow_nan", False)
        super().__init__(**kw)

    def _validated(self, value):
        value = super()._validated(value)
        if value is not None and not math.isfinite(value):
            raise self.make_error("special")
        return value


def Lon(**kw):
    return FiniteFloat(validate=validate.Range(-180, 180), **kw)


def Lat(**kw):
    return FiniteFloat(validate=validate.Range(-90, 90), **kw)


# times a client may send: from the epoch (a device whose clock was reset) to the year 2999; beyond,
# the calendar's arithmetic leaves the range of a date and old local times have second offsets
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)


def AwareDateTime(**kw):
    """An ISO 8601 time with its offset, between 1970 and 2999 when read."""
    given = kw.pop("validate", None)
    given = list(given) if isinstance(given, (list, tuple)) else [given] if given else []
    bounds = validate.Range(EARLIEST, LATEST, max_inclusive=False, error="a time from 1970 to 2999")
    return fields.AwareDateTime(format="iso", validate=[bounds, *given], **kw)


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


def page_schema(item_schema, name: str):
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "total": fields.Integer(),
        "page": fields.Integer(),
        "per_page": fields.Integer(),
    })


class MultipartForm(Schema):
    """A multipart/form-data body: its file parts and its plain fields in one schema, so that one schema
    validates the whole body and the OpenAPI document shows it as one request body (flask-smorest
    documents one body location per view). Load it from location="files"; the plain fields are
    read from the form here."""

    @pre_load
    def _with_form_fields(self, data, **kw):
        merged = dict(request.form.items()) if request else {}
        merged.update({key: data[key] for key in data})
        return merged
