"""Grid import (GeoJSON, GeoPackage, zipped Shapefile), locate, and the map layer."""
import io
import itertools
import json
import math
import zipfile

import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon

from helpers import block_geojson

M_PER_DEG_LAT = 111_320.0
_areas = itertools.count(1)


def new_area():
    """A district code of its own and a south-west corner far from every other test's grids."""
    n = next(_areas)
    return f"97{n:04d}", 90.0 + n * 0.01, 25.0


def square(x, y, d=0.001):
    return [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]


def feature(code, ring, name=None, **props):
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"code": code, "name": name or f"grid {code}", **props}}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def upload(api, data: bytes, filename="grids.geojson", **form):
    return api.post("/api/v1/grids/import", data={"file": (io.BytesIO(data), filename), **form},
                    content_type="multipart/form-data")


def import_ok(api, data, filename="grids.geojson", **form):
    r = upload(api, data, filename, **form)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def grids_in(api, x1, y1, x2, y2):
    r = api.get(f"/api/v1/grids?bbox={x1},{y1},{x2},{y2}")
    assert r.status_code == 200, r.get_json()
    return r


def ogr_file(tmp_path, driver, polygons, fields: dict, crs="EPSG:4326", name="grids"):
    """Write polygons with attribute columns through GDAL (pyogrio), as the customer's GIS would."""
    suffix = {"GPKG": ".gpkg", "ESRI Shapefile": ".shp"}[driver]
    path = tmp_path / (name + suffix)
    geometry = np.array([shapely.to_wkb(p) for p in polygons], dtype=object)
    pyogrio.raw.write(str(path), geometry, [np.array(v, dtype=object) for v in fields.values()], list(fields),
                      driver=driver, geometry_type="Polygon", crs=crs, layer=name)
    return path


def zipped_shapefile(tmp_path, polygons, fields, crs="EPSG:4326"):
    shp = ogr_file(tmp_path, "ESRI Shapefile", polygons, fields, crs=crs)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            part = shp.with_suffix(ext)
            assert part.exists(), part
            z.write(part, part.name)
    return buf.getvalue()


# ------------------------------------------------------------------ import

def test_geojson_import_creates_then_updates_by_code(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=["*"])
    doc = collection(*(feature(f"{code}001001{i + 1:03d}", square(x + i * 0.001, y)) for i in range(3)))
    result = import_ok(admin, json.dumps(doc).encode())
    assert (result["created"], result["updated"], result["rejected"]) == (3, 0, [])

    doc["features"][1]["properties"]["name"] = "renamed"
    doc["features"].append(feature(f"{code}001001004", square(x + 3 * 0.001, y)))
    result = import_ok(admin, json.dumps(doc).encode())
    assert (result["created"], result["updated"], result["rejected"]) == (1, 3, [])

    reader = make_user("inspector", scope=[code])
    fc = grids_in(reader, x - 0.01, y - 0.01, x + 0.01, y + 0.01).get_json()
    assert [f["properties"]["code"] for f in fc["features"]] == [f"{code}001001{i:03d}" for i in range(1, 5)]
    assert fc["features"][1]["properties"]["name"] == "renamed"


def test_geojson_import_builds_the_area_hierarchy(app, make_user):
    from sqlalchemy import text
    from gridpatrol.extensions import db

    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    import_ok(admin, json.dumps(collection(feature(f"{code}002003001", square(x, y)))).encode())
    with app.app_context():
        rows = db.session.execute(text("SELECT code, level, parent_code FROM admin_areas WHERE code LIKE :p "
                                       "ORDER BY code"), {"p": code + "%"}).all()
    assert [tuple(r) for r in rows] == [(code, "district", None), (f"{code}002", "street", code),
                                        (f"{code}002003", "community", f"{code}002")]


def test_geopackage_import(tmp_path, make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    polys = [Polygon(square(x + i * 0.001, y)) for i in range(2)]
    path = ogr_file(tmp_path, "GPKG", polys, {"code": [f"{code}001001001", f"{code}001001002"],
                                               "name": ["东一", "东二"]})
    result = import_ok(admin, path.read_bytes(), "grids.gpkg")
    assert (result["created"], result["updated"], result["rejected"]) == (2, 0, [])
    fc = grids_in(admin, x - 0.001, y - 0.001, x + 0.003, y + 0.002).get_json()
    assert [(f["properties"]["code"], f["properties"]["name"]) for f in fc["features"]] == [
        (f"{code}001001001", "东一"), (f"{code}001001002", "东二")]
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    assert Polygon(ring).equals_exact(polys[0], 1e-7) or Polygon(ring).equals(polys[0])


def test_zipped_shapefile_import_with_a_field_mapping(tmp_path, make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    polys = [Polygon(square(x, y)), Polygon(square(x + 0.001, y))]
    data = zipped_shapefile(tmp_path, polys, {"WGCODE": [f"{code}001001001", f"{code}001001002"],
                                              "WGNAME": ["west", "east"]})
    result = import_ok(admin, data, "grids.zip", code_field="WGCODE", name_field="WGNAME")
    assert (result["created"], result["updated"], result["rejected"]) == (2, 0, [])
    fc = grids_in(admin, x - 0.001, y - 0.001, x + 0.003, y + 0.002).get_json()
    assert [f["properties"]["name"] for f in fc["features"]] == ["west", "east"]
    # the same file again: every grid updated, none created
    result = import_ok(admin, data, "grids.zip", code_field="WGCODE", name_field="WGNAME")
    assert (result["created"], result["updated"]) == (0, 2)


def test_a_projected_shapefile_is_transformed_to_wgs84(tmp_path, make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    wgs84 = Polygon(square(x, y))
    # the same square in Web Mercator metres
    merc = shapely.transform(wgs84, lambda c: np.column_stack([
        c[:, 0] * math.pi / 180 * 6378137.0,
        np.log(np.tan(math.pi / 4 + np.radians(c[:, 1]) / 2)) * 6378137.0]))
    data = zipped_shapefile(tmp_path, [merc], {"code": [f"{code}001001001"], "name": ["m"]}, crs="EPSG:3857")
    result = import_ok(admin, data, "grids.zip")
    assert result["created"] == 1, result
    located = admin.get(f"/api/v1/grids/locate?lon={x + 0.0005}&lat={y + 0.0005}").get_json()
    assert located["grid"]["code"] == f"{code}001001001" and located["snapped"] is False


def test_a_shapefile_without_the_code_field_is_422(tmp_path, make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    data = zipped_shapefile(tmp_path, [Polygon(square(x, y))], {"other": [f"{code}001001001"]})
    r = upload(admin, data, "grids.zip")
    assert r.status_code == 422 and "code_field" in r.get_json()["errors"]


def test_field_mapping_for_geojson(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    feat = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square(x, y)]},
            "properties": {"BM": int(f"{code}001001001"), "MC": "mapped"}}
    result = import_ok(admin, json.dumps(collection(feat)).encode(), code_field="BM", name_field="MC")
    assert result["created"] == 1 and result["rejected"] == []
    fc = grids_in(admin, x, y, x + 0.001, y + 0.001).get_json()
    assert fc["features"][0]["properties"] == {"code": f"{code}001001001", "name": "mapped",
                                               "street_code": f"{code}001", "community_code": f"{code}001001"}


def test_bad_features_are_rejected_each_with_its_reason(make_user, district):
    code, x, y = new_area()
    admin = make_user("admin", scope=["*"])
    d = 0.001
    sliver = 4e-8  # ≈ 0.4 m wide overlap strip × 111 m high ≈ 0.4 m²
    sx, sy = district["point"](0)
    features = [
        feature(f"{code}001001001", square(x, y)),                                               # 0 good
        feature(f"{code}001001002", [[x + 2 * d, y], [x + 3 * d, y + d], [x + 3 * d, y],
                                     [x + 2 * d, y + d], [x + 2 * d, y]]),                       # 1 bow-tie
        feature(f"{code}001001003", square(x + 4 * d, y)[:-1]),                                  # 2 unclosed
        feature(f"{code}00100100", square(x + 6 * d, y)),                                        # 3 bad code
        feature(f"{code}001001005", square(x + d / 2, y + d / 2)),                               # 4 overlaps 0
        feature(f"{code}001001006", square(x + d - sliver, y)),                                  # 5 sliver: ok
        feature(f"{code}001001007", square(sx - d / 4, sy - d / 4)),                             # 6 stored grid
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x + 8 * d, y]},
         "properties": {"code": f"{code}001001008", "name": "a point"}},                         # 7 point
        feature(f"{code}001001001", square(x + 10 * d, y)),                                      # 8 same code as 0
        feature("ABCDEFGHIJKLMNO", square(x + 12 * d, y)),                                       # 9 letters
    ]
    result = import_ok(admin, json.dumps(collection(*features)).encode())
    assert (result["created"], result["updated"]) == (2, 0)
    reasons = {r["index"]: r for r in result["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 6, 7, 8, 9]
    assert "self-intersection" in reasons[1]["reason"].lower()
    assert "not closed" in reasons[2]["reason"]
    assert "15 digits" in reasons[3]["reason"] and reasons[3]["code"] == f"{code}00100100"
    assert "overlaps feature 0" in reasons[4]["reason"]
    assert f"overlaps stored grid {district['grids'][0]}" in reasons[6]["reason"]
    assert "Point" in reasons[7]["reason"] and "polygon" in reasons[7]["reason"]
    assert "repeats feature 0" in reasons[8]["reason"]
    assert "15 digits" in reasons[9]["reason"]
    assert all(r["code"] == features[i]["properties"]["code"] for i, r in reasons.items())
    # exactly the good feature and the sliver neighbour were stored
    fc = grids_in(admin, x - d, y - d, x + 14 * d, y + 2 * d).get_json()
    assert [f["properties"]["code"] for f in fc["features"]] == [f"{code}001001001", f"{code}001001006"]


def test_a_new_grid_overlapping_a_stored_one_is_rejected_but_a_sliver_is_not(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    import_ok(admin, json.dumps(collection(feature(f"{code}001001001", square(x, y)))).encode())
    result = import_ok(admin, json.dumps(collection(
        feature(f"{code}001001002", square(x + 0.0009, y)),            # ≈ 10 m × 111 m over the stored grid
        feature(f"{code}001001003", square(x - 0.001 + 4e-8, y)),      # a sliver on its west edge
    )).encode())
    assert result["created"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(0, f"{code}001001002")]
    assert "overlaps stored grid" in result["rejected"][0]["reason"]


def test_reimporting_a_grid_with_a_moved_boundary_does_not_overlap_itself(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    import_ok(admin, json.dumps(collection(feature(f"{code}001001001", square(x, y)))).encode())
    result = import_ok(admin, json.dumps(collection(feature(f"{code}001001001", square(x + 0.0002, y)))).encode())
    assert (result["created"], result["updated"], result["rejected"]) == (0, 1, [])


def test_a_multipolygon_of_one_part_is_taken_and_of_two_is_not(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    one = {"type": "Feature", "properties": {"code": f"{code}001001001"},
           "geometry": {"type": "MultiPolygon", "coordinates": [[square(x, y)]]}}
    two = {"type": "Feature", "properties": {"code": f"{code}001001002"},
           "geometry": {"type": "MultiPolygon", "coordinates": [[square(x + 0.002, y)], [square(x + 0.004, y)]]}}
    result = import_ok(admin, json.dumps(collection(one, two)).encode())
    assert result["created"] == 1
    assert [r["index"] for r in result["rejected"]] == [1] and "2 parts" in result["rejected"][0]["reason"]


def test_features_without_usable_geometry_are_rejected_not_crashing(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    doc = collection(
        {"type": "Feature", "properties": {"code": f"{code}001001001"}, "geometry": None},
        {"type": "Feature", "properties": {"code": f"{code}001001002"}, "geometry": ["not", "an", "object"]},
        {"type": "Feature", "properties": {"code": f"{code}001001003"},
         "geometry": {"type": "Polygon", "coordinates": "nonsense"}},
        "not a feature",
        {"type": "Feature", "properties": None, "geometry": {"type": "Polygon", "coordinates": [square(x, y)]}},
        {"type": "Feature", "properties": {"code": f"{code}001001006"},
         "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y], [x, y]]]}},
    )
    result = import_ok(admin, json.dumps(doc).encode())
    assert result["created"] == 0
    assert [r["index"] for r in result["rejected"]] == [0, 1, 2, 3, 4, 5]
    assert all(r["reason"] for r in result["rejected"])


def test_codes_outside_the_admins_scope_are_rejected(make_user):
    code, x, y = new_area()
    other, _, _ = new_area()
    admin = make_user("admin", scope=[code])
    result = import_ok(admin, json.dumps(collection(feature(f"{other}001001001", square(x, y)))).encode())
    assert result["created"] == 0 and "outside your scope" in result["rejected"][0]["reason"]


@pytest.mark.parametrize("data, filename", [
    (b"code,name\n310199001001001,x\n", "grids.csv"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "grids.geojson"),
    (b"", "empty.geojson"),
])
def test_not_a_geo_file_is_415(make_user, data, filename):
    admin = make_user("admin", scope=["*"])
    r = upload(admin, data, filename)
    assert r.status_code == 415, r.get_json()
    assert r.mimetype == "application/problem+json"


@pytest.mark.parametrize("data", [b'{"type": "FeatureCollection", "features": [', b'{"type": "Feature"}',
                                  b'[1, 2, 3]', b'{"type": "FeatureCollection", "features": {}}'])
def test_broken_or_wrong_json_is_422(make_user, data):
    admin = make_user("admin", scope=["*"])
    r = upload(admin, data)
    assert r.status_code == 422 and "file" in r.get_json()["errors"]


def test_a_broken_geopackage_or_zip_is_422(make_user):
    admin = make_user("admin", scope=["*"])
    assert upload(admin, b"SQLite format 3\x00" + b"\0" * 200, "g.gpkg").status_code == 422
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "no shapefile here")
    assert upload(admin, buf.getvalue(), "g.zip").status_code == 422


def test_an_unknown_form_field_is_422(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    r = upload(admin, json.dumps(collection(feature(f"{code}001001001", square(x, y)))).encode(), srid="3857")
    assert r.status_code == 422 and "srid" in r.get_json()["errors"]
    assert grids_in(admin, x, y, x + 0.001, y + 0.001).get_json()["features"] == []


def test_the_file_part_is_required(make_user):
    admin = make_user("admin", scope=["*"])
    r = admin.post("/api/v1/grids/import", data={"code_field": "code"}, content_type="multipart/form-data")
    assert r.status_code == 422 and "file" in r.get_json()["errors"]


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("inspector",)])
def test_only_an_admin_imports(make_user, roles):
    code, x, y = new_area()
    api = make_user(*roles, scope=["*"])
    r = upload(api, json.dumps(collection(feature(f"{code}001001001", square(x, y)))).encode())
    assert r.status_code == 403
    admin = make_user("admin", scope=[code])
    assert grids_in(admin, x, y, x + 0.001, y + 0.001).get_json()["features"] == []


def test_dry_run_reports_without_storing(make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    result = import_ok(admin, json.dumps(collection(feature(f"{code}001001001", square(x, y)))).encode(),
                       dry_run="true")
    assert result["created"] == 1
    assert grids_in(admin, x, y, x + 0.001, y + 0.001).get_json()["features"] == []


# ------------------------------------------------------------------ locate

def lonlat(api, lon, lat):
    r = api.get(f"/api/v1/grids/locate?lon={lon}&lat={lat}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_locate_inside_a_grid(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    for i in (0, 4, 8):
        found = lonlat(api, *district["point"](i))
        assert found["grid"] == {"code": district["grids"][i], "name": f"g{i + 1}",
                                 "street_code": f"{district['code']}001",
                                 "community_code": f"{district['code']}001001"}
        assert found["snapped"] is False and found["distance_m"] == 0


def test_locate_on_a_shared_boundary_picks_the_lowest_code(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    d = district["d"]
    lon4, lat4 = district["point"](4)
    # the edge between grid 4 and grid 5 (east), and between 4 and 7 (south)
    assert lonlat(api, lon4 + d / 2, lat4)["grid"]["code"] == district["grids"][4]
    assert lonlat(api, lon4, lat4 - d / 2)["grid"]["code"] == district["grids"][4]
    # the corner shared by grids 4, 5, 7 and 8
    assert lonlat(api, lon4 + d / 2, lat4 - d / 2)["grid"]["code"] == district["grids"][4]


def test_locate_just_outside_snaps_to_the_nearest_grid(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    d = district["d"]
    lon, lat = district["point"](3)  # the west column
    west_edge = lon - d / 2
    off = 10 / (M_PER_DEG_LAT * math.cos(math.radians(lat)))  # 10 m further west
    found = lonlat(api, west_edge - off, lat)
    assert found["grid"]["code"] == district["grids"][3]
    assert found["snapped"] is True
    assert 9.5 < found["distance_m"] < 10.5


def test_locate_far_from_every_grid_gives_no_grid(make_user, district):
    api = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](0)
    found = lonlat(api, lon, lat + 45 / M_PER_DEG_LAT + district["d"] / 2)  # 45 m north of the block
    assert found["grid"] is None and found["snapped"] is False
    assert found["distance_m"] is None or found["distance_m"] > 30
    found = lonlat(api, lon + 1, lat)
    assert found["grid"] is None and found["snapped"] is False


@pytest.mark.parametrize("query", ["lon=nan&lat=30", "lon=100&lat=NaN", "lon=inf&lat=30", "lat=30", "lon=100",
                                   "lon=181&lat=30", "lon=100&lat=-91", "lon=abc&lat=30", "lon=&lat=30", ""])
def test_locate_refuses_bad_coordinates(make_user, query):
    api = make_user("inspector")
    r = api.get(f"/api/v1/grids/locate?{query}")
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json" and r.get_json()["errors"]


def test_locate_sees_only_grids_in_scope(make_user, district):
    outsider = make_user("inspector", scope=["310199"])
    assert lonlat(outsider, *district["point"](4))["grid"] is None
    lon, lat = district["point"](3)
    assert lonlat(outsider, lon - district["d"] / 2 - 0.00005, lat)["grid"] is None


# ------------------------------------------------------------------ the map layer

def test_grids_in_a_bbox_as_geojson(make_user, district):
    api = make_user("dispatcher", scope=[district["code"]])
    lon0, lat0 = district["point"](0)
    d = district["d"]
    # a box around the top row only
    r = grids_in(api, lon0 - d, lat0 - d / 4, lon0 + 3 * d, lat0 + d)
    assert r.mimetype in ("application/geo+json", "application/json")
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in fc["features"]] == district["grids"][:3]
    f = fc["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
    assert set(f["properties"]) == {"code", "name", "street_code", "community_code"}
    assert f["properties"]["community_code"] == f"{district['code']}001001"
    ring = f["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    assert Polygon(ring).contains(shapely.Point(district["point"](0)))


def test_grids_outside_the_bbox_are_left_out(make_user, district):
    api = make_user("dispatcher", scope=[district["code"]])
    assert grids_in(api, 0, 0, 1, 1).get_json() == {"type": "FeatureCollection", "features": []}


def test_grids_of_another_district_are_invisible(make_user, district):
    outsider = make_user("dispatcher", scope=["310199"])
    lon0, lat0 = district["point"](0)
    assert grids_in(outsider, lon0 - 0.01, lat0 - 0.01, lon0 + 0.01, lat0 + 0.01).get_json()["features"] == []
    street = make_user("dispatcher", scope=[f"{district['code']}002"])
    assert grids_in(street, lon0 - 0.01, lat0 - 0.01, lon0 + 0.01, lat0 + 0.01).get_json()["features"] == []
    community = make_user("dispatcher", scope=[f"{district['code']}001001"])
    assert len(grids_in(community, lon0 - 0.01, lat0 - 0.01, lon0 + 0.01, lat0 + 0.01).get_json()["features"]) == 9


@pytest.mark.parametrize("bbox", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "10,10,5,5", "nan,0,1,1", "0,0,inf,1",
                                  "-181,0,0,1", "0,-91,1,0", ""])
def test_a_bad_bbox_is_422(make_user, bbox):
    api = make_user("dispatcher")
    r = api.get(f"/api/v1/grids?bbox={bbox}")
    assert r.status_code == 422 and "bbox" in r.get_json()["errors"]


def test_the_bbox_is_required(make_user):
    api = make_user("dispatcher")
    r = api.get("/api/v1/grids")
    assert r.status_code == 422 and "bbox" in r.get_json()["errors"]


def test_block_geojson_helper_matches_the_district_fixture(district):
    # the helper the fixture uses draws the same 3×3 block the tests above rely on
    lon0, lat0 = district["point"](0)
    fc = block_geojson(district["code"], lon0 - district["d"] / 2, lat0 + district["d"] / 2)
    assert [f["properties"]["code"] for f in fc["features"]] == district["grids"]


# ------------------------------------------------------------------ the lattice behind locate

def located(app, lon, lat, scope):
    """locate()'s grid for a point: its code, or None outside every grid (snapped or not)."""
    from gridpatrol.grids import services
    with app.app_context():
        found = services.locate(lon, lat, scope)
        return found.grid.code if found.grid is not None and not found.snapped else None


def by_polygons(app, lon, lat, scope):
    """The rule locate() keeps, straight from the polygons: the lowest code among the grids in scope
    containing the point."""
    from sqlalchemy import text
    from gridpatrol.core.authz import like_patterns
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text(
            "SELECT code FROM grids WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " AND code LIKE ANY(:patterns) ORDER BY code LIMIT 1"),
            {"lon": lon, "lat": lat, "patterns": like_patterns(scope)}).scalar()


def sql(app, statement, **params):
    from sqlalchemy import text
    from gridpatrol.extensions import db
    with app.app_context():
        rows = db.session.execute(text(statement), params)
        result = rows.all() if rows.returns_rows else None
        db.session.commit()
        return result


def insert_grid(app, code, geom_sql, **params):
    """A grid written by plain SQL, past the importer (its checks) and the ORM."""
    sql(app, "INSERT INTO grids (code, name, district_code, street_code, community_code, geom, area_m2)"
             f" VALUES (:code, 'by sql', :district, :street, :community, {geom_sql}, 1)",
        code=code, district=code[:6], street=code[:9], community=code[:12], **params)


def cells_of(app, code):
    rows = sql(app, "SELECT cell, west, south, east, north FROM grid_cells WHERE code = :c ORDER BY cell", c=code)
    return [tuple(r) for r in rows]


def rect(x1, y1, x2, y2):
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]


def near_line(k, side):
    """A coordinate a float step or two from the cell line k × 0.002°, on the given side of it as
    floor(v × 500) sees it (side -1: just below the line, in the cell before it; +1: on or just past it)."""
    v, want = k / 500, k - 1 if side < 0 else k
    while math.floor(v * 500) != want:
        v = math.nextafter(v, -math.inf if side < 0 else math.inf)
    return v


def probes(ring):
    """Points a lattice could get wrong: every vertex and edge midpoint, each also one float step to
    either side on both axes, and the centre."""
    out = []
    for (ax, ay), (bx, by) in zip(ring, ring[1:]):
        for px, py in ((ax, ay), ((ax + bx) / 2, (ay + by) / 2)):
            out += [(px, py), (math.nextafter(px, -math.inf), math.nextafter(py, -math.inf)),
                    (math.nextafter(px, math.inf), math.nextafter(py, math.inf))]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return out + [((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)]


def test_locate_keeps_the_polygon_rule_on_edges_corners_and_cell_lines_for_grids_of_any_size(app, make_user):
    """Grids with edges on the lattice's cell lines (0.002°) and off them, half a cell, a sliver of a
    cell, and one 0.1° long (filed under 1° cells): at every vertex, edge midpoint and centre, and a
    float step beside each, locate() gives what the polygons give, in every scope."""
    code, x, y = new_area()
    # on a cell line, north of the other tests' grids (the long grid reaches 0.1° west)
    x0, y0 = math.floor(x * 500) / 500 + 0.004, math.floor(y * 500) / 500 + 0.05
    c = 0.002
    big = f"{code}001001001"  # the lowest code: it wins every edge it shares
    shapes = {big: rect(x0 - 0.1, y0, x0, y0 + 2 * c)}
    for i in range(3):
        for j in range(2):  # a 3 × 2 block of cell-sized squares, east of the long grid
            shapes[f"{code}001001{10 + 2 * i + j:03d}"] = rect(x0 + i * c, y0 + j * c,
                                                               x0 + (i + 1) * c, y0 + (j + 1) * c)
    shapes[f"{code}001001005"] = rect(x0, y0 - c / 2, x0 + c, y0)  # half a cell, under the block
    shapes[f"{code}001002001"] = rect(x0 + c, y0 - 0.0013, x0 + c + 0.0013, y0)  # off the lines, another community
    shapes[f"{code}001002002"] = rect(x0 + c + 0.0013, y0 - 0.0001, x0 + c + 0.0014, y0)  # a sliver of a cell
    # two cell-sized squares with every edge a float step before or on a cell line
    kx, ky = round(x0 * 500) + 6, round(y0 * 500) - 3
    w, m, e = near_line(kx, -1), near_line(kx + 1, -1), near_line(kx + 2, 1)
    s_, n_ = near_line(ky, -1), near_line(ky + 1, 1)
    shapes[f"{code}001001030"], shapes[f"{code}001001031"] = rect(w, s_, m, n_), rect(m, s_, e, n_)
    admin = make_user("admin", scope=[code])
    result = import_ok(admin, json.dumps(collection(*(feature(k, ring) for k, ring in shapes.items()))).encode())
    assert (result["created"], result["rejected"]) == (len(shapes), [])
    # one more overlapping four block squares, past the importer's overlap check: the lower code wins
    overlap = f"{code}001001020"
    shapes[overlap] = ring = rect(x0 + c / 2, y0 + c / 2, x0 + 1.5 * c, y0 + 1.5 * c)
    insert_grid(app, overlap, "ST_GeomFromText(:wkt, 4326)",
                wkt="POLYGON((" + ", ".join(f"{p[0]!r} {p[1]!r}" for p in ring) + "))")

    assert len(cells_of(app, big)) <= 4, "a long grid is filed under a few 1° cells, not hundreds of small ones"
    assert 1 <= len(cells_of(app, f"{code}001001010")) <= 4
    points = [p for ring in shapes.values() for p in probes(ring)]
    assert len(points) > 250
    scopes = [[code], [f"{code}001002"], [f"{code}001001010"], ["*"]]
    wrong = [(p, s, located(app, *p, s), by_polygons(app, *p, s)) for p in points for s in scopes
             if located(app, *p, s) != by_polygons(app, *p, s)]
    assert wrong == []
    # the rule at work: the long grid's east edge is shared with the block, the lower code (the long grid) wins
    assert located(app, x0, y0 + c / 2, [code]) == big
    assert located(app, x0, y0 + c / 2, [f"{code}001001010"]) == f"{code}001001010"
    assert located(app, x0 + 0.9 * c, y0 + 0.9 * c, [code]) == f"{code}001001010"  # inside both: the lower code
    assert located(app, x0 + 0.9 * c, y0 + 0.9 * c, [overlap]) == overlap
    assert located(app, x0 + 1.1 * c, y0 + 1.1 * c, [code]) == f"{code}001001013"


def test_the_lattice_follows_every_insert_move_and_delete_of_a_grid(app, make_user):
    code, x, y = new_area()
    admin = make_user("admin", scope=[code])
    a, b = f"{code}001001001", f"{code}001001002"
    import_ok(admin, json.dumps(collection(feature(a, square(x, y)), feature(b, square(x + 0.001, y)))).encode())
    centre = (x + 0.0005, y + 0.0005)
    assert located(app, *centre, [code]) == a
    before = cells_of(app, a)
    assert before and all(w == x and s == y and e == x + 0.001 and n == y + 0.001 for _, w, s, e, n in before)

    # renamed only: its cells stay; moved: it is found where it is now and no longer where it was
    import_ok(admin, json.dumps(collection(feature(a, square(x, y), name="renamed"))).encode())
    assert cells_of(app, a) == before
    import_ok(admin, json.dumps(collection(feature(a, square(x, y + 0.005)))).encode())
    assert located(app, *centre, [code]) is None
    assert located(app, centre[0], centre[1] + 0.005, [code]) == a
    assert cells_of(app, a) != before

    # written by plain SQL (any insert path), then deleted
    c = f"{code}001001003"
    insert_grid(app, c, "ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)", x1=x, y1=y, x2=x + 0.001, y2=y + 0.001)
    assert located(app, *centre, [code]) == c
    sql(app, "DELETE FROM grids WHERE code IN (:a, :c)", a=a, c=c)
    assert cells_of(app, a) == [] and cells_of(app, c) == []
    assert located(app, *centre, [code]) is None
    assert located(app, centre[0], centre[1] + 0.005, [code]) is None
    assert located(app, x + 0.0015, y + 0.0005, [code]) == b
