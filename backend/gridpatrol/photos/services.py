"""Evidence photos: checked, re-encoded, stored, and flagged."""
from datetime import datetime

from flask import current_app, g
from sqlalchemy import select

from ..auth.models import User
from ..cases import services as cases
from ..core.errors import Conflict, Forbidden, Problem, invalid
from ..core.geo import distance_m
from ..extensions import db
from .imaging import Limits, PhotoRejected, process
from .models import Photo
from .storage import Storage, storage_from_url

# who may add which kind of photo, and in which states
_KIND_RULES = {
    "before": ({"inspector", "dispatcher"}, {"reported", "registered", "returned", "dispatched", "in_progress"}),
    "after": ({"handler"}, {"dispatched", "in_progress"}),
    "verification": ({"inspector"}, {"handled"}),
}


def storage() -> Storage:
    if "photo_storage" not in g:
        g.photo_storage = storage_from_url(current_app.config["PHOTO_STORAGE"])
    return g.photo_storage


def _limits() -> Limits:
    cfg = current_app.config
    return Limits(max_bytes=cfg["PHOTO_MAX_BYTES"], max_pixels=cfg["PHOTO_MAX_PIXELS"])


class PhotoProblem(Problem):
    def __init__(self, status: int, reason: str):
        self.status = status
        self.title = {413: "Payload too large", 415: "Unsupported media type"}.get(status, "Invalid input")
        super().__init__(reason, {"file": [reason]})


def add_photo(case_id: int, user: User, kind: str, data: bytes, taken_at: datetime | None) -> Photo:
    case = cases.get_case(case_id, user)
    roles, states = _KIND_RULES[kind]
    if not roles & set(user.roles):
        raise Forbidden(f"Your roles may not add {kind} photos")
    if kind == "after" and case.lead_team_id not in user.team_ids:
        raise Forbidden("Only the lead team adds after-photos")
    if case.status not in states:
        raise Conflict(f"A {kind} photo cannot be added while the case is {case.status}")
    if not data:
        raise invalid("file", "empty file")
    try:
        photo = process(data, _limits(), current_app.config["TIMEZONE"])
    except PhotoRejected as exc:
        raise PhotoProblem(exc.status, exc.reason)
    ext = "png" if photo.served_mime == "image/png" else "jpg"
    key = f"{photo.sha256[:2]}/{photo.sha256[2:4]}/{photo.sha256}.{ext}"
    thumb_key = f"thumbs/{photo.sha256[:2]}/{photo.sha256}.jpg"
    # content-addressed: a retried upload writes the same files again, never a second copy
    storage().put(key, photo.served)
    storage().put(thumb_key, photo.thumb)
    flags = []
    on_another_case = select(Photo.id).where(Photo.sha256 == photo.sha256, Photo.case_id != case.id).limit(1)
    if db.session.execute(on_another_case).first():
        flags.append("duplicate")
    if photo.exif_lon is not None and photo.exif_lat is not None:
        lon, lat = cases.lonlat(case)
        if distance_m(lon, lat, photo.exif_lon, photo.exif_lat) > current_app.config["PHOTO_FAR_M"]:
            flags.append("far")
    row = Photo(case_id=case.id, kind=kind, sha256=photo.sha256, mime=photo.mime, served_mime=photo.served_mime,
                width=photo.width, height=photo.height, size_bytes=len(photo.served), storage_key=key,
                thumb_key=thumb_key, taken_at=taken_at or photo.exif_taken_at, exif_taken_at=photo.exif_taken_at,
                exif_lon=photo.exif_lon, exif_lat=photo.exif_lat, flags=flags, uploaded_by=user.id)
    db.session.add(row)
    db.session.flush()
    return row


def get_photo(photo_id: int, user: User) -> Photo:
    from ..core.errors import NotFound
    photo = db.session.get(Photo, photo_id)
    if photo is None:
        raise NotFound(f"No photo {photo_id}")
    cases.get_case(photo.case_id, user)  # 404 outside scope
    return photo


def photos_of(case_id: int, user: User) -> list[Photo]:
    case = cases.get_case(case_id, user)
    return list(db.session.execute(select(Photo).where(Photo.case_id == case.id).order_by(Photo.id)).scalars())


def read(photo: Photo, thumb: bool) -> bytes:
    return storage().get(photo.thumb_key if thumb else photo.storage_key)
