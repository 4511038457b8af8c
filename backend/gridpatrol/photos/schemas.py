from flask_smorest.fields import Upload
from marshmallow import fields, post_dump, validate

from ..core.authz import current_user
from ..core.schemas import AwareDateTime, MultipartForm, Schema
from .models import PHOTO_KINDS


class PhotoIn(MultipartForm):
    file = Upload(required=True, metadata={"description": "JPEG, PNG or WebP, checked by content"})
    kind = fields.String(required=True, validate=validate.OneOf(PHOTO_KINDS))
    taken_at = AwareDateTime()


class PhotoOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    sha256 = fields.String()
    kind = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    taken_at = AwareDateTime(allow_none=True)
    exif_lon = fields.Float(allow_none=True)
    exif_lat = fields.Float(allow_none=True)
    flags = fields.List(fields.String())
    uploaded_by = fields.Integer()
    uploaded_at = AwareDateTime()
    url = fields.Function(lambda p: f"/api/v1/photos/{p.id}")
    thumb_url = fields.Function(lambda p: f"/api/v1/photos/{p.id}?size=thumb")

    @post_dump
    def _privacy(self, data, **kw):
        # where a photo was taken is known to the dispatch centre only
        if not current_user().has_role("dispatcher"):
            data.pop("exif_lon", None)
            data.pop("exif_lat", None)
        return data


class PhotoList(Schema):
    items = fields.List(fields.Nested(PhotoOut))


class PhotoQuery(Schema):
    size = fields.String(validate=validate.OneOf(["full", "thumb"]), load_default="full")
