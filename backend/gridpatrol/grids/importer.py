"""Grid import from the customer's GIS: GeoJSON, GeoPackage or zipped Shapefile.

Each feature is accepted or rejected with a reason; accepted ones are upserted by code, so an
import can be repeated. Overlaps below the sliver tolerance are what real GIS files carry and
are let through; a larger overlap rejects the later feature (later in the file, or new against
a grid already stored).
"""
import json
import os
import re
import tempfile
from dataclasses import dataclass, field

import shapely
from flask import current_app
from shapely.geometry import MultiPolygon, Polygon, shape
from sqlalchemy import text

from ..core.authz import code_in_scope
from ..core.errors import Invalid, UnsupportedMedia, invalid
from ..extensions import db
from . import services

CODE_RE = re.compile(r"^\d{15}$")
MAX_FEATURES = 200_000


@dataclass
class Candidate:
    index: int
    code: str | None
    name: str | None
    geom: Polygon | None = None
    reason: str | None = None


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rejected: list[dict] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)


def _sniff(data: bytes, filename: str) -> str:
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:16] == b"SQLite format 3\x00":
        return "gpkg"
    if data.lstrip()[:1] in (b"{", b"["):
        return "geojson"
    raise UnsupportedMedia(f"{filename or 'the file'} is not GeoJSON, a GeoPackage or a zipped Shapefile",
                           {"file": ["not GeoJSON, GeoPackage or zipped Shapefile"]})


def _ring_problem(ring) -> str | None:
    """Why a GeoJSON linear ring is not one (positions, closure), or None."""
    if not isinstance(ring, list) or not all(
            isinstance(p, list) and len(p) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in p[:2]) for p in ring):
        return "unreadable geometry: a ring is not a list of [lon, lat] positions"
    if len(ring) >= 2 and list(ring[0]) != list(ring[-1]):
        return "a ring is not closed (first and last positions differ)"
    if len(ring) < 4:
        return f"a ring of {len(ring)} positions: a closed ring needs at least 4"
    return None


def _geojson_geometry(geometry) -> tuple[Polygon | MultiPolygon | None, str | None]:
    if not geometry:
        return None, "no geometry"
    if not isinstance(geometry, dict):
        return None, "unreadable geometry: not a GeoJSON geometry object"
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        return None, f"a {kind} is not a polygon"
    coords = geometry.get("coordinates")
    polys = [coords] if kind == "Polygon" else coords
    if not isinstance(polys, list) or not polys or not all(isinstance(p, list) and p for p in polys):
        return None, "unreadable geometry: no polygon rings"
    for ring in (r for p in polys for r in p):
        problem = _ring_problem(ring)
        if problem:
            return None, problem
    try:
        return shape(geometry), None
    except (KeyError, TypeError, ValueError, IndexError, shapely.errors.GEOSException) as exc:
        return None, f"unreadable geometry: {exc}"


def _read_geojson(data: bytes, code_field: str, name_field: str) -> list[Candidate]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("file", f"not valid JSON: {exc}")
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise invalid("file", "a GeoJSON FeatureCollection is expected")
    out = []
    for i, feat in enumerate(doc["features"]):
        if not isinstance(feat, dict):
            out.append(Candidate(i, None, None, reason="not a GeoJSON Feature"))
            continue
        props = feat.get("properties")
        props = props if isinstance(props, dict) else {}
        c = Candidate(i, _str(props.get(code_field)), _str(props.get(name_field)))
        c.geom, c.reason = _geojson_geometry(feat.get("geometry"))
        out.append(c)
    return out


def _read_ogr(data: bytes, kind: str, code_field: str, name_field: str) -> list[Candidate]:
    import pyogrio
    from pyogrio.errors import DataSourceError, DataLayerError

    suffix = ".zip" if kind == "zip" else ".gpkg"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "upload" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        source = f"/vsizip/{path}" if kind == "zip" else path
        try:
            meta, _fids, geometry, field_data = pyogrio.raw.read(source)
        except (DataSourceError, DataLayerError, ValueError) as exc:
            raise invalid("file", f"the {'Shapefile' if kind == 'zip' else 'GeoPackage'} cannot be read: {exc}")
    fields = list(meta["fields"])
    missing = [f for f in (code_field,) if f not in fields]
    if missing:
        raise invalid("code_field", f"no field {code_field!r} in the file; fields are {', '.join(fields)}")
    codes = field_data[fields.index(code_field)]
    names = field_data[fields.index(name_field)] if name_field in fields else [None] * len(codes)
    srid = _srid(meta.get("crs"))
    wkbs = list(geometry)
    if srid not in (None, 4326, 4490):
        wkbs = _transform(wkbs, srid)
    out = []
    for i, (wkb, code, name) in enumerate(zip(wkbs, codes, names)):
        c = Candidate(i, _str(code), _str(name))
        if wkb is None:
            c.reason = "no geometry"
        else:
            try:
                g = shapely.from_wkb(wkb)
                if g.geom_type not in ("Polygon", "MultiPolygon"):
                    c.reason = f"a {g.geom_type} is not a polygon"
                else:
                    c.geom = g
            except shapely.errors.GEOSException as exc:
                c.reason = f"unreadable geometry: {exc}"
        out.append(c)
    return out


def _srid(crs: str | None) -> int | None:
    m = re.match(r"^EPSG:(\d+)$", crs or "")
    return int(m.group(1)) if m else None


def _transform(wkbs, srid: int):
    rows = db.session.execute(text(
        "SELECT ST_AsBinary(ST_Transform(ST_SetSRID(ST_GeomFromWKB(g), :srid), 4326)) "
        "FROM unnest(CAST(:g AS bytea[])) WITH ORDINALITY AS t(g, n) ORDER BY n"),
        {"srid": srid, "g": [bytes(w) if w is not None else None for w in wkbs]}).scalars().all()
    return [bytes(r) if r is not None else None for r in rows]


def _str(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _validate(c: Candidate) -> None:
    if c.reason:
        return
    if not c.code or not CODE_RE.match(c.code):
        c.reason = f"code {c.code!r} is not 15 digits (district 6 + street 3 + community 3 + sequence 3)"
        return
    g = c.geom
    if isinstance(g, MultiPolygon):
        if len(g.geoms) != 1:
            c.reason = f"a multipolygon of {len(g.geoms)} parts: a unit grid is one closed polygon"
            return
        g = c.geom = g.geoms[0]
    if g.is_empty:
        c.reason = "empty geometry"
        return
    if g.has_z:
        g = c.geom = shapely.force_2d(g)
    minx, miny, maxx, maxy = g.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        c.reason = "coordinates outside longitude/latitude ranges (EPSG:4326 expected)"
        return
    if not g.is_valid:
        c.reason = f"invalid polygon: {shapely.is_valid_reason(g)}"


def _area_m2(geom) -> float:
    """Area of a small lon/lat polygon in m², by a local equal-area scaling (for sliver tests)."""
    import math
    lat = geom.centroid.y
    k = (111_320.0 ** 2) * math.cos(math.radians(lat))
    return geom.area * k


def read_candidates(data: bytes, filename: str, code_field: str, name_field: str) -> list[Candidate]:
    kind = _sniff(data, filename)
    if kind == "geojson":
        return _read_geojson(data, code_field, name_field)
    return _read_ogr(data, kind, code_field, name_field)


def import_grids(data: bytes, filename: str = "", code_field: str = "code", name_field: str = "name",
                 dry_run: bool = False, scope=None) -> ImportResult:
    candidates = read_candidates(data, filename, code_field, name_field)
    if len(candidates) > MAX_FEATURES:
        raise Invalid(f"{len(candidates)} features; at most {MAX_FEATURES} in one import",
                      {"file": ["too many features"]})
    sliver = current_app.config["IMPORT_SLIVER_M2"]
    # one import at a time: overlap checks against the stored grids must see a stable set
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridpatrol:grid-import'))"))
    seen: dict[str, int] = {}
    accepted: list[Candidate] = []
    for c in candidates:
        _validate(c)
        if not c.reason and scope is not None and not code_in_scope(scope, c.code):
            c.reason = f"code {c.code} is outside your scope"
        if not c.reason and c.code in seen:
            c.reason = f"code {c.code} repeats feature {seen[c.code]}"
        if not c.reason:
            seen[c.code] = c.index
            accepted.append(c)
    # overlaps within the file: the later feature is rejected
    tree_geoms = [c.geom for c in accepted]
    tree = shapely.STRtree(tree_geoms)
    kept: list[Candidate] = []
    rejected_idx: set[int] = set()
    for i, c in enumerate(accepted):
        for j in tree.query(c.geom, predicate="intersects"):
            j = int(j)
            if j >= i or j in rejected_idx:
                continue
            overlap = _area_m2(c.geom.intersection(accepted[j].geom))
            if overlap > sliver:
                c.reason = f"overlaps feature {accepted[j].index} (code {accepted[j].code}) by {overlap:.1f} m²"
                rejected_idx.add(i)
                break
        if not c.reason:
            kept.append(c)
    kept = _reject_overlaps_with_stored(kept, sliver)
    result = ImportResult(rejected=[{"index": c.index, "code": c.code, "reason": c.reason}
                                    for c in candidates if c.reason])
    result.accepted = [{"index": c.index, "code": c.code, "name": c.name} for c in kept]
    if dry_run:
        existing = set(db.session.execute(text("SELECT code FROM grids WHERE code = ANY(:c)"),
                                          {"c": [c.code for c in kept]}).scalars())
        result.updated = len(existing)
        result.created = len(kept) - result.updated
        return result
    services.ensure_areas({c.code for c in kept}, {})
    result.created, result.updated = services.upsert_grids(
        [{"code": c.code, "name": c.name or c.code, "wkb": shapely.to_wkb(c.geom, hex=True)} for c in kept])
    return result


def _reject_overlaps_with_stored(kept: list[Candidate], sliver: float) -> list[Candidate]:
    if not kept:
        return kept
    rows = db.session.execute(text("""
        SELECT r.code, g.code AS other, ST_Area(ST_Intersection(g.geom, r.geom)::geography) AS overlap
        FROM (SELECT code, ST_SetSRID(ST_GeomFromWKB(decode(wkb, 'hex')), 4326) AS geom
              FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(code text, wkb text)) r
        JOIN grids g ON g.geom && r.geom AND ST_Intersects(g.geom, r.geom) AND g.code <> r.code
                        AND NOT g.code = ANY(CAST(:codes AS text[]))
    """), {"rows": json.dumps([{"code": c.code, "wkb": shapely.to_wkb(c.geom, hex=True)} for c in kept]),
           "codes": [c.code for c in kept]}).all()
    worst: dict[str, tuple[str, float]] = {}
    for code, other, overlap in rows:
        if overlap > sliver and overlap > worst.get(code, ("", 0.0))[1]:
            worst[code] = (other, overlap)
    out = []
    for c in kept:
        if c.code in worst:
            other, overlap = worst[c.code]
            c.reason = f"overlaps stored grid {other} by {overlap:.1f} m²"
        else:
            out.append(c)
    return out
