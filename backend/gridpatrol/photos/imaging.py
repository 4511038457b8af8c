"""Validation and normalisation of uploaded inspection photos.

Pure Pillow + stdlib.  ``process()`` takes the raw uploaded bytes and either
raises :class:`PhotoRejected` (with an HTTP-ish status code) or returns a
:class:`ProcessedPhoto` whose ``served`` / ``thumb`` bytes are ALWAYS
re-encoded from decoded pixels: the original upload is never served as-is,
so payloads hidden in comments, EXIF, trailing data etc. are dropped.

Order of checks (cheapest / safest first):

1. byte size                        -> 413
2. content sniffing (magic bytes)   -> 415 (file name / declared type ignored)
3. Pillow header parse; the format Pillow reports must match the sniffed one
   (-> 415); an unparsable header despite valid magic -> 422
4. width*height from the header, before any pixel decoding -> 413
5. full decode (no LOAD_TRUNCATED_IMAGES)  -> 422 on truncated/corrupt data
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image, ImageOps

__all__ = ["Limits", "PhotoRejected", "ProcessedPhoto", "sniff", "process"]


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 15 * 1024 * 1024  # upload size
    max_pixels: int = 40_000_000  # width*height, checked from the header BEFORE decoding
    max_side: int = 2048  # long edge of the served copy
    thumb_side: int = 320


class PhotoRejected(Exception):
    """Upload refused.  ``status``: 413 too large, 415 unsupported type, 422 corrupt."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ProcessedPhoto:
    mime: str  # of the ORIGINAL upload, sniffed by content
    sha256: str  # hex digest of the ORIGINAL uploaded bytes
    width: int  # of the served copy (upright)
    height: int
    served: bytes  # re-encoded, upright, metadata-free
    served_mime: str  # image/jpeg, or image/png when the picture has real transparency
    thumb: bytes  # JPEG, long edge <= thumb_side, upright
    exif_taken_at: datetime | None  # aware, UTC
    exif_lon: float | None
    exif_lat: float | None


JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"

# Pillow format names accepted for each sniffed MIME type.  Phone cameras
# (iPhone portrait mode, Samsung...) often write JPEGs carrying an MPF
# extension, which Pillow reports as "MPO": it is still a JPEG.
_PIL_FORMATS: dict[str, frozenset[str]] = {
    JPEG: frozenset({"JPEG", "MPO"}),
    PNG: frozenset({"PNG"}),
    WEBP: frozenset({"WEBP"}),
}
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP")  # only these Pillow plugins ever parse uploads

_JPEG_QUALITY = 85
_THUMB_QUALITY = 80

# EXIF tags
_TAG_EXIF_IFD = 0x8769
_TAG_GPS_IFD = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_TAG_SUBSEC_TIME_ORIGINAL = 0x9291
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


def sniff(data: bytes) -> str | None:
    """MIME type from magic bytes (JPEG, PNG, WebP only), else ``None``."""
    head = bytes(data[:12])
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def process(
    data: bytes, limits: Limits = Limits(), default_tz: str = "Asia/Shanghai"
) -> ProcessedPhoto:
    tz = _zone(default_tz)  # configuration error -> fail loudly even for EXIF-less photos
    data = bytes(data)

    if len(data) > limits.max_bytes:
        raise PhotoRejected(413, f"upload is {len(data)} bytes, limit is {limits.max_bytes}")
    mime = sniff(data)
    if mime is None:
        raise PhotoRejected(415, "not a JPEG, PNG or WebP image")

    img = _open_checked(data, mime, limits)
    try:
        exif = _read_exif(img)
        taken_at = _exif_datetime(exif, tz)
        lon, lat = _exif_lonlat(exif)

        upright = _upright(img)
        pixels = _normalise_mode(upright)
        pixels = _to_srgb(pixels, img.info.get("icc_profile"))
        pixels = _downscale(pixels, limits.max_side)
        clean = _strip(pixels)

        served, served_mime = _encode_served(clean)
        thumb = _encode_thumb(clean, limits.thumb_side)
    except PhotoRejected:
        raise
    except (MemoryError, Image.DecompressionBombError) as exc:
        raise PhotoRejected(413, f"image too large to process: {exc}") from exc
    except Exception as exc:  # anything Pillow chokes on while converting
        raise PhotoRejected(422, f"image could not be processed: {exc}") from exc
    finally:
        img.close()

    return ProcessedPhoto(
        mime=mime,
        sha256=hashlib.sha256(data).hexdigest(),
        width=clean.width,
        height=clean.height,
        served=served,
        served_mime=served_mime,
        thumb=thumb,
        exif_taken_at=taken_at,
        exif_lon=lon,
        exif_lat=lat,
    )


# --------------------------------------------------------------------------- decoding


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _open_checked(data: bytes, mime: str, limits: Limits) -> Image.Image:
    """Parse the header, enforce type and pixel limits, then decode fully."""
    try:
        img = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (2x Image.MAX_IMAGE_PIXELS; the warning only when
        # warnings are turned into errors) fired while reading the header.
        raise PhotoRejected(413, f"image dimensions too large: {exc}") from exc
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, struct.error, ...
        raise PhotoRejected(422, f"image header could not be parsed: {exc}") from exc

    try:
        if img.format not in _PIL_FORMATS[mime]:
            raise PhotoRejected(415, f"content is {img.format}, header says {mime}")
        width, height = img.size
        if width <= 0 or height <= 0:
            raise PhotoRejected(422, "image has no pixels")
        if width * height > limits.max_pixels:
            raise PhotoRejected(
                413, f"image is {width}x{height} pixels, limit is {limits.max_pixels}"
            )
        if img.format in ("JPEG", "MPO"):
            # Let libjpeg do a cheap DCT-domain downscale (1/2, 1/4, 1/8) as
            # long as both sides stay >= max_side; LANCZOS does the rest.
            img.draft(img.mode, (limits.max_side, limits.max_side))
        img.load()  # full decode; truncated data raises (LOAD_TRUNCATED_IMAGES untouched)
    except PhotoRejected:
        img.close()
        raise
    except (MemoryError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        img.close()
        raise PhotoRejected(413, f"image too large to decode: {exc}") from exc
    except Exception as exc:
        img.close()
        raise PhotoRejected(422, f"image data is corrupt or truncated: {exc}") from exc
    return img


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        # Malformed EXIF must not make an otherwise fine photo unusable.
        return img


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info


def _normalise_mode(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when the picture really uses transparency."""
    if img.mode.startswith("I") or img.mode == "F":
        # 16/32-bit greyscale: scale to 8 bits instead of clipping at 255.
        img = _high_bit_depth_to_l(img)
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        if rgba.getchannel("A").getextrema() != (255, 255):
            return rgba
        return rgba.convert("RGB")
    return img.convert("RGB")


def _high_bit_depth_to_l(img: Image.Image) -> Image.Image:
    lo, hi = img.convert("F").getextrema() if img.mode != "F" else img.getextrema()
    top = 65535 if hi > 255 else 255
    return img.convert("F").point(lambda v: v * (255.0 / top)).convert("L")


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from an embedded colour profile (e.g. iPhone Display P3) to sRGB,
    so that dropping the profile does not shift colours.  Best effort."""
    if not icc:
        return img
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(img, src, dst, outputMode=img.mode) or img
    except Exception:
        return img


def _downscale(img: Image.Image, max_side: int) -> Image.Image:
    w, h = img.size
    long_edge = max(w, h)
    if long_edge <= max_side:
        return img
    scale = max_side / long_edge
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if w >= h:
        size = (max_side, size[1])
    else:
        size = (size[0], max_side)
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _strip(img: Image.Image) -> Image.Image:
    """A brand-new image holding only the pixels: no info dict, so no EXIF,
    XMP, ICC profile, comments or text chunks can be carried into the output."""
    return Image.frombytes(img.mode, img.size, img.tobytes())


def _encode_served(img: Image.Image) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if img.mode == "RGBA":
        img.save(buf, "PNG", optimize=False, compress_level=6)
        return buf.getvalue(), PNG
    img.save(buf, "JPEG", quality=_JPEG_QUALITY, optimize=True, progressive=True)
    return buf.getvalue(), JPEG


def _encode_thumb(img: Image.Image, thumb_side: int) -> bytes:
    thumb = img.copy()
    thumb.thumbnail((thumb_side, thumb_side), Image.Resampling.LANCZOS)
    if thumb.mode == "RGBA":
        background = Image.new("RGB", thumb.size, (255, 255, 255))
        background.paste(thumb, mask=thumb.getchannel("A"))
        thumb = background
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- EXIF


def _read_exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:
        return None


def _sub_ifd(exif: Image.Exif | None, tag: int) -> dict[int, Any]:
    if exif is None:
        return {}
    try:
        ifd = exif.get_ifd(tag)
    except Exception:
        return {}
    return ifd if isinstance(ifd, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()


_DT_RE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _exif_datetime(exif: Image.Exif | None, default_tz: tzinfo) -> datetime | None:
    try:
        ifd = _sub_ifd(exif, _TAG_EXIF_IFD)
        raw = _text(ifd.get(_TAG_DATETIME_ORIGINAL))
        if not raw:
            return None
        m = _DT_RE.match(raw)
        if not m:
            return None
        naive = datetime(*(int(g) for g in m.groups()))  # ValueError for 0000:00:00 etc.

        subsec = _text(ifd.get(_TAG_SUBSEC_TIME_ORIGINAL))
        if subsec and subsec.isdigit():
            naive = naive.replace(microsecond=int(subsec[:6].ljust(6, "0")))

        tz: tzinfo = default_tz
        offset = _text(ifd.get(_TAG_OFFSET_TIME_ORIGINAL))
        om = _OFFSET_RE.match(offset) if offset else None
        if om:
            sign = -1 if om.group(1) == "-" else 1
            hours, minutes = int(om.group(2)), int(om.group(3))
            if hours <= 14 and minutes < 60:
                tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return naive.replace(tzinfo=tz).astimezone(timezone.utc)
    except Exception:
        return None


def _rational(value: Any) -> float | None:
    """float of an EXIF RATIONAL as Pillow returns it (IFDRational, a
    (num, den) tuple, int or float); None when unusable."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            num, den = value
            if not den:
                return None
            result = float(num) / float(den)
        elif isinstance(value, (bytes, str)):
            return None
        else:
            if getattr(value, "denominator", 1) == 0:
                return None
            result = float(value)
    except Exception:
        return None
    if not math.isfinite(result):
        return None
    return result


def _dms(value: Any, ref: Any, positive: str, negative: str, limit: float) -> float | None:
    ref_text = _text(ref)
    if not ref_text:
        return None
    ref_text = ref_text.upper()[:1]
    if ref_text not in (positive, negative):
        return None
    if isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = [value]
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [_rational(p) for p in parts]
    if any(n is None or n < 0 for n in numbers):
        return None
    numbers += [0.0] * (3 - len(numbers))
    degrees, minutes, seconds = numbers
    if minutes >= 60 or seconds >= 60:
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        return None
    return -decimal if ref_text == negative else decimal


def _exif_lonlat(exif: Image.Exif | None) -> tuple[float | None, float | None]:
    """Signed decimal degrees (lon, lat); (None, None) unless both are valid."""
    try:
        gps = _sub_ifd(exif, _TAG_GPS_IFD)
        if not gps:
            return None, None
        lat = _dms(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "N", "S", 90.0)
        lon = _dms(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), "E", "W", 180.0)
        if lat is None or lon is None:
            return None, None
        if lat == 0.0 and lon == 0.0:
            return None, None  # "null island": receiver had no fix
        return lon, lat
    except Exception:
        return None, None
