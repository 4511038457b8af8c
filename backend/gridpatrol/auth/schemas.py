from marshmallow import fields, validate

from ..core.schemas import AREA_CODE, GRID_CODE, AwareDateTime, Schema
from .models import ROLES


class TokenRequest(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 64))
    password = fields.String(required=True, validate=validate.Length(1, 256))


class UserOut(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())
    scope = fields.List(fields.String())
    team_ids = fields.List(fields.Integer())
    grid_codes = fields.List(fields.String())


class TokenOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_at = AwareDateTime()
    user = fields.Nested(UserOut)


class UserIn(Schema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.@-]{2,64}$",
                             error="2–64 letters, digits or _ . @ -"))
    password = fields.String(required=True, validate=validate.Length(10, 256, error="10 to 256 characters"))
    display_name = fields.String(validate=validate.Length(1, 100))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True,
                        validate=validate.Length(min=1, error="at least one role"))
    scope = fields.List(fields.String(validate=AREA_CODE), required=True,
                        validate=validate.Length(min=1, max=100, error="at least one area code"))
    team_ids = fields.List(fields.Integer(), load_default=list)
    grid_codes = fields.List(fields.String(validate=GRID_CODE), load_default=list, validate=validate.Length(max=5000))
