from marshmallow import fields, validate

from ..core.schemas import AREA_CODE, GRID_CODE, JSON_BOOLEAN, AwareDateTime, PageArgs, Schema, page_schema
from .models import ROLES

# a JSON boolean only (marshmallow would also take "yes", "on", 1 …); core/schemas.py is its home

# one definition per field, shared by the create and the change bodies: both validate alike
USERNAME = validate.Regexp(r"^[A-Za-z0-9_.@-]{2,64}$", error="2–64 letters, digits or _ . @ -")
PASSWORD = validate.Length(10, 256, error="10 to 256 characters")
DISPLAY_NAME = validate.Length(1, 100)
ROLE_LIST = validate.Length(min=1, error="at least one role")
SCOPE_LIST = validate.Length(min=1, max=100, error="at least one area code")
GRID_LIST = validate.Length(max=5000)
TEAM_ID = validate.Range(1, 2**31 - 1)  # team ids are PostgreSQL integers


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
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, validate=PASSWORD)
    display_name = fields.String(validate=DISPLAY_NAME, load_default=None,
                                 metadata={"description": "the username when not given"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True, validate=ROLE_LIST)
    scope = fields.List(fields.String(validate=AREA_CODE), required=True, validate=SCOPE_LIST)
    team_ids = fields.List(fields.Integer(validate=TEAM_ID), load_default=list)
    grid_codes = fields.List(fields.String(validate=GRID_CODE), load_default=list, validate=GRID_LIST)


class UserPatch(Schema):
    """A change to a user: only the fields sent change. The username is for ever."""
    display_name = fields.String(validate=DISPLAY_NAME)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), validate=ROLE_LIST)
    scope = fields.List(fields.String(validate=AREA_CODE), validate=SCOPE_LIST)
    team_ids = fields.List(fields.Integer(validate=TEAM_ID))
    grid_codes = fields.List(fields.String(validate=GRID_CODE), validate=GRID_LIST)
    active = fields.Boolean(**JSON_BOOLEAN,
                            metadata={"description": "false signs the user out everywhere and refuses sign-in"})
    password = fields.String(validate=PASSWORD, load_only=True,
                             metadata={"description": "a new password; every token of the user is revoked"})


class UserAdminOut(UserOut):
    """A user as an administrator sees it."""
    active = fields.Boolean()
    created_at = AwareDateTime()


class UserQuery(PageArgs):
    role = fields.String(validate=validate.OneOf(ROLES))
    q = fields.String(validate=validate.Length(1, 100),
                      metadata={"description": "part of the username or the display name"})


UserList = page_schema(UserAdminOut, "UserList")
