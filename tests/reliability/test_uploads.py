"""Item 10: a corpus of hostile uploads against the product as deployed, with the workers' peak memory."""
import io
import struct
import uuid
import zlib

import requests
from PIL import Image

from _util import server_pids, vm_kib

PHP = b"<?php system($_GET['c']); ?>"


def _jpeg(size=(64, 48), color=(200, 60, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pixel_flood_png(side=40_000) -> bytes:
    """A valid 1-bit greyscale PNG of side×side pixels (1.6 gigapixels) that compresses to a few hundred KB."""
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)]
    idat = b"".join(parts) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def _polyglot() -> bytes:
    """A real JPEG carrying PHP in a comment segment and again after the end-of-image marker."""
    jpeg = _jpeg(color=(10, 120, 240))
    comment = b"\xff\xfe" + struct.pack(">H", len(PHP) + 2) + PHP
    return jpeg[:2] + comment + jpeg[2:] + PHP


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script><rect width="10" height="10"/></svg>')


def test_upload_corpus(live_server, district, make_user):
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    lon, lat = district["point"](3)
    case = inspector.report(lon=lon, lat=lat)
    auth = {"Authorization": f"Bearer {inspector.token}"}
    master, workers = server_pids(live_server)
    before = {pid: vm_kib(pid) for pid in workers}

    jpeg = _jpeg()
    corpus = [
        ("30 MB file", "big.jpg", "image/jpeg", jpeg[:-2] + b"\0" * (30 * 1024 * 1024) + b"\xff\xd9", 413),
        ("pixel flood PNG (40000x40000)", "flood.png", "image/png", _pixel_flood_png(), 413),
        ("truncated JPEG", "cut.jpg", "image/jpeg", _jpeg((640, 480))[:2000], 422),
        ("SVG", "x.svg", "image/svg+xml", SVG, 415),
        ("SVG named .png", "x.png", "image/png", SVG, 415),
        ("PHP named .jpg", "shell.jpg", "image/jpeg", PHP + b"\n", 415),
        ("PHP after JPEG magic", "shell2.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + PHP, 422),
        ("JPEG/PHP polyglot", "poly.jpg", "image/jpeg", _polyglot(), 201),
    ]
    results, served = [], {}
    for name, filename, mime, data, expected in corpus:
        r = requests.post(f"{live_server}/api/v1/cases/{case['id']}/photos", timeout=300,
                          headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
                          data={"kind": "before"}, files={"file": (filename, data, mime)})
        results.append((name, len(data), r.status_code, expected))
        if r.status_code >= 400:
            assert r.headers["Content-Type"].startswith("application/problem+json"), (name, r.headers)
        if r.status_code == 201:
            pid = r.json()["id"]
            for size in ("", "?size=thumb"):
                got = requests.get(f"{live_server}/api/v1/photos/{pid}{size}", headers=auth, timeout=60)
                assert got.status_code == 200, (name, size, got.status_code)
                served[f"{name}{size}"] = got.content
    after = {pid: vm_kib(pid) for pid in workers}
    rss = {pid: vm_kib(pid, "VmRSS") for pid in workers}

    print("\n[upload corpus]")
    for name, size, status, expected in results:
        print(f"  {name:32} {size:>10} B -> {status} (expected {expected})")
    for pid in workers:
        print(f"  worker {pid}: VmHWM before {before[pid] / 1024:.0f} MiB, after {after[pid] / 1024:.0f} MiB, "
              f"VmRSS now {rss[pid] / 1024:.0f} MiB")
    leaks = [k for k, body in served.items() if b"<?php" in body or b"system(" in body]
    print(f"  served copies checked: {len(served)}, containing PHP: {leaks}")

    assert [(n, s) for n, _, s, _ in results] == [(n, e) for n, _, _, _, e in corpus]
    assert len(served) == 2 and leaks == []
    assert all(body[:2] == b"\xff\xd8" or body[:8] == b"\x89PNG\r\n\x1a\n" for body in served.values())
    # a 1.6-gigapixel image was refused from its header: no worker came near decoding it (≈1.6 GB as L)
    assert max(after.values()) < 512 * 1024, after
