"""Item 5: reports with 3 photos each through a proxy that cuts connections at random points of the request
and of the response, the client retrying each with its Idempotency-Key: every case ends with exactly its 3
photos, the stored files are the server's re-encodes of what was sent, and no stored file is unreferenced."""
import hashlib
import io
import os
import queue
import random
import threading
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image

from _procs import CuttingProxy, Server, Tally, send_until_answered
from _util import scalar

PHOTOS_PER_CASE = 3
N_CLIENTS = 6


@pytest.fixture
def photo_server(app, database_url, tmp_path):
    """A server of its own, so its photo folder holds only this test's files."""
    storage = tmp_path / "photos"
    storage.mkdir()
    server = Server(database_url, str(storage), tmp_path).start()
    proxy = CuttingProxy(server.port)
    try:
        yield server, proxy, storage
    finally:
        proxy.close()
        server.stop()


def _photo(rng: random.Random) -> bytes:
    """A noisy JPEG of about 10–20 KB (so a cut often lands inside the upload)."""
    w, h = rng.choice([(96, 72), (120, 90), (72, 96)])
    img = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(70, 92))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> set[str]:
    """Every file under the storage root, temporary ones included."""
    out = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.add((Path(dirpath) / name).relative_to(root).as_posix())
    return out


def _run(app, photo_server, district, make_user, n_reports):
    from gridpatrol.photos.imaging import process

    server, proxy, storage = photo_server
    code = district["code"]
    inspector = make_user("inspector", scope=[code])
    run = uuid.uuid4().hex[:12]
    lon, lat = district["point"](6)
    rng = random.Random(11)
    photos = {(i, k): _photo(rng) for i in range(n_reports) for k in range(PHOTOS_PER_CASE)}
    todo = queue.Queue()
    for i in range(n_reports):
        todo.put(i)
    tally = Tally()
    cases, uploaded, failures = {}, {}, []

    def client():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                body = {"category_code": "0701", "description": f"cuts-{run}-{i:04d}", "lon": lon, "lat": lat,
                        "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00"}
                r, _ = send_until_answered([proxy.base], "/api/v1/reports", str(uuid.uuid4()), inspector.token,
                                           tally, json_body=body, timeout=60)
                assert r.status_code == 201, (r.status_code, r.text[:300])
                cases[i] = r.json()["id"]
                for k in range(PHOTOS_PER_CASE):
                    r, _ = send_until_answered(
                        [proxy.base], f"/api/v1/cases/{cases[i]}/photos", str(uuid.uuid4()), inspector.token, tally,
                        data={"kind": "before"}, files={"file": (f"p{k}.jpg", photos[(i, k)], "image/jpeg")},
                        timeout=60)
                    assert r.status_code == 201, (r.status_code, r.text[:300])
                    assert r.headers.get("Content-Type") == "application/json", (r.headers, r.content[:200])
                    uploaded[(i, k)] = r.json()
            except Exception as exc:  # noqa: BLE001  (every failure is reported by the test)
                failures.append((i, repr(exc)))

    threads = [threading.Thread(target=client) for _ in range(N_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ids = list(cases.values())
    rows = _rows(app, ids)
    per_case = {}
    for row in rows:
        per_case[row.case_id] = per_case.get(row.case_id, 0) + 1
    by_id = {row.id: row for row in rows}
    reported_sha_ok = stored_ok = thumb_ok = 0
    for (i, k), answer in uploaded.items():
        sent = photos[(i, k)]
        row = by_id.get(answer["id"])
        if row is None:
            continue
        reported_sha_ok += answer["sha256"] == row.sha256 == _sha(sent) and row.case_id == cases[i]
        expected = process(sent)  # the server's re-encode of the bytes sent, computed here the same way
        stored_ok += _sha((storage / row.storage_key).read_bytes()) == _sha(expected.served)
        thumb_ok += _sha((storage / row.thumb_key).read_bytes()) == _sha(expected.thumb)
    served_ok = sum(requests.get(f"{server.base}/api/v1/photos/{uploaded[(i, 0)]['id']}", timeout=60,
                                 headers={"Authorization": f"Bearer {inspector.token}"}).content
                    == process(photos[(i, 0)]).served for i in range(0, n_reports, 10) if (i, 0) in uploaded)
    files = _files(storage)
    referenced = _referenced(app, files)
    orphans = sorted(files - referenced)
    n_photos = n_reports * PHOTOS_PER_CASE
    print(f"\n[photo cuts] {n_reports} reports x {PHOTOS_PER_CASE} photos through a cutting proxy: "
          f"connections={proxy.counts['connections']} cut mid-request={proxy.counts['cut_request']} "
          f"cut mid-response={proxy.counts['cut_response']} (planned cuts past the end: "
          f"{proxy.counts['planned_cut_not_reached']}) | client: connection_errors={tally.connection_errors} "
          f"answers={dict(sorted(tally.answers.items()))} | cases={len(cases)} photos={len(rows)} "
          f"cases with exactly {PHOTOS_PER_CASE}={sum(n == PHOTOS_PER_CASE for n in per_case.values())} "
          f"sha256 of original as sent={reported_sha_ok}/{n_photos} stored file = re-encode={stored_ok}/{n_photos} "
          f"thumb={thumb_ok}/{n_photos} served bytes checked={served_ok} | files={len(files)} orphans={len(orphans)} "
          f"{orphans[:5]} failures={failures[:3]}")
    assert failures == []
    assert proxy.counts["cut_request"] > 0 and proxy.counts["cut_response"] > 0
    assert len(cases) == n_reports
    assert scalar(app, "SELECT count(*) FROM cases WHERE description LIKE :p", p=f"cuts-{run}-%") == n_reports
    assert len(rows) == n_photos
    assert sorted(per_case.values()) == [PHOTOS_PER_CASE] * n_reports
    assert len({row.sha256 for row in rows}) == n_photos
    assert reported_sha_ok == stored_ok == thumb_ok == n_photos
    assert served_ok == len(range(0, n_reports, 10))
    assert tally.count(lambda s: s >= 500) == 0, tally.answers
    assert orphans == []
    assert len(files) == 2 * n_photos


def _rows(app, case_ids):
    from sqlalchemy import text

    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text("SELECT id, case_id, sha256, storage_key, thumb_key FROM photos "
                                       "WHERE case_id = ANY(:ids)"), {"ids": case_ids}).all()


def _referenced(app, files) -> set[str]:
    from sqlalchemy import text

    from gridpatrol.extensions import db
    with app.app_context():
        return {k for (k,) in db.session.execute(text(
            "SELECT storage_key FROM photos WHERE storage_key = ANY(:f) "
            "UNION SELECT thumb_key FROM photos WHERE thumb_key = ANY(:f)"), {"f": sorted(files)})}


def test_photo_cuts_200_reports(app, photo_server, district, make_user):
    """The item at full size (600 uploads): well under a minute, so in the default run."""
    _run(app, photo_server, district, make_user, 200)
