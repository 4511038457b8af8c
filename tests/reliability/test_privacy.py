"""Item 13: a citizen's phone, e-mail and name, and a photo's EXIF GPS position, never reach a role outside the
dispatch centre: every GET endpoint of the API (from the url_map) is crawled for the case as inspector, handler
and supervisor, plus the public Open311 door, and every answer is searched for the canaries."""
import io
import json
import uuid

from PIL import Image

from helpers import png

OPEN311 = "/open311/v2"
# EXIF position canaries: distinctive digits, far from anything else in the answers
EXIF_LAT, EXIF_LON = 30.0987654, 100.8765432


def _jpeg_with_gps(lat=EXIF_LAT, lon=EXIF_LON) -> bytes:
    def dms(v):
        d = int(v)
        m = int((v - d) * 60)
        return (d, m, round(((v - d) * 60 - m) * 60, 6))
    img = Image.new("RGB", (80, 60), (uuid.uuid4().int % 256, 90, 40))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _upload(api, case_id, kind, data):
    r = api.client.post(f"/api/v1/cases/{case_id}/photos", content_type="multipart/form-data",
                        data={"kind": kind, "file": (io.BytesIO(data), "p.jpg")},
                        headers=api._headers({"Idempotency-Key": str(uuid.uuid4())}))
    assert r.status_code == 201, r.get_json()
    return r


def _fill(rule, values):
    path = rule
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    return path


def test_citizen_contact_and_exif_position_stay_in_the_dispatch_centre(app, client, district, make_user, make_team):
    code = district["code"]
    tag = uuid.uuid4().hex[:10]
    canaries = {"phone": "+86 139 7315 2468", "email": f"canary.{tag}@example.org", "first_name": f"Canaryfirst{tag}",
                "last_name": f"Canarylast{tag}", "exif lat": f"{EXIF_LAT:.5f}"[:-1], "exif lon": f"{EXIF_LON:.5f}"[:-1]}
    team = make_team(kind="enforcement", area_codes=[code])
    admin = make_user("admin", scope=[code])
    dispatcher = make_user("dispatcher", scope=[code])
    readers = {"inspector": make_user("inspector", scope=[code]),
               "handler": make_user("handler", scope=[code], teams=[team]),
               "supervisor": make_user("supervisor", scope=[code])}
    key = admin.post("/api/v1/open311/keys", json={"name": f"app {tag}"}).get_json()["api_key"]
    lon, lat = district["point"](4)

    # the citizen's request through the public door
    r = client.post(f"{OPEN311}/requests.json", data={
        "api_key": key, "service_code": "0701", "lat": str(lat), "long": str(lon),
        "description": f"garbage {tag}", "phone": canaries["phone"], "email": canaries["email"],
        "first_name": canaries["first_name"], "last_name": canaries["last_name"]})
    assert r.status_code == 201, r.data[:500]
    posted = r.get_json()[0]
    found = dispatcher.get(f"/api/v1/cases?q={tag}").get_json()["items"]
    assert len(found) == 1, found
    case_id = found[0]["id"]

    # an inspector's own report, for a photo of theirs with a position
    hot = readers["inspector"].report(lon=lon, lat=lat, description=f"inspector {tag}")

    # the citizen's photo, with its GPS position, forwarded by the dispatcher: the dispatcher sees the position
    forwarded = _upload(dispatcher, case_id, "before", _jpeg_with_gps()).get_json()
    assert abs(forwarded["exif_lat"] - EXIF_LAT) < 1e-5 and abs(forwarded["exif_lon"] - EXIF_LON) < 1e-5, forwarded
    dispatcher_case = dispatcher.case(case_id)
    dispatcher.act(case_id, "register", version=dispatcher_case["version"])
    dispatcher.act(case_id, "dispatch", {"team_id": team})
    readers["handler"].act(case_id, "accept")
    # photos the other roles upload with a position: their own answer does not carry it either
    own_uploads = [_upload(readers["handler"], case_id, "after", _jpeg_with_gps()),
                   _upload(readers["inspector"], hot["id"], "before", _jpeg_with_gps())]
    after_photo = own_uploads[0].get_json()["id"]
    readers["handler"].act(case_id, "handle", {"note": f"cleaned {tag}", "photo_ids": [after_photo]})
    photo_ids = [p["id"] for p in dispatcher.get(f"/api/v1/cases/{case_id}/photos").get_json()["items"]]
    photo_ids += [p["id"] for p in dispatcher.get(f"/api/v1/cases/{hot['id']}/photos").get_json()["items"]]

    # the canaries are really stored: the dispatch centre can reach the EXIF position
    dispatcher_view = json.dumps(dispatcher.get(f"/api/v1/cases/{case_id}/photos").get_json())
    assert canaries["exif lat"] in dispatcher_view
    dispatcher_case = dispatcher.get(f"/api/v1/cases/{case_id}").data
    assert all(canaries[k].encode() in dispatcher_case for k in ("phone", "email", "first_name", "last_name"))

    answers = [(f"{who} POST photos", r.data) for who, r in zip(("handler", "inspector"), own_uploads)]
    rules = sorted({r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1") and "GET" in r.methods
                    and r.rule != "/api/v1/openapi.json"})
    statuses, unanswered = {}, []
    d = district["d"]
    queries = {"/api/v1/grids": f"?bbox={lon - 2 * d},{lat - 2 * d},{lon + 2 * d},{lat + 2 * d}",
               "/api/v1/grids/locate": f"?lon={lon}&lat={lat}",
               "/api/v1/map/grid-names": f"?codes={','.join(district['grids'])}",
               "/api/v1/patrols": "?date=2026-11-26", "/api/v1/patrols/coverage": "?date=2026-11-26",
               "/api/v1/exports/patrols.geojson": "?date=2026-11-26"}
    for role, api in readers.items():
        for case in (case_id, hot["id"]):
            values = {"case_id": case, "team_id": team, "user_id": api.id, "z": 14, "x": 13_000, "y": 6_900,
                      "key_id": 1, "patrol_id": 1, "webhook_id": 1,
                      "inspector_id": api.id}
            paths = []
            for rule in rules:
                if "<int:photo_id>" in rule:
                    paths += [_fill(rule, dict(values, photo_id=p)) + s for p in photo_ids for s in ("", "?size=thumb")]
                else:
                    paths.append(_fill(rule, values) + queries.get(rule, ""))
            paths += [f"/api/v1/cases?q={tag}", f"/api/v1/cases?per_page=500&status=in_progress",
                      f"/api/v1/kpis?group_by=inspector", f"/api/v1/cases/{case}/events?per_page=500"]
            for path in paths:
                r = api.get(path)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code < 500, (role, path, r.status_code)
                answers.append((f"{role} GET {path}", r.data))
                if r.status_code == 422:
                    unanswered.append((role, path))
                if path.startswith("/api/v1/photos/") and r.status_code == 200:
                    served = Image.open(io.BytesIO(r.data))
                    assert not served.getexif().get_ifd(0x8825), (role, path, "GPS IFD in the served image")
    for path in [f"{OPEN311}/requests.json", f"{OPEN311}/requests.xml", f"{OPEN311}/requests.json?service_code=0701",
                 f"{OPEN311}/requests/{posted.get('service_request_id')}.json",
                 f"{OPEN311}/requests/{posted.get('service_request_id')}.xml",
                 f"{OPEN311}/tokens/{posted.get('token')}.json", f"{OPEN311}/services.json", f"{OPEN311}/discovery.json"]:
        if "None" in path:
            continue
        r = client.get(path)
        assert r.status_code < 500, (path, r.status_code)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        answers.append((f"anonymous GET {path}", r.data))

    leaks = [(where, name) for where, body in answers for name, value in canaries.items()
             if value.encode() in body or value.encode() in body.replace(b"\\u0020", b" ")]
    print(f"\n[privacy] answers searched={len(answers)} (status counts {dict(sorted(statuses.items()))}) "
          f"canaries={len(canaries)} leaks={leaks}")
    assert len(answers) > 100
    assert unanswered == [], "give these endpoints the parameters they need, so their answers are searched"
    assert leaks == []
