"""Evidence photos: checked by content, re-encoded without metadata, flagged, added exactly once."""
import hashlib
import io
import struct
import uuid
import zlib

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import text

from helpers import png

GPS_IFD, EXIF_IFD, DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, MAKE = 0x8825, 0x8769, 0x9003, 0x9011, 0x010F


def dms(value: float):
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600 * 1000)
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 1000))


def image_bytes(fmt="JPEG", size=(64, 48), colour=None, gps=None, taken=None, **kw) -> bytes:
    """A real image; with `gps=(lon, lat)` and `taken` ("YYYY:MM:DD HH:MM:SS") written into its EXIF."""
    n = uuid.uuid4().int
    img = Image.new("RGB", size, colour or (n % 256, (n >> 8) % 256, (n >> 16) % 256))
    exif = Image.Exif()
    exif[MAKE] = "SecretCam"
    if gps:
        lon, lat = gps
        exif.get_ifd(GPS_IFD).update({1: "N" if lat >= 0 else "S", 2: dms(abs(lat)),
                                      3: "E" if lon >= 0 else "W", 4: dms(abs(lon))})
    if taken:
        exif.get_ifd(EXIF_IFD).update({DATETIME_ORIGINAL: taken, OFFSET_TIME_ORIGINAL: "+08:00"})
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif, **kw)
    return buf.getvalue()


def upload(api, case_id, data, kind="before", key=None, filename="photo.jpg", **form):
    fields = {"file": (io.BytesIO(data), filename), **form}
    if kind is not None:
        fields["kind"] = kind
    return api.post(f"/api/v1/cases/{case_id}/photos", data=fields, content_type="multipart/form-data",
                    headers={"Idempotency-Key": key or str(uuid.uuid4())})


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        rows = db.session.execute(text(statement), params).all()
        db.session.rollback()
        return rows


@pytest.fixture
def people(make_user, make_team, district):
    """An inspector with a case in the fresh district, its dispatcher, and a handler of the lead team."""
    code = district["code"]
    team = make_team(area_codes=[code])
    inspector = make_user("inspector", scope=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    handler = make_user("handler", scope=[code], teams=[team])
    lon, lat = district["point"](4)
    case = inspector.report(lon=lon, lat=lat)
    return {"inspector": inspector, "dispatcher": dispatcher, "handler": handler, "team": team, "case": case,
            "lon": lon, "lat": lat}


def dispatch(people):
    d, case = people["dispatcher"], people["case"]
    d.act(case["id"], "register", {})
    d.act(case["id"], "dispatch", {"team_id": people["team"]})


# ------------------------------------------------------------------ accepted uploads

@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_jpeg_png_and_webp_are_accepted(people, fmt, mime, app):
    data = image_bytes(fmt, size=(80, 60))
    r = upload(people["inspector"], people["case"]["id"], data, filename=f"x.{fmt.lower()}")
    assert r.status_code == 201, r.get_json()
    photo = r.get_json()
    assert photo["sha256"] == hashlib.sha256(data).hexdigest()
    assert (photo["width"], photo["height"]) == (80, 60)
    assert photo["kind"] == "before" and photo["flags"] == []
    assert isinstance(photo["id"], int) and r.headers["Location"] == f"/api/v1/photos/{photo['id']}"
    [(stored_mime, case_id)] = sql(app, "SELECT mime, case_id FROM photos WHERE id = :id", id=photo["id"])
    assert stored_mime == mime and case_id == people["case"]["id"]


def test_the_served_copy_has_no_metadata_and_the_thumb_is_small(people):
    data = image_bytes("JPEG", size=(1200, 900), gps=(121.47, 31.23), taken="2026:11:26 09:10:11")
    assert b"SecretCam" in data
    photo = upload(people["dispatcher"], people["case"]["id"], data).get_json()
    for viewer in ("inspector", "dispatcher"):
        r = people[viewer].get(f"/api/v1/photos/{photo['id']}")
        assert r.status_code == 200 and r.mimetype == "image/jpeg"
        served = Image.open(io.BytesIO(r.data))
        served.load()
        assert served.size == (1200, 900)
        assert dict(served.getexif()) == {} and not served.getexif().get_ifd(GPS_IFD)
        assert b"Exif" not in r.data and b"SecretCam" not in r.data
        assert r.data != data
    r = people["inspector"].get(f"/api/v1/photos/{photo['id']}?size=thumb")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.data))
    assert max(thumb.size) <= 320 and thumb.size[0] > thumb.size[1]
    assert len(r.data) < len(people["inspector"].get(f"/api/v1/photos/{photo['id']}").data)
    assert b"SecretCam" not in r.data
    assert people["inspector"].get(f"/api/v1/photos/{photo['id']}?size=huge").status_code == 422


def test_exif_position_is_kept_in_columns_and_shown_to_dispatchers_only(app, people):
    lon, lat = people["lon"], people["lat"]
    data = image_bytes("JPEG", gps=(lon, lat), taken="2026:11:26 09:10:11")
    r = upload(people["inspector"], people["case"]["id"], data)
    assert r.status_code == 201
    seen_by_inspector = r.get_json()
    assert "exif_lon" not in seen_by_inspector and "exif_lat" not in seen_by_inspector
    assert seen_by_inspector["taken_at"].startswith("2026-11-26T01:10:11")  # 09:10:11+08:00 in UTC
    [(exif_lon, exif_lat)] = sql(app, "SELECT exif_lon, exif_lat FROM photos WHERE id = :id",
                                 id=seen_by_inspector["id"])
    assert abs(exif_lon - lon) < 1e-5 and abs(exif_lat - lat) < 1e-5
    listed = people["dispatcher"].get(f"/api/v1/cases/{people['case']['id']}/photos").get_json()["items"]
    mine = next(p for p in listed if p["id"] == seen_by_inspector["id"])
    assert abs(mine["exif_lon"] - lon) < 1e-5 and abs(mine["exif_lat"] - lat) < 1e-5
    listed = people["inspector"].get(f"/api/v1/cases/{people['case']['id']}/photos").get_json()["items"]
    assert all("exif_lon" not in p and "exif_lat" not in p for p in listed)
    assert "far" not in mine["flags"]


def test_a_photo_taken_far_from_the_case_point_is_flagged(people):
    data = image_bytes("JPEG", gps=(people["lon"] + 0.01, people["lat"]))  # ≈ 1 km east
    photo = upload(people["dispatcher"], people["case"]["id"], data).get_json()
    assert "far" in photo["flags"]


def test_the_same_image_on_another_case_is_flagged_duplicate(people, district):
    data = image_bytes("PNG")
    first = upload(people["inspector"], people["case"]["id"], data)
    assert first.status_code == 201 and first.get_json()["flags"] == []
    # twice on the same case (another key) is not a duplicate of another case
    again = upload(people["inspector"], people["case"]["id"], data)
    assert again.status_code == 201 and again.get_json()["flags"] == []
    lon, lat = district["point"](0)
    other = people["inspector"].report(lon=lon, lat=lat)
    second = upload(people["inspector"], other["id"], data)
    assert second.status_code == 201 and second.get_json()["flags"] == ["duplicate"]
    assert upload(people["inspector"], other["id"], image_bytes("PNG")).get_json()["flags"] == []


def test_a_replayed_upload_gives_the_same_photo_once(app, people):
    data = image_bytes("JPEG")
    key = str(uuid.uuid4())
    first = upload(people["inspector"], people["case"]["id"], data, key=key)
    second = upload(people["inspector"], people["case"]["id"], data, key=key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    [(count,)] = sql(app, "SELECT count(*) FROM photos WHERE case_id = :c AND sha256 = :h",
                     c=people["case"]["id"], h=hashlib.sha256(data).hexdigest())
    assert count == 1
    # the same key with another image is refused, and makes nothing
    r = upload(people["inspector"], people["case"]["id"], image_bytes("JPEG"), key=key)
    assert r.status_code == 422
    [(count,)] = sql(app, "SELECT count(*) FROM photos WHERE case_id = :c", c=people["case"]["id"])
    assert count == 1


def test_the_idempotency_key_is_required(people):
    r = people["inspector"].post(f"/api/v1/cases/{people['case']['id']}/photos",
                                 data={"kind": "before", "file": (io.BytesIO(png()), "p.png")},
                                 content_type="multipart/form-data")
    assert r.status_code == 400 and "Idempotency-Key" in r.get_json()["errors"]


# ------------------------------------------------------------------ refused uploads

def crafted_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height pixels."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script></svg>')


@pytest.mark.parametrize("data, filename, status", [
    (b"just some text, not a picture\n" * 10, "photo.jpg", 415),
    (SVG, "photo.svg", 415),
    (b"GIF89a" + b"\0" * 100, "photo.gif", 415),
    (b"%PDF-1.4\n" + b"\0" * 100, "photo.jpg", 415),
    (crafted_png(50_000, 50_000), "bomb.png", 413),
    (b"", "empty.jpg", 422),
])
def test_bad_files_are_refused(app, people, data, filename, status):
    r = upload(people["inspector"], people["case"]["id"], data, filename=filename)
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json" and "file" in r.get_json()["errors"]
    assert sql(app, "SELECT count(*) FROM photos WHERE case_id = :c", c=people["case"]["id"]) == [(0,)]


def test_a_truncated_jpeg_is_422(people):
    data = image_bytes("JPEG", size=(400, 300))
    r = upload(people["inspector"], people["case"]["id"], data[: len(data) // 2])
    assert r.status_code == 422 and "file" in r.get_json()["errors"]


@pytest.mark.parametrize("form", [{"kind": None}, {"kind": "selfie"}, {"kind": "before", "taken_at": "yesterday"},
                                  {"kind": "before", "taken_at": "2026-11-26T09:00:00"}])
def test_bad_form_values_are_422(people, form):
    kind = form.pop("kind")
    r = upload(people["inspector"], people["case"]["id"], image_bytes(), kind=kind, **form)
    assert r.status_code == 422, r.get_json()
    assert set(r.get_json()["errors"]) & {"kind", "taken_at"}


def test_an_unknown_form_field_is_422(people):
    r = upload(people["inspector"], people["case"]["id"], image_bytes(), uploaded_by="1")
    assert r.status_code == 422 and "uploaded_by" in r.get_json()["errors"]


def test_the_file_part_is_required(people):
    r = people["inspector"].post(f"/api/v1/cases/{people['case']['id']}/photos", data={"kind": "before"},
                                 content_type="multipart/form-data", headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 422 and "file" in r.get_json()["errors"]


# ------------------------------------------------------------------ who may add which photo

def test_only_the_lead_team_adds_after_photos(people, make_user, make_team, district):
    dispatch(people)
    other_team = make_team(area_codes=[district["code"]])
    outsider_handler = make_user("handler", scope=[district["code"]], teams=[other_team])
    r = upload(outsider_handler, people["case"]["id"], image_bytes(), kind="after")
    assert r.status_code == 403
    assert upload(people["inspector"], people["case"]["id"], image_bytes(), kind="after").status_code == 403
    r = upload(people["handler"], people["case"]["id"], image_bytes(), kind="after")
    assert r.status_code == 201 and r.get_json()["kind"] == "after"


def test_a_handler_does_not_add_before_photos_and_verification_waits_for_handling(people):
    dispatch(people)
    assert upload(people["handler"], people["case"]["id"], image_bytes(), kind="before").status_code == 403
    r = upload(people["inspector"], people["case"]["id"], image_bytes(), kind="verification")
    assert r.status_code == 409


def test_a_verification_photo_after_handling(people, make_user, district):
    dispatch(people)
    case_id = people["case"]["id"]
    people["handler"].act(case_id, "accept", {})
    after = upload(people["handler"], case_id, image_bytes(), kind="after").get_json()
    people["handler"].act(case_id, "handle", {"note": "cleaned", "photo_ids": [after["id"]]})
    verifier = make_user("inspector", scope=[district["code"]])
    r = upload(verifier, case_id, image_bytes(gps=(people["lon"], people["lat"])), kind="verification")
    assert r.status_code == 201 and r.get_json()["flags"] == []


def test_photos_of_a_case_in_another_district_do_not_exist(people, make_user):
    photo = upload(people["inspector"], people["case"]["id"], image_bytes()).get_json()
    outsider = make_user("inspector", "dispatcher", scope=["310199"])
    r = upload(outsider, people["case"]["id"], image_bytes())
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert outsider.get(f"/api/v1/photos/{photo['id']}").status_code == 404
    assert outsider.get(f"/api/v1/photos/{photo['id']}?size=thumb").status_code == 404
    assert outsider.get(f"/api/v1/cases/{people['case']['id']}/photos").status_code == 404
    assert outsider.get("/api/v1/photos/999999999").status_code == 404
    assert upload(outsider, 999999999, image_bytes()).status_code == 404
