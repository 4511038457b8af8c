"""Tests for gridpatrol.photos.imaging.  All images are generated here with Pillow."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import tracemalloc
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo
from PIL.TiffImagePlugin import IFDRational

from gridpatrol.photos import imaging
from gridpatrol.photos.imaging import Limits, PhotoRejected, ProcessedPhoto, process, sniff

PHP = b"<?php system($_GET['c']); ?>"

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
ORIENTATION, IMAGE_DESCRIPTION, MAKE = 0x0112, 0x010E, 0x010F
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x9003, 0x9011

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


# --------------------------------------------------------------------------- helpers


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def solid(size=(64, 48), colour=BLUE, mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def jpeg(size=(64, 48), colour=BLUE, **kw) -> bytes:
    return encode(solid(size, colour), "JPEG", **kw)


def noisy_jpeg(size=(800, 600)) -> bytes:
    """A JPEG with real entropy so truncation really cuts into the scan data."""
    rnd = random.Random(1)
    img = Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3))
    return encode(img, "JPEG", quality=90)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def crafted_png(width: int, height: int, rows: int = 1) -> bytes:
    """An RGB PNG whose IHDR declares width x height but whose IDAT only holds
    ``rows`` scanlines (all rows when rows == height): tiny on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress((b"\x00" + b"\x00" * (width * 3)) * rows, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def exif_with(
    *,
    orientation: int | None = None,
    taken: str | None = None,
    offset: str | None = None,
    gps: dict | None = None,
    description: str | None = None,
    make: str | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if description is not None:
        exif[IMAGE_DESCRIPTION] = description
    if make is not None:
        exif[MAKE] = make
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
    if offset is not None:
        exif.get_ifd(EXIF_IFD)[OFFSET_TIME_ORIGINAL] = offset
    if gps is not None:
        exif.get_ifd(GPS_IFD).update(gps)
    return exif


def R(num, den=1) -> IFDRational:
    return IFDRational(num, den)


def reopen(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def close_to(pixel, colour, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour))


def status_of(data: bytes, **kw) -> int:
    with pytest.raises(PhotoRejected) as info:
        process(data, **kw)
    return info.value.status


# --------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"RIFF\x10\x00\x00\x00WEB", None),  # too short
        (b"GIF89a" + b"\x00" * 20, None),
        (b"%PDF-1.7\n", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"\xff\xd8", None),
        (b"", None),
    ],
)
def test_sniff_magic_bytes(data, expected):
    assert sniff(data) == expected


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    "fmt, mime",
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_accepts_jpeg_png_webp_with_sniffed_mime(fmt, mime):
    data = encode(solid((120, 80), GREEN), fmt)
    photo = process(data)
    assert isinstance(photo, ProcessedPhoto)
    assert photo.mime == mime
    assert photo.served_mime == "image/jpeg"
    assert (photo.width, photo.height) == (120, 80)
    served = reopen(photo.served)
    assert served.format == "JPEG"
    assert served.size == (120, 80)
    assert close_to(served.getpixel((60, 40)), GREEN)
    assert reopen(photo.thumb).format == "JPEG"


def test_sha256_is_of_the_original_upload():
    data = jpeg((50, 50))
    photo = process(data)
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    assert process(data).sha256 == photo.sha256  # same file twice -> same digest
    assert process(jpeg((50, 50), RED)).sha256 != photo.sha256


def test_served_copy_is_always_reencoded():
    data = jpeg((100, 100))
    assert process(data).served != data


def test_phone_mpo_jpeg_is_accepted_as_jpeg():
    # iPhone/Samsung JPEGs often carry an MPF extension; Pillow reports "MPO".
    data = encode(solid((90, 60), RED), "MPO", save_all=True, append_images=[solid((90, 60))])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    photo = process(data)
    assert photo.mime == "image/jpeg"
    assert close_to(reopen(photo.served).getpixel((45, 30)), RED)


def test_transparent_png_stays_png_with_alpha():
    img = Image.new("RGBA", (40, 30), (10, 200, 10, 255))
    img.paste((200, 10, 10, 0), (0, 0, 20, 30))
    photo = process(encode(img, "PNG"))
    assert photo.served_mime == "image/png"
    served = reopen(photo.served)
    assert served.format == "PNG" and served.mode == "RGBA"
    assert served.getpixel((5, 5))[3] == 0
    assert served.getpixel((35, 5)) == (10, 200, 10, 255)
    assert reopen(photo.thumb).format == "JPEG"


def test_opaque_rgba_is_served_as_jpeg():
    photo = process(encode(Image.new("RGBA", (40, 30), (10, 200, 10, 255)), "PNG"))
    assert photo.served_mime == "image/jpeg"
    assert reopen(photo.served).format == "JPEG"


# --------------------------------------------------------------------------- orientation


def test_exif_orientation_6_is_applied():
    # Stored landscape 400x200, red block in the stored top-left corner.
    img = solid((400, 200), BLUE)
    img.paste(RED, (0, 0, 100, 100))
    data = encode(img, "JPEG", quality=95, exif=exif_with(orientation=6))
    photo = process(data)
    # Orientation 6 = rotate 90 degrees clockwise for display.
    assert (photo.width, photo.height) == (200, 400)
    served = reopen(photo.served)
    assert served.size == (200, 400)
    assert close_to(served.getpixel((190, 10)), RED)  # top-right
    assert close_to(served.getpixel((10, 10)), BLUE)
    assert close_to(served.getpixel((10, 390)), BLUE)
    assert close_to(served.getpixel((190, 390)), BLUE)
    assert served.getexif().get(ORIENTATION) is None  # not rotated twice by viewers
    thumb = reopen(photo.thumb)
    assert thumb.size == (160, 320)
    assert close_to(thumb.getpixel((150, 8)), RED)


# --------------------------------------------------------------------------- EXIF data

SHANGHAI_GPS = {
    1: "N",
    2: (R(31), R(14), R(24, 10)),
    3: "E",
    4: (R(121), R(28), R(12)),
}


def test_exif_datetime_and_gps_are_parsed():
    exif = exif_with(taken="2024:05:06 14:30:00", offset="+08:00", gps=SHANGHAI_GPS)
    photo = process(jpeg(exif=exif))
    assert photo.exif_taken_at == datetime(2024, 5, 6, 6, 30, tzinfo=timezone.utc)
    assert photo.exif_taken_at.utcoffset() == timedelta(0)
    assert photo.exif_lat == pytest.approx(31.234, abs=1e-9)
    assert photo.exif_lon == pytest.approx(121.47, abs=1e-9)


def test_exif_in_png_and_webp_is_parsed_too():
    exif = exif_with(taken="2024:01:02 03:04:05", offset="+00:00", gps=SHANGHAI_GPS)
    for fmt in ("PNG", "WEBP"):
        # (tobytes: an Exif holding only sub-IFDs is falsy to the PNG writer)
        photo = process(encode(solid(), fmt, exif=exif.tobytes()))
        assert photo.exif_taken_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), fmt
        assert photo.exif_lat == pytest.approx(31.234), fmt


@pytest.mark.parametrize(
    "taken, offset, default_tz, expected",
    [
        ("2024:05:06 14:30:00", None, "Asia/Shanghai", datetime(2024, 5, 6, 6, 30)),
        ("2024:05:06 14:30:00", None, "UTC", datetime(2024, 5, 6, 14, 30)),
        ("2024:05:06 14:30:00", "-05:00", "Asia/Shanghai", datetime(2024, 5, 6, 19, 30)),
        ("2024:05:06 14:30:00", "+08:00", "UTC", datetime(2024, 5, 6, 6, 30)),
        ("2024:05:06 14:30:00", "garbage", "UTC", datetime(2024, 5, 6, 14, 30)),
        ("2024:07:01 12:00:00", None, "Europe/Berlin", datetime(2024, 7, 1, 10, 0)),  # DST
        ("0000:00:00 00:00:00", None, "UTC", None),
        ("    :  :     :  :  ", None, "UTC", None),
        ("2024:13:40 99:00:00", None, "UTC", None),
        ("yesterday", None, "UTC", None),
    ],
)
def test_exif_datetime_timezones(taken, offset, default_tz, expected):
    photo = process(jpeg(exif=exif_with(taken=taken, offset=offset)), default_tz=default_tz)
    if expected is None:
        assert photo.exif_taken_at is None
    else:
        assert photo.exif_taken_at == expected.replace(tzinfo=timezone.utc)
        assert photo.exif_taken_at.tzinfo is not None


def test_no_exif_gives_none_fields():
    photo = process(jpeg())
    assert photo.exif_taken_at is None
    assert photo.exif_lon is None and photo.exif_lat is None


@pytest.mark.parametrize(
    "gps, expected",
    [
        (SHANGHAI_GPS, (121.47, 31.234)),
        ({1: "S", 2: (R(33), R(52), R(0)), 3: "W", 4: (R(70), R(30), R(0))}, (-70.5, -33.8666667)),
        ({1: "N", 2: (R(95), R(0), R(0)), 3: "E", 4: (R(10), R(0), R(0))}, None),  # lat > 90
        ({1: "N", 2: (R(10), R(0), R(0)), 3: "E", 4: (R(200), R(0), R(0))}, None),  # lon > 180
        ({1: "N", 2: (R(1, 0), R(0), R(0)), 3: "E", 4: (R(10), R(0), R(0))}, None),  # x/0
        ({1: "X", 2: (R(10), R(0), R(0)), 3: "E", 4: (R(10), R(0), R(0))}, None),  # bad ref
        ({2: (R(10), R(0), R(0)), 3: "E", 4: (R(10), R(0), R(0))}, None),  # missing ref
        ({1: "N", 2: (R(10), R(0), R(0))}, None),  # no longitude
        ({1: "N", 2: (R(10), R(75), R(0)), 3: "E", 4: (R(10), R(0), R(0))}, None),  # 75 minutes
        ({1: "N", 2: (R(0), R(0), R(0)), 3: "E", 4: (R(0), R(0), R(0))}, None),  # no fix
    ],
)
def test_exif_gps_parsing_is_robust(gps, expected):
    photo = process(jpeg(exif=exif_with(gps=gps)))
    if expected is None:
        assert (photo.exif_lon, photo.exif_lat) == (None, None)
    else:
        assert photo.exif_lon == pytest.approx(expected[0], abs=1e-6)
        assert photo.exif_lat == pytest.approx(expected[1], abs=1e-6)


@pytest.mark.parametrize(
    "value",
    [(1, 2), "31.2", (1.5,), ((1, 0), (2, 1), (3, 1)), (float("nan"), 0.0, 0.0), ("a", "b", "c")],
)
def test_gps_rational_helper_never_raises(value):
    # Defensive parsing of whatever Pillow hands back for odd files.
    result = imaging._dms(value, "N", "N", "S", 90.0)
    assert result is None or 0.0 <= result <= 90.0


# --------------------------------------------------------------------------- metadata stripped


def test_served_and_thumb_have_no_metadata():
    exif = exif_with(make="EvilCam", description="secret", gps=SHANGHAI_GPS,
                     taken="2024:05:06 14:30:00")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">GridSecretXMP</x:xmpmeta>'
    data = jpeg((200, 150), exif=exif, icc_profile=icc, xmp=xmp, comment=b"secret comment")
    original = reopen(data)
    assert len(original.getexif()) > 0 and "icc_profile" in original.info  # precondition
    assert "xmp" in original.info and "comment" in original.info

    photo = process(data)
    assert photo.exif_taken_at is not None  # metadata was read ...
    for blob in (photo.served, photo.thumb):  # ... but not carried over
        img = reopen(blob)
        assert len(img.getexif()) == 0
        for key in ("exif", "icc_profile", "xmp", "comment"):
            assert key not in img.info, key
        for marker in (b"Exif\x00\x00", b"EvilCam", b"GridSecretXMP", b"secret comment"):
            assert marker not in blob


def test_png_text_chunks_are_not_carried_over():
    info = PngInfo()
    info.add_text("Comment", PHP.decode())
    info.add_itxt("XML:com.adobe.xmp", "GridSecretXMP")
    img = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    data = encode(img, "PNG", pnginfo=info)
    assert PHP in data  # precondition
    photo = process(data)
    assert photo.served_mime == "image/png"
    served = reopen(photo.served)
    assert served.text == {}
    assert PHP not in photo.served and b"GridSecretXMP" not in photo.served


# --------------------------------------------------------------------------- sizes


def test_twelve_megapixels_downscaled_to_2048_and_thumb():
    data = jpeg((4000, 3000), GREEN)
    photo = process(data)
    assert (photo.width, photo.height) == (2048, 1536)
    assert reopen(photo.served).size == (2048, 1536)
    thumb = reopen(photo.thumb)
    assert max(thumb.size) <= 320
    assert thumb.size == (320, 240)
    assert close_to(thumb.getpixel((160, 120)), GREEN)


def test_portrait_long_edge_limited_by_custom_limits():
    photo = process(encode(solid((300, 1200)), "PNG"), Limits(max_side=500, thumb_side=100))
    assert (photo.width, photo.height) == (125, 500)
    assert reopen(photo.thumb).size == (25, 100)


def test_small_images_are_not_upscaled():
    photo = process(jpeg((640, 480)))
    assert (photo.width, photo.height) == (640, 480)
    assert reopen(photo.thumb).size == (320, 240)


def test_oversized_upload_is_413_and_limit_is_inclusive():
    data = jpeg((300, 200))
    assert status_of(data, limits=Limits(max_bytes=len(data) - 1)) == 413
    assert process(data, Limits(max_bytes=len(data))).mime == "image/jpeg"


def test_size_is_checked_before_type():
    assert status_of(b"<?php " + b"x" * 5000, limits=Limits(max_bytes=1000)) == 413


def test_crafted_png_helper_produces_a_valid_png():
    # Guards the bomb tests below: the hand-made PNG is decodable when complete.
    photo = process(crafted_png(8, 6, rows=6))
    assert photo.mime == "image/png" and (photo.width, photo.height) == (8, 6)


def test_png_bomb_declaring_50000x50000_is_413_without_decoding():
    bomb = crafted_png(50_000, 50_000)
    assert len(bomb) < 2048
    tracemalloc.start()
    try:
        assert status_of(bomb) == 413
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_pixel_limit_is_checked_before_load(monkeypatch):
    # 8000x6000 = 48 MP: above our 40 MP default but below Pillow's own
    # DecompressionBomb threshold, so only imaging's header check can refuse it.
    assert 8000 * 6000 < Image.MAX_IMAGE_PIXELS
    loads = []
    real_load = ImageFile.ImageFile.load

    def spy(self, *a, **kw):
        loads.append(self.size)
        return real_load(self, *a, **kw)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    tracemalloc.start()
    try:
        assert status_of(crafted_png(8000, 6000)) == 413
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loads == []
    assert peak < 50 * 1024 * 1024


def test_pixel_limit_boundary():
    data = jpeg((100, 50))
    assert status_of(data, limits=Limits(max_pixels=4999)) == 413
    assert process(data, Limits(max_pixels=5000)).width == 100


def test_pillow_globals_are_left_alone():
    before = Image.MAX_IMAGE_PIXELS
    process(jpeg())
    with pytest.raises(PhotoRejected):
        process(crafted_png(50_000, 50_000))
    assert Image.MAX_IMAGE_PIXELS == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- 422


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_jpeg_is_422(fraction):
    data = noisy_jpeg()
    process(data)  # the complete file is fine
    assert status_of(data[: int(len(data) * fraction)]) == 422


def test_truncated_png_is_422():
    rnd = random.Random(2)
    data = encode(Image.frombytes("RGB", (300, 200), rnd.randbytes(300 * 200 * 3)), "PNG")
    assert status_of(data[: len(data) // 2]) == 422


def test_truncated_webp_is_422():
    rnd = random.Random(3)
    data = encode(Image.frombytes("RGB", (300, 200), rnd.randbytes(300 * 200 * 3)), "WEBP")
    assert status_of(data[: len(data) // 2]) == 422


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + PHP,  # JPEG magic, then PHP: not decodable as an image
        b"\xff\xd8\xff\xe0" + bytes(random.Random(4).randbytes(2000)),
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 50,
        b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 40,
    ],
    ids=["jpeg-magic-php", "jpeg-magic-random", "png-magic-garbage", "webp-magic-garbage"],
)
def test_magic_but_undecodable_is_422(data):
    assert status_of(data) == 422


# --------------------------------------------------------------------------- 415

SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">
<script>alert(1)</script><rect width="10" height="10"/></svg>"""


@pytest.mark.parametrize(
    "data",
    [
        SVG,
        encode(solid(), "GIF"),
        b"GIF89a" + PHP,  # GIF/PHP polyglot
        PHP,  # "x.jpg" that is really a PHP script: the name plays no role
        random.Random(5).randbytes(4096),
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        encode(solid(), "BMP"),
        encode(solid(), "TIFF"),
        b"",
    ],
    ids=["svg", "gif", "gif-php", "php-named-jpg", "random", "pdf", "html", "bmp", "tiff", "empty"],
)
def test_unsupported_content_is_415(data):
    assert status_of(data) == 415


# --------------------------------------------------------------------------- polyglots


@pytest.mark.parametrize("where", ["appended", "comment", "exif"])
def test_jpeg_php_polyglot_is_accepted_but_payload_not_served(where):
    if where == "appended":
        data = jpeg((120, 90)) + PHP
    elif where == "comment":
        data = jpeg((120, 90), comment=PHP)
    else:
        data = jpeg((120, 90), exif=exif_with(description=PHP.decode()))
    assert PHP in data and sniff(data) == "image/jpeg"  # precondition
    photo = process(data)
    assert photo.mime == "image/jpeg"
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    assert b"<?php" not in photo.served
    assert b"<?php" not in photo.thumb
    assert reopen(photo.served).size == (120, 90)


def test_pillow_format_must_match_sniffed_type(monkeypatch):
    # The three magic numbers are disjoint, so simulate a sniff/Pillow
    # disagreement: content Pillow parses as JPEG but sniffed as PNG.
    monkeypatch.setattr(imaging, "sniff", lambda data: "image/png")
    assert status_of(jpeg()) == 415


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.filterwarnings("ignore")  # Pillow warns about the corrupt EXIF we create
def test_fuzzed_uploads_only_ever_raise_photo_rejected(fmt):
    rnd = random.Random(fmt)
    img = Image.frombytes("RGB", (48, 32), rnd.randbytes(48 * 32 * 3))
    exif = exif_with(orientation=6, taken="2024:05:06 14:30:00", gps=SHANGHAI_GPS)
    seed = encode(img, fmt, exif=exif.tobytes())
    outcomes = set()
    for _ in range(150):
        mutated = bytearray(seed)
        for _ in range(rnd.randint(1, 8)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        try:
            photo = process(bytes(mutated))
        except PhotoRejected as exc:
            assert exc.status in (413, 415, 422)
            outcomes.add(exc.status)
        else:
            assert reopen(photo.served).size == (photo.width, photo.height)
            outcomes.add(200)
    assert 422 in outcomes


def test_unknown_default_timezone_is_a_value_error():
    with pytest.raises(ValueError):
        process(jpeg(), default_tz="Mars/Olympus_Mons")


def test_photo_rejected_carries_status_and_reason():
    exc = PhotoRejected(415, "nope")
    assert (exc.status, exc.reason) == (415, "nope")
    assert "nope" in str(exc)
