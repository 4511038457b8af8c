import hashlib

from flask import Response
from flask.views import MethodView
from marshmallow import RAISE

from ..core import idempotency
from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import PhotoIn, PhotoList, PhotoOut, PhotoQuery

blp = Blueprint("photos", __name__, description="Evidence photos")


@blp.route("/cases/<int:case_id>/photos")
class CasePhotosView(MethodView):
    @requires()
    @blp.arguments(PhotoIn, location="files", unknown=RAISE)
    @blp.response(201, PhotoOut)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"}}])
    def post(self, body, case_id):
        """Add a photo (JPEG, PNG or WebP, checked by content) to a case, exactly once per Idempotency-Key"""
        user = current_user()
        key = idempotency.request_key()
        data = body.pop("file").read()
        fingerprint = idempotency.fingerprint(hashlib.sha256(data).hexdigest(), body)

        def produce():
            photo = services.add_photo(case_id, user, body["kind"], data, body.get("taken_at"))
            return PhotoOut().dump(photo), 201, {"Location": f"/api/v1/photos/{photo.id}"}

        return idempotency.respond(idempotency.once(user.id, key, f"photo:{case_id}", fingerprint, produce))

    @requires()
    @blp.response(200, PhotoList)
    def get(self, case_id):
        """The photos of a case"""
        return {"items": services.photos_of(case_id, current_user())}


@blp.route("/photos/<int:photo_id>")
class PhotoView(MethodView):
    @requires()
    @blp.arguments(PhotoQuery, location="query")
    @blp.response(200, content_type="image/jpeg")
    @blp.doc(responses={200: {"description": "JPEG; PNG when the picture has real transparency; the thumb is JPEG",
                              "content": {mime: {"schema": {"type": "string", "format": "binary"}}
                                          for mime in ("image/jpeg", "image/png")}}})
    def get(self, args, photo_id):
        """The re-encoded image (metadata stripped), or its thumbnail with ?size=thumb"""
        photo = services.get_photo(photo_id, current_user())
        thumb = args["size"] == "thumb"
        body = services.read(photo, thumb)
        return Response(body, mimetype="image/jpeg" if thumb else photo.served_mime,
                        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})
