"""Vector tiles of the map (ST_AsMVT): grids with their case counts under the map's filters, square
bins when zoomed out, case points and clusters; scope, errors, ETag; the grids kept per tile
(grid_tile_cache) and their invalidation; and the map's lookups.

The tiles are read back with a small Mapbox Vector Tile decoder below (protocol buffers by hand),
so the test checks what a client gets: layers, properties and where the geometry lands.
"""
import math
import random
import struct

import pytest
from sqlalchemy import text

from gridpatrol.cases.models import OPEN_SQL
from gridpatrol.cases.states import OPEN

EXTENT = 4096


# ------------------------------------------------------------------ a small MVT reader

def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, value


def _packed(buf):
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _value(buf):
    for field, v in _fields(buf):
        if field == 1:
            return bytes(v).decode()
        if field == 2:
            return struct.unpack("<f", v)[0]
        if field == 3:
            return struct.unpack("<d", v)[0]
        if field in (4, 5):
            return v
        if field == 6:
            return (v >> 1) ^ -(v & 1)
        if field == 7:
            return bool(v)
    return None


def _geometry(cmds):
    parts, x, y, i = [], 0, 0, 0
    while i < len(cmds):
        cmd, count = cmds[i] & 7, cmds[i] >> 3
        i += 1
        if cmd in (1, 2):
            for _ in range(count):
                dx, dy = cmds[i], cmds[i + 1]
                i += 2
                x += (dx >> 1) ^ -(dx & 1)
                y += (dy >> 1) ^ -(dy & 1)
                if cmd == 1:
                    parts.append([])
                parts[-1].append((x, y))
    return parts


def decode(data: bytes) -> dict:
    """{layer name: [{"id", "type", "props", "parts"}]} (parts: lists of (x, y) in tile units)."""
    layers = {}
    for field, layer in _fields(data):
        if field != 3:
            continue
        name, keys, values, raw = None, [], [], []
        for f, v in _fields(layer):
            if f == 1:
                name = bytes(v).decode()
            elif f == 2:
                raw.append(v)
            elif f == 3:
                keys.append(bytes(v).decode())
            elif f == 4:
                values.append(_value(v))
            elif f == 5:
                assert v == EXTENT
        features = []
        for fb in raw:
            feat = {"id": None, "props": {}, "type": None, "parts": []}
            for f, v in _fields(fb):
                if f == 1:
                    feat["id"] = v
                elif f == 2:
                    tags = _packed(v)
                    feat["props"].update({keys[k]: values[val] for k, val in zip(tags[::2], tags[1::2])})
                elif f == 3:
                    feat["type"] = v
                elif f == 4:
                    feat["parts"] = _geometry(_packed(v))
            features.append(feat)
        layers[name] = features
    return layers


# ------------------------------------------------------------------ tile arithmetic

def tile_xy(lon, lat, z):
    """Where a point is at zoom z, in tiles (fractions within the tile)."""
    n = 2 ** z
    return (lon + 180) / 360 * n, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n


def tile_of(lon, lat, z):
    x, y = tile_xy(lon, lat, z)
    return int(x), int(y)


def lonlat_of(z, x, y, ux, uy):
    """A point of tile (z, x, y) in tile units → lon, lat."""
    n = 2 ** z
    fx, fy = x + ux / EXTENT, y + uy / EXTENT
    lon = fx / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * fy / n))))
    return lon, lat


def tiles_over(bbox, z):
    x0, y1 = tile_of(bbox[0], bbox[1], z)
    x1, y0 = tile_of(bbox[2], bbox[3], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def district_bbox(district, margin=0.0002):
    lons = [district["point"](i)[0] for i in range(9)]
    lats = [district["point"](i)[1] for i in range(9)]
    d = district["d"] / 2 + margin
    return (min(lons) - d, min(lats) - d, max(lons) + d, max(lats) + d)


def get_tile(api, kind, z, x, y, query="", expect=200):
    r = api.get(f"/api/v1/tiles/{kind}/{z}/{x}/{y}.mvt{query}")
    assert r.status_code == expect, (r.status_code, r.get_data()[:300])
    return r


def layer_over(api, kind, layer, bbox, z, query=""):
    """The features of one layer in every tile over a bbox, with their tile."""
    out = []
    for z_, x, y in tiles_over(bbox, z):
        r = get_tile(api, kind, z_, x, y, query)
        assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
        for f in decode(r.get_data()).get(layer, []):
            f["tile"] = (z_, x, y)
            out.append(f)
    return out


def code_of(feature) -> str:
    """A grid feature's code: its feature id, the 15-digit code as a number."""
    return f"{feature['id']:015d}"


def grids_over(api, district, z=15, query=""):
    by_code = {}
    for f in layer_over(api, "grids", "grids", district_bbox(district), z, query):
        by_code.setdefault(code_of(f), f)
    return {c: f for c, f in by_code.items() if c.startswith(district["code"])}


def _sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        db.session.execute(text(statement), params)
        db.session.commit()


@pytest.fixture
def map_world(make_user, make_team, district):
    """A district with: grid 0 — two open cases (one overdue), grid 4 — one case of another category,
    grid 8 — one rejected case. A dispatcher and a supervisor of the district."""
    scope = [district["code"]]
    inspector = make_user("inspector", scope=scope)
    dispatcher = make_user("dispatcher", scope=scope)
    team = make_team(area_codes=scope)
    a = inspector.report(lon=district["point"](0)[0], lat=district["point"](0)[1], category_code="0701")
    b = inspector.report(lon=district["point"](0)[0] + 0.0001, lat=district["point"](0)[1], category_code="0701")
    c = inspector.report(lon=district["point"](4)[0], lat=district["point"](4)[1], category_code="0101")
    d = inspector.report(lon=district["point"](8)[0], lat=district["point"](8)[1], category_code="0701")
    dispatcher.act(d["id"], "reject", {"reason": "no"})
    dispatcher.act(c["id"], "register", {})
    dispatcher.act(c["id"], "dispatch", {"team_id": team})
    return {"district": district, "inspector": inspector, "dispatcher": dispatcher, "team": team,
            "supervisor": make_user("supervisor", scope=scope), "cases": (a, b, c, d)}


def test_grid_tiles_hold_every_grid_with_its_open_and_overdue_cases(app, map_world):
    district, (a, b, c, d) = map_world["district"], map_world["cases"]
    _sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = :id", id=a["id"])
    grids = grids_over(map_world["supervisor"], district)
    assert sorted(grids) == district["grids"]
    counts = {code: (f["props"]["cases"], f["props"]["overdue"]) for code, f in grids.items()}
    g = district["grids"]
    assert counts[g[0]] == (2, 1)
    assert counts[g[4]] == (1, 0)
    assert counts[g[8]] == (0, 0), "a rejected case is not open"
    assert all(counts[c] == (0, 0) for c in g if c not in (g[0], g[4], g[8]))
    assert all(f["type"] == 3 for f in grids.values())
    assert set(grids[g[0]]["props"]) == {"cases", "overdue"}, "no code property (it is the id) and no name below z16"


def test_grid_names_come_from_zoom_16(map_world):
    district, g = map_world["district"], map_world["district"]["grids"]
    assert "name" not in grids_over(map_world["supervisor"], district, z=14)[g[0]]["props"]
    named = grids_over(map_world["supervisor"], district, z=16)
    assert {code: f["props"]["name"] for code, f in named.items()} == {code: f"g{i + 1}" for i, code in enumerate(g)}


def test_grid_polygons_land_where_the_grids_are(map_world):
    district = map_world["district"]
    for i, (code, f) in enumerate(sorted(grids_over(map_world["supervisor"], district, z=16).items())):
        z, x, y = f["tile"]
        ring = f["parts"][0]
        lon = sum(lonlat_of(z, x, y, ux, uy)[0] for ux, uy in ring[:-1]) / (len(ring) - 1)
        lat = sum(lonlat_of(z, x, y, ux, uy)[1] for ux, uy in ring[:-1]) / (len(ring) - 1)
        want_lon, want_lat = district["point"](i)
        # a polygon cut at the tile's buffer edge has its centre moved, never out of its grid
        assert abs(lon - want_lon) < district["d"] / 2 and abs(lat - want_lat) < district["d"] / 2, (code, lon, lat)


def test_a_moved_grid_is_drawn_where_it_now_is(make_user, district):
    """The tiles are cut from the polygon in web mercator the database keeps beside the WGS 84 one: a
    grid imported again with another boundary is drawn at its new place."""
    import io
    import json
    admin = make_user("admin", scope=[district["code"]])
    code, d = district["grids"][0], district["d"]
    lon, lat = district["point"](0)
    west = lon - 3 * d  # clear of the block
    ring = [[west - d / 2, lat - d / 2], [west + d / 2, lat - d / 2], [west + d / 2, lat + d / 2],
            [west - d / 2, lat + d / 2], [west - d / 2, lat - d / 2]]
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": code, "name": "g1"},
                                                      "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    r = admin.post("/api/v1/grids/import", data={"file": (io.BytesIO(json.dumps(doc).encode()), "moved.geojson")},
                   content_type="multipart/form-data")
    assert r.status_code == 200 and r.get_json()["updated"] == 1, r.get_json()
    around = (west - d, lat - d, lon + d, lat + d)
    drawn = [f for f in layer_over(admin, "grids", "grids", around, 16) if code_of(f) == code]
    assert drawn
    for f in drawn:
        z, x, y = f["tile"]
        ring = f["parts"][0][:-1]
        at = [lonlat_of(z, x, y, ux, uy) for ux, uy in ring]
        assert all(abs(p[0] - west) <= d / 2 + 2e-6 and abs(p[1] - lat) <= d / 2 + 2e-6 for p in at), at


@pytest.mark.parametrize("query, expected", [
    ("?category=0701", {0: (2, 0), 4: (0, 0), 8: (0, 0)}),
    ("?category=0101", {0: (0, 0), 4: (1, 0), 8: (0, 0)}),
    ("?status=rejected", {0: (0, 0), 4: (0, 0), 8: (1, 0)}),
    ("?status=reported,dispatched,rejected", {0: (2, 0), 4: (1, 0), 8: (1, 0)}),
    ("?escalated=true", {0: (0, 0), 4: (0, 0), 8: (0, 0)}),
])
def test_grid_counts_follow_the_map_filters(map_world, query, expected):
    grids = grids_over(map_world["dispatcher"], map_world["district"], query=query)
    g = map_world["district"]["grids"]
    assert {i: (grids[g[i]]["props"]["cases"], grids[g[i]]["props"]["overdue"]) for i in expected} == expected


def test_team_and_period_filters(map_world):
    world = map_world
    g = world["district"]["grids"]
    by_team = grids_over(world["dispatcher"], world["district"], query=f"?team={world['team']}")
    assert [by_team[g[i]]["props"]["cases"] for i in (0, 4)] == [0, 1]
    future = grids_over(world["dispatcher"], world["district"], query="?from=2099-01-01T00:00:00%2B08:00")
    assert sum(f["props"]["cases"] for f in future.values()) == 0
    past = grids_over(world["dispatcher"], world["district"], query="?to=2099-01-01T00:00:00%2B08:00")
    assert sum(f["props"]["cases"] for f in past.values()) == 3


def test_overdue_filter_keeps_only_overdue_cases(app, map_world):
    a = map_world["cases"][0]
    _sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = :id", id=a["id"])
    grids = grids_over(map_world["dispatcher"], map_world["district"], query="?overdue=true")
    assert sum(f["props"]["cases"] for f in grids.values()) == 1
    assert grids[map_world["district"]["grids"][0]]["props"]["overdue"] == 1


def test_zoomed_out_grids_are_summed_into_bins(map_world):
    district = map_world["district"]
    bins = layer_over(map_world["supervisor"], "grids", "bins", district_bbox(district), 8)
    # the supervisor's scope is this district: its 3×3 block is under one or a few 8-pixel bins
    assert sum(b["props"]["grids"] for b in bins) == 9
    assert sum(b["props"]["cases"] for b in bins) == 3
    assert all(b["type"] == 3 for b in bins)
    z = 8
    x, y = tile_of(*district["point"](4), z)
    r = get_tile(map_world["supervisor"], "grids", z, x, y)
    assert "grids" not in decode(r.get_data()), "no single grids at zoom 8"


def test_case_points_from_zoom_16(map_world):
    world = map_world
    a, b, c, d = world["cases"]
    points = layer_over(world["dispatcher"], "cases", "cases", district_bbox(world["district"]), 17)
    ids = sorted(p["props"]["id"] for p in points)
    assert ids == sorted([a["id"], b["id"], c["id"]])
    p = next(p for p in points if p["props"]["id"] == c["id"])
    assert p["type"] == 1
    assert p["props"]["status"] == "dispatched" and p["props"]["category_code"] == "0101"
    assert p["props"]["number"] == c["number"]
    z, x, y = p["tile"]
    lon, lat = lonlat_of(z, x, y, *p["parts"][0][0])
    want = world["district"]["point"](4)
    assert abs(lon - want[0]) < 1e-4 and abs(lat - want[1]) < 1e-4


def test_case_clusters_below_zoom_16_count_every_case(map_world):
    world = map_world
    clusters = layer_over(world["dispatcher"], "cases", "cases", district_bbox(world["district"]), 12)
    assert sum(c["props"]["count"] for c in clusters) == 3
    single = [c for c in clusters if c["props"]["count"] == 1]
    assert all("id" in c["props"] and "number" in c["props"] for c in single)
    assert all("id" not in c["props"] for c in clusters if c["props"]["count"] > 1)


@pytest.mark.parametrize("status, tested", [(None, False), (["reported", "dispatched"], True),
                                            (sorted(OPEN), False), (["closed", "reported"], True)])
def test_the_map_tests_a_cases_status_only_when_not_every_open_state_is_asked(status, tested):
    """For every open state (the default) the map's filter is the open states in literals alone, which the
    partial indexes on open cases imply: the tiles' statements, planned once for all tiles (a generic
    plan, where a parameter is not known), then test no entry's status as they read it. Otherwise the
    states asked are a parameter, tested for each case (and still said in literals when all are open,
    so those indexes apply). The clusters' counts under each such filter: the tests above."""
    from gridpatrol.maps.services import case_filters
    sql, params = case_filters({"status": status} if status else {}, ["310101"])
    assert ("f_status" in params and ":f_status" in sql) == tested
    assert (OPEN_SQL in sql) == (set(status or OPEN) <= OPEN)
    if tested:
        assert sorted(params["f_status"]) == sorted(status)


def _cell(lon, lat, z):
    """The tile and the cluster cell (CLUSTER_PX = 64 of 256 pixels: 4 × 4 cells) a point falls in."""
    fx, fy = tile_xy(lon, lat, z)
    return (z, int(fx), int(fy)), (int((fx % 1) * 4), int((fy % 1) * 4))


def test_a_points_tile_key_is_in_the_key_range_of_its_tile_at_every_zoom(app):
    from gridpatrol.extensions import db
    from gridpatrol.maps.services import tile_key_range
    rnd = random.Random(19)
    points = [(rnd.uniform(-179.9, 179.9), rnd.uniform(-85, 85)) for _ in range(200)]
    points += [(rnd.uniform(121.3, 121.6), rnd.uniform(31.1, 31.3)) for _ in range(200)]
    with app.app_context():
        keys = db.session.execute(text("SELECT tile_key(lon, lat) FROM unnest(CAST(:lon AS float8[]),"
                                       " CAST(:lat AS float8[])) AS p(lon, lat)"),
                                  {"lon": [p[0] for p in points], "lat": [p[1] for p in points]}).scalars().all()
        # beyond web mercator's latitudes and at the date line: held to the map's edge, not an error
        edge = db.session.execute(text("SELECT tile_key(-180, 90), tile_key(180, -90), tile_key(0, 0)")).one()
    for (lon, lat), key in zip(points, keys):
        for z in (0, 1, 5, 12, 14, 15, 16, 22):
            lo, hi = tile_key_range(z, *tile_of(lon, lat, z))
            assert lo <= key < hi, (lon, lat, z)
            # and in no neighbour's range
            x, y = tile_of(lon, lat, z)
            for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                if 0 <= x + dx < 2 ** z and 0 <= y + dy < 2 ** z:
                    nlo, nhi = tile_key_range(z, x + dx, y + dy)
                    assert not nlo <= key < nhi
    assert edge[0] == 0 and edge[1] == 4 ** 24 - 1
    assert tile_key_range(1, 1, 1)[0] <= edge[2] < tile_key_range(1, 1, 1)[1]  # (0, 0) south-east of the middle


@pytest.mark.parametrize("status", [None, "rejected,reported", "dispatched"])
@pytest.mark.parametrize("z", [12, 14, 15])
def test_each_cluster_holds_the_cases_of_its_cell(app, map_world, z, status):
    world = map_world
    district, (a, b, c, d) = world["district"], world["cases"]
    x0, y0 = district["point"](0)
    dd = district["d"]
    where = {a["id"]: district["point"](0), b["id"]: (x0 + 0.0001, y0), c["id"]: district["point"](4),
             d["id"]: district["point"](8)}
    for dx, dy in [(0.3, -0.2), (1.2, -1.1), (2.4, -2.6), (1.9, -0.4), (0.2, -2.2)]:
        lon, lat = x0 - dd / 2 + dx * dd, y0 + dd / 2 + dy * dd
        where[world["inspector"].report(lon=lon, lat=lat)["id"]] = (lon, lat)
    # a suspended case past its deadline is not overdue (its clock stopped): only `a` is
    paused = world["inspector"].report(lon=x0 + 0.0003, lat=y0 - 0.0002)["id"]
    where[paused] = (x0 + 0.0003, y0 - 0.0002)
    world["dispatcher"].act(paused, "register")
    world["dispatcher"].act(paused, "suspend", {"reason": "waiting for the owner"})
    _sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 hour' WHERE id = ANY(:ids)",
         ids=[a["id"], paused])
    statuses = (status or "registered,reported,dispatched,in_progress,handled,returned,suspended").split(",")
    listed = world["dispatcher"].get("/api/v1/cases", query_string={"per_page": 100}).get_json()["items"]
    shown = {case["id"]: case for case in listed if case["status"] in statuses}
    cells = {}
    for case_id in shown:
        cells.setdefault(_cell(*where[case_id], z), []).append(case_id)

    def units(tile, lon, lat):  # a point in tile units
        fx, fy = tile_xy(lon, lat, z)
        return (fx - tile[1]) * EXTENT, (fy - tile[2]) * EXTENT

    clusters = layer_over(world["dispatcher"], "cases", "cases", district_bbox(district), z,
                          f"?status={status}" if status else "")
    assert len(clusters) == len(cells) and sum(f["props"]["count"] for f in clusters) == len(shown) > 0
    for key, ids in cells.items():
        tile = key[0]
        # the cluster of a cell sits at the mean of its cases (to a tile unit, ST_AsMVTGeom's rounding)
        mx, my = units(tile, sum(where[i][0] for i in ids) / len(ids), sum(where[i][1] for i in ids) / len(ids))
        near = [f for f in clusters if f["tile"] == tile and abs(f["parts"][0][0][0] - mx) <= 1.5
                and abs(f["parts"][0][0][1] - my) <= 1.5]
        assert len(near) == 1, (key, ids, mx, my)
        props = near[0]["props"]
        assert props["count"] == len(ids), key
        assert props["overdue"] == sum(i == a["id"] and "reported" in statuses for i in ids), key
        if len(ids) == 1:
            case = shown[ids[0]]
            assert (props["id"], props["number"], props["status"], props["category_code"]) == (
                case["id"], case["number"], case["status"], case["category_code"])
        else:
            assert "id" not in props and "number" not in props
    if status is None:  # the grid tile counts the same way
        grids = grids_over(world["dispatcher"], district)
        assert sum(g["props"]["overdue"] for g in grids.values()) == 1
        assert sum(g["props"]["cases"] for g in grids.values()) == len(shown)


def test_tiles_are_cut_to_the_scope(make_user, map_world):
    outsider = make_user("supervisor", scope=["310199"])
    grids = grids_over(outsider, map_world["district"])
    assert grids == {}
    points = layer_over(outsider, "cases", "cases", district_bbox(map_world["district"]), 17)
    assert points == []
    assert layer_over(outsider, "cases", "cases", district_bbox(map_world["district"]), 9) == []
    assert layer_over(outsider, "grids", "bins", district_bbox(map_world["district"]), 9) == []


def test_a_community_scope_sees_only_its_grids(make_user, app, district):
    # grids of one community: the district fixture puts all nine in community 001
    user = make_user("dispatcher", scope=[district["code"] + "001001"])
    assert len(grids_over(user, district)) == 9
    other = make_user("dispatcher", scope=[district["code"] + "001002"])
    assert grids_over(other, district) == {}


def test_tile_errors(map_world, anon):
    api = map_world["dispatcher"]
    get_tile(api, "grids", 3, 8, 0, expect=404)
    get_tile(api, "grids", 23, 0, 0, expect=404)
    get_tile(api, "cases", 5, 0, 40, expect=404)
    get_tile(api, "grids", 14, 1, 1, "?status=nonsense", expect=422)
    get_tile(api, "grids", 14, 1, 1, "?category=12", expect=422)
    get_tile(api, "grids", 14, 1, 1, "?team=0", expect=422)
    get_tile(anon, "grids", 14, 1, 1, expect=401)
    r = get_tile(api, "grids", 14, 1, 1)
    assert r.get_data() == b"" and r.status_code == 200


def test_an_unchanged_tile_is_a_304_and_a_changed_one_is_not(map_world):
    world = map_world
    z = 12
    x, y = tile_of(*world["district"]["point"](4), z)
    first = get_tile(world["dispatcher"], "grids", z, x, y)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = world["dispatcher"].get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304
    world["inspector"].report(lon=world["district"]["point"](4)[0], lat=world["district"]["point"](4)[1])
    changed = world["dispatcher"].get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_tiles_are_gzipped_when_asked(make_user):
    import gzip
    user = make_user("supervisor", scope=["310199"])
    x1, y1, x2, y2 = user.get("/api/v1/map/extent").get_json()["bbox"]
    z = 14
    x, y = tile_of((x1 + x2) / 2, (y1 + y2) / 2, z)
    plain = get_tile(user, "grids", z, x, y)
    assert len(plain.get_data()) > 10_000  # hundreds of the demo district's grids
    r = user.get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("Content-Encoding") == "gzip"
    assert len(r.get_data()) < len(plain.get_data()) / 2
    assert gzip.decompress(r.get_data()) == plain.get_data()


def test_map_extent_areas_and_grid_names(make_user, district):
    user = make_user("dispatcher", scope=[district["code"]])
    extent = user.get("/api/v1/map/extent").get_json()
    assert extent["grids"] == 9
    x1, y1, x2, y2 = extent["bbox"]
    assert x1 == pytest.approx(district["point"](0)[0] - district["d"] / 2)
    assert y2 == pytest.approx(district["point"](0)[1] + district["d"] / 2)
    areas = user.get("/api/v1/map/areas").get_json()["items"]
    assert {a["code"] for a in areas} == {district["code"], district["code"] + "001", district["code"] + "001001"}
    names = user.get(f"/api/v1/map/grid-names?codes={district['grids'][0]},{district['grids'][1]},310199001001001")
    assert names.get_json()["names"] == {district["grids"][0]: "g1", district["grids"][1]: "g2"}
    assert user.get("/api/v1/map/grid-names?codes=12").status_code == 422


def test_the_demo_district_at_the_zoom_a_desk_map_opens(make_user):
    """The demo district's 2,002 grids: every one of them in the tiles that cover it at zoom 14."""
    user = make_user("supervisor", scope=["310199"])
    extent = user.get("/api/v1/map/extent").get_json()
    bbox = extent["bbox"]
    codes = set()
    for z, x, y in tiles_over(bbox, 14):
        codes.update(code_of(f) for f in decode(get_tile(user, "grids", z, x, y).get_data()).get("grids", []))
    assert len(codes) == extent["grids"] >= 2002


# ------------------------------------------------------------------ the kept grid tiles (grid_tile_cache)

def _scalar(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        value = db.session.execute(text(statement), params).scalar()
        db.session.rollback()
        return value


def _kept(app, z, x, y):
    """The kept tile's grid codes (None when the tile is not kept at the current version of the grids)."""
    return _scalar(app, "SELECT k.codes FROM grid_tile_cache k WHERE (k.z, k.x, k.y) = (:z, :x, :y)"
                        " AND k.version = (SELECT version FROM grid_tile_state)", z=z, x=x, y=y)


def _import(api, features, name="change.geojson"):
    import io
    import json
    doc = {"type": "FeatureCollection", "features": features}
    r = api.post("/api/v1/grids/import", data={"file": (io.BytesIO(json.dumps(doc).encode()), name)},
                 content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _square(code, name, lon, lat, d):
    ring = [[lon - d / 2, lat - d / 2], [lon + d / 2, lat - d / 2], [lon + d / 2, lat + d / 2],
            [lon - d / 2, lat + d / 2], [lon - d / 2, lat - d / 2]]
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _block_features(district):
    """The district fixture's own block, coordinate for coordinate (see conftest.district)."""
    from helpers import block_geojson
    n = int(district["code"][2:])
    return block_geojson(district["code"], 100.0 + n * 0.01, 30.0, 3, district["d"])["features"]


def _features(api, z, x, y):
    return {code_of(f): f for f in decode(get_tile(api, "grids", z, x, y).get_data()).get("grids", [])}


def test_a_kept_grid_tile_is_the_tile_cut_afresh(app, map_world, monkeypatch):
    from gridpatrol.maps import services
    world, g = map_world, map_world["district"]["grids"]
    api = world["supervisor"]
    kept = {}
    for z in (13, 14, 15, 16):
        for tile in tiles_over(district_bbox(world["district"]), z):
            kept[tile] = get_tile(api, "grids", *tile).get_data()
            # a tile that only the bbox's margin reaches holds no grid and is not kept (None): nothing to hold
            assert set(_kept(app, *tile) or ()) >= {c for c in g if c in _features(api, *tile)}, tile
            assert get_tile(api, "grids", *tile).get_data() == kept[tile], "read from the kept tile: the same bytes"
    monkeypatch.setattr(services, "CACHE_MAX_ZOOM", 0)  # every tile cut from the grids as they are
    for tile, data in kept.items():
        assert get_tile(api, "grids", *tile).get_data() == data, tile
    counts = {}
    for tile, data in kept.items():
        if tile[0] == 14:
            counts.update({code_of(f): (f["props"]["cases"], f["props"]["overdue"])
                           for f in decode(data)["grids"] if code_of(f) in g})
    assert counts[g[0]] == (2, 0) and counts[g[4]] == (1, 0) and sorted(counts) == g


def test_a_kept_tile_has_the_counts_of_now(app, map_world):
    """Only the grids are kept: the counts of a kept tile follow every case action and the clock."""
    world, g = map_world, map_world["district"]["grids"]
    z = 14
    x, y = tile_of(*world["district"]["point"](4), z)
    assert _features(world["dispatcher"], z, x, y)[g[4]]["props"]["cases"] == 1
    version = _scalar(app, "SELECT version FROM grid_tile_state")
    assert _kept(app, z, x, y)
    world["inspector"].report(lon=world["district"]["point"](4)[0], lat=world["district"]["point"](4)[1])
    assert _features(world["dispatcher"], z, x, y)[g[4]]["props"] == {"cases": 2, "overdue": 0}
    _sql(app, "UPDATE cases SET stage_deadline = now() - interval '1 minute' WHERE id = :id",
         id=world["cases"][2]["id"])
    assert _features(world["dispatcher"], z, x, y)[g[4]]["props"] == {"cases": 2, "overdue": 1}
    assert _scalar(app, "SELECT version FROM grid_tile_state") == version and _kept(app, z, x, y), \
        "the tile was read from the cache: a case is not a grid change"


def test_every_grid_change_is_in_the_very_next_tile(app, make_user, district):
    code, g, d = district["code"], district["grids"], district["d"]
    admin = make_user("admin", scope=[code])
    z16 = (16, *tile_of(*district["point"](0), 16))
    z14 = (14, *tile_of(*district["point"](0), 14))
    assert _features(admin, *z16)[g[0]]["props"]["name"] == "g1"
    assert g[0] in _features(admin, *z14) and _kept(app, *z16) and _kept(app, *z14)

    # an edit: the name (shown from zoom 16)
    renamed = _block_features(district)[:1]
    renamed[0]["properties"]["name"] = "renamed"
    assert _import(admin, renamed)["updated"] == 1
    assert _features(admin, *z16)[g[0]]["props"]["name"] == "renamed"

    # an import: a tenth grid beside the block
    lon, lat = district["point"](2)
    new = f"{code}001001010"
    assert _import(admin, [_square(new, "g10", lon + d, lat, d)])["created"] == 1
    tiles = {t for t in tiles_over((lon + d / 2, lat - d / 2, lon + 3 * d / 2, lat + d / 2), 16)}
    assert any(new in _features(admin, *t) for t in tiles)
    assert new in _features(admin, *(14, *tile_of(lon + d, lat, 14)))

    # a move: grid 1 (index 0) well north of every test block, out of the tiles it was in
    lon0, north = district["point"](0)[0], district["point"](0)[1] + 10 * d
    assert _import(admin, [_square(g[0], "renamed", lon0, north, d)])["updated"] == 1
    assert g[0] not in _features(admin, *z16)
    there = (16, *tile_of(lon0, north, 16))
    at = [lonlat_of(*there, ux, uy) for ux, uy in _features(admin, *there)[g[0]]["parts"][0][:-1]]
    assert all(abs(lon - lon0) <= d / 2 + 2e-6 and abs(lat - north) <= d / 2 + 2e-6 for lon, lat in at), at

    # a retirement: the tenth grid removed
    _sql(app, "DELETE FROM grids WHERE code = :code", code=new)
    assert not any(new in _features(admin, *t) for t in tiles)


def test_an_unchanged_reimport_keeps_the_kept_tiles(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    tile = (15, *tile_of(*district["point"](4), 15))
    before = get_tile(admin, "grids", *tile).get_data()
    version = _scalar(app, "SELECT version FROM grid_tile_state")
    assert _import(admin, _block_features(district))["updated"] == 9
    assert _scalar(app, "SELECT version FROM grid_tile_state") == version and _kept(app, *tile), \
        "the same codes, names and polygons: no tile changed"
    assert get_tile(admin, "grids", *tile).get_data() == before


def test_a_tile_cut_before_a_grid_change_is_never_served(app, make_user, district):
    """A tile cut from the grids as a transaction saw them before a change, and kept after the change
    was committed (two servers, one filling while the other imports), is not taken: it carries the
    version it was cut from."""
    g = district["grids"]
    admin = make_user("admin", scope=[district["code"]])
    tile = (16, *tile_of(*district["point"](0), 16))
    assert _features(admin, *tile)[g[0]]["props"]["name"] == "g1"
    old = {k: _scalar(app, f"SELECT {k} FROM grid_tile_cache WHERE (z, x, y) = (:z, :x, :y)",
                      z=tile[0], x=tile[1], y=tile[2])
           for k in ("version", "codes::text", "names::text", "geoms::text")}
    renamed = _block_features(district)[:1]
    renamed[0]["properties"]["name"] = "renamed"
    _import(admin, renamed)
    assert _scalar(app, "SELECT count(*) FROM grid_tile_cache") == 0, "a grid change empties the cache"
    _sql(app, "INSERT INTO grid_tile_cache (z, x, y, version, codes, names, geoms)"
              " VALUES (:z, :x, :y, :version, CAST(:codes AS varchar[]), CAST(:names AS text[]),"
              " CAST(:geoms AS geometry[]))",
         z=tile[0], x=tile[1], y=tile[2], version=old["version"], codes=old["codes::text"], names=old["names::text"],
         geoms=old["geoms::text"])
    assert _features(admin, *tile)[g[0]]["props"]["name"] == "renamed"
    kept_version = _scalar(app, "SELECT version FROM grid_tile_cache WHERE (z, x, y) = (:z, :x, :y)",
                           z=tile[0], x=tile[1], y=tile[2])
    assert kept_version == _scalar(app, "SELECT version FROM grid_tile_state") > old["version"], \
        "kept again as the grids are now"


def test_the_kept_tile_holds_every_grid_and_each_caller_sees_its_scope(app, make_user, district):
    g = district["grids"]
    tiles = tiles_over(district_bbox(district), 15)  # one, or two where the district straddles a tile's edge

    def seen(api):
        return {c for tile in tiles for c in _features(api, *tile)}

    other = make_user("dispatcher", scope=[district["code"] + "001002"])  # a community without grids here
    assert not seen(other) & set(g)
    assert set(g) <= {c for tile in tiles for c in _kept(app, *tile) or []}, "kept whole, whoever asked first"
    own = make_user("dispatcher", scope=[district["code"]])
    assert sorted(c for c in seen(own) if c.startswith(district["code"])) == g
    assert not seen(other) & set(g)


def test_only_tiles_holding_grids_are_kept_once_each(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    empty = (14, *tile_of(-150.0, -60.0, 14))
    assert get_tile(admin, "grids", *empty).get_data() == b""
    assert _scalar(app, "SELECT count(*) FROM grid_tile_cache WHERE (z, x, y) = (:z, :x, :y)",
                   z=empty[0], x=empty[1], y=empty[2]) == 0, "an empty tile is not kept"
    deep = (17, *tile_of(*district["point"](4), 17))
    assert _features(admin, *deep)
    assert _scalar(app, "SELECT count(*) FROM grid_tile_cache WHERE z > 16") == 0, "deeper tiles are cut afresh"
    tile = (14, *tile_of(*district["point"](4), 14))
    for _ in range(3):
        get_tile(admin, "grids", *tile)
    assert _scalar(app, "SELECT count(*) FROM grid_tile_cache WHERE (z, x, y) = (:z, :x, :y)",
                   z=tile[0], x=tile[1], y=tile[2]) == 1
    bins = (12, *tile_of(*district["point"](4), 12))
    get_tile(admin, "grids", *bins)
    assert _scalar(app, "SELECT count(*) FROM grid_tile_cache WHERE z < 13") == 0


def test_a_grid_change_changes_the_etag_of_a_kept_tile(make_user, district):
    g, d = district["grids"], district["d"]
    admin = make_user("admin", scope=[district["code"]])
    z, (x, y) = 14, tile_of(*district["point"](4), 14)
    path = f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt"
    etag = get_tile(admin, "grids", z, x, y).headers["ETag"]
    assert admin.get(path, headers={"If-None-Match": etag}).status_code == 304
    lon, lat = district["point"](4)
    _import(admin, [_square(g[4], "g5", lon + d / 4, lat, d / 2)])  # grid 5 shrunk
    changed = admin.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.headers["Cache-Control"] == "private, no-cache"
    assert admin.get(path, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_a_tile_read_in_the_transaction_changing_a_grid_shows_the_change(app, make_user, district):
    """The transaction changing a grid holds the kept tiles it emptied until it ends: a tile read in
    it is cut afresh as that transaction sees the grids (the cache neither waits on it nor is filled
    from it), and after its rollback the tiles are as before."""
    from gridpatrol.extensions import db
    from gridpatrol.maps import services
    g = district["grids"]
    admin = make_user("admin", scope=[district["code"]])
    tile = (16, *tile_of(*district["point"](0), 16))
    before = get_tile(admin, "grids", *tile).get_data()
    with app.app_context():
        db.session.execute(text("UPDATE grids SET name = 'inside' WHERE code = :code"), {"code": g[0]})
        data = services.grids_tile(*tile, {}, [district["code"]])
        db.session.rollback()
    assert {code_of(f): f["props"]["name"] for f in decode(data)["grids"]}[g[0]] == "inside"
    assert _kept(app, *tile) is not None and get_tile(admin, "grids", *tile).get_data() == before
