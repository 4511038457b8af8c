#!/usr/bin/env python3
"""Walk the happy path of the HTTP contract (the shared api-contract.md) against a running server.

    python tests/contract/smoke.py --base http://127.0.0.1:5000 --admin USER:PASSWORD

The admin's scope must include district 990101. The script imports a 3×3 block of grids for
that district, makes two teams and a user per role, and takes one report through the whole loop
(register → dispatch → accept → handle → verify_fail → accept → handle → verify_pass), then reads
the KPIs. It needs only `requests`. It prints each step and exits non-zero at the first
departure from the contract. It is a smoke test, not the whole contract: your own tests cover
errors, races and scope.
"""
import argparse
import io
import json
import struct
import sys
import uuid
import zlib

import requests

DISTRICT = "990101"
PASSWORD = "Smoke-pass-2026!"


def tiny_png():
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes([200, 40, 40]) * 32 for _ in range(32))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def grids():
    feats, d = [], 0.0015
    for j in range(3):
        for i in range(3):
            x0, y1 = 121.40 + i * d, 31.30 - j * d
            code = f"{DISTRICT}001001{j * 3 + i + 1:03d}"
            ring = [[x0, y1 - d], [x0 + d, y1 - d], [x0 + d, y1], [x0, y1], [x0, y1 - d]]
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"code": code, "name": f"smoke {code[-3:]}"}})
    return {"type": "FeatureCollection", "features": feats}


class Api:
    def __init__(self, base, token=None):
        self.base, self.token = base.rstrip("/"), token

    def call(self, method, path, expect, **kw):
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        r = requests.request(method, self.base + path, headers=headers, timeout=60, **kw)
        ok = r.status_code in (expect if isinstance(expect, tuple) else (expect,))
        print(f"{'ok ' if ok else 'BAD'} {method} {path} → {r.status_code}")
        if not ok:
            print(r.text[:1500])
            sys.exit(1)
        return r.json() if r.content and "json" in r.headers.get("Content-Type", "") else r

    def login(self, username, password=PASSWORD):
        return Api(self.base, self.call("POST", "/api/v1/auth/token", 200,
                                        json={"username": username, "password": password})["access_token"])

    def act(self, case_id, action, body=None):
        case = self.call("GET", f"/api/v1/cases/{case_id}", 200)
        return self.call("POST", f"/api/v1/cases/{case_id}/actions/{action}", 200, json=body or {},
                         headers={"If-Match": f'"{case["version"]}"'})

    def photo(self, case_id, kind):
        return self.call("POST", f"/api/v1/cases/{case_id}/photos", 201, data={"kind": kind},
                         files={"file": ("p.png", tiny_png(), "image/png")},
                         headers={"Idempotency-Key": str(uuid.uuid4())})["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:5000")
    ap.add_argument("--admin", required=True, help="USER:PASSWORD of an admin whose scope holds 990101")
    a = ap.parse_args()
    user, pw = a.admin.split(":", 1)
    anon = Api(a.base)
    anon.call("GET", "/healthz", 200)
    anon.call("GET", "/api/v1/openapi.json", 200)
    admin = anon.login(user, pw)
    admin.call("POST", "/api/v1/grids/import", 200, data={"code_field": "code", "name_field": "name"},
               files={"file": ("g.geojson", json.dumps(grids()), "application/geo+json")})
    cats = admin.call("GET", "/api/v1/categories", 200)["items"]
    cat = cats[0]["code"]
    tag = uuid.uuid4().hex[:6]
    team = admin.call("POST", "/api/v1/teams", 201, json={"name": f"smoke enforcement {tag}", "kind": "enforcement",
                                                         "agencies": ["城管"], "area_codes": [DISTRICT], "grid_codes": [],
                                                         "category_codes": [c["code"] for c in cats]})
    users = {}
    for role, teams in (("inspector", []), ("dispatcher", []), ("handler", [team["id"]]), ("supervisor", [])):
        for n in ("", "2"):
            name = f"smoke_{role}{n}_{tag}"
            admin.call("POST", "/api/v1/users", 201, json={"username": name, "password": PASSWORD, "display_name": name,
                                                          "roles": [role], "scope": [DISTRICT], "team_ids": teams})
            users[role + n] = anon.login(name)
    insp, insp2, disp, hand, sup = (users[k] for k in ("inspector", "inspector2", "dispatcher", "handler", "supervisor"))
    loc = insp.call("GET", "/api/v1/grids/locate", 200, params={"lon": 121.4022, "lat": 31.2990})
    # the point (121.4022, 31.2990) lies in the lattice's second column (x 121.4015–121.4030) of its
    # first row (y 31.2985–31.3000): grid 002 (the shared copy of this script expects 001)
    assert loc["grid"]["code"] == f"{DISTRICT}001001002", loc
    body = {"category_code": cat, "description": "smoke: exposed garbage", "lon": 121.4022, "lat": 31.2990,
            "accuracy_m": 5, "observed_at": "2026-11-26T09:00:00+08:00", "urgency": "B"}
    key = str(uuid.uuid4())
    case = insp.call("POST", "/api/v1/reports", 201, json=body, headers={"Idempotency-Key": key})
    again = insp.call("POST", "/api/v1/reports", (200, 201), json=body, headers={"Idempotency-Key": key})
    assert again["id"] == case["id"], "a replayed idempotency key made a second case"
    cid = case["id"]
    insp.photo(cid, "before")
    disp.act(cid, "register", {"category_code": cat, "urgency": "B"})
    disp.call("GET", f"/api/v1/cases/{cid}/dispatch-suggestions", 200)
    disp.act(cid, "dispatch", {"team_id": team["id"]})
    for round_ in (1, 2):
        hand.act(cid, "accept")
        hand.act(cid, "handle", {"note": f"handled, round {round_}", "photo_ids": [hand.photo(cid, "after")]})
        if round_ == 1:
            c = insp2.act(cid, "verify_fail", {"reason": "still there", "photo_ids": [insp2.photo(cid, "verification")]})
            assert c["status"] == "dispatched" and c["rework_count"] == 1, c
    c = insp2.act(cid, "verify_pass", {"photo_ids": [insp2.photo(cid, "verification")], "lon": 121.4022,
                                       "lat": 31.2990, "accuracy_m": 5})
    assert c["status"] == "closed", c
    sup.call("GET", f"/api/v1/cases/{cid}/events", 200)
    rows = sup.call("GET", "/api/v1/kpis", 200, params={"group_by": "team"})["rows"]
    row = next(r for r in rows if str(r["key"]) == str(team["id"]))
    assert row["closed"] >= 1 and row["reworked"] >= 1, row
    patrol = insp.call("POST", "/api/v1/patrols", 201, json={})
    insp.call("POST", f"/api/v1/patrols/{patrol['id']}/points", 200, json={"seq": 1, "points": [
        {"lon": 121.4005, "lat": 31.2995, "accuracy_m": 5, "recorded_at": "2026-11-26T09:00:00+08:00"},
        {"lon": 121.4040, "lat": 31.2995, "accuracy_m": 5, "recorded_at": "2026-11-26T09:02:00+08:00"}]})
    end = insp.call("POST", f"/api/v1/patrols/{patrol['id']}/end", 200, json={})
    assert len(end["grid_codes"]) >= 2, end
    print("smoke: the happy path of the contract holds")


if __name__ == "__main__":
    main()
