"""Locating points, reading grids as GeoJSON, and importing grids from the customer's GIS."""
import json
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.orm import defer

from ..core.authz import like_patterns, scope_clause
from ..core.geo import geography, point
from ..extensions import db
from .models import AdminArea, Grid


@dataclass
class Located:
    grid: Grid | None
    snapped: bool
    distance_m: float | None
    nearest: Grid | None = None  # beyond the tolerance: the nearest grid all the same

    @property
    def flags(self) -> list[str]:
        if self.grid is None:
            return ["outside"]
        return ["snapped"] if self.snapped else []


def _grid_scope(scope):
    return scope_clause(scope, district=Grid.district_code, street=Grid.street_code,
                        community=Grid.community_code, grid=Grid.code)


# grid_at() (migration 0008) finds the grid through the lattice of grid_cells, a btree lookup, and
# tests the polygon in SQL only: its bytes are not loaded on every report
_INSIDE = text("""
SELECT grids.code, grids.name, grids.district_code, grids.street_code, grids.community_code, grids.area_m2,
       grids.created_at, grids.updated_at
FROM grid_at(:lon, :lat, :patterns) AS grids
""")


def locate(lon: float, lat: float, scope) -> Located:
    """The grid containing the point; on a shared boundary the lowest code; outside every grid but
    within the tolerance the nearest one, snapped; beyond that no grid."""
    inside = db.session.execute(select(Grid).from_statement(_INSIDE),
                                {"lon": lon, "lat": lat, "patterns": like_patterns(scope)}).scalar_one_or_none()
    if inside is not None:
        return Located(inside, False, 0.0)
    p = point(lon, lat)
    # the planar <-> order finds candidates by index; the geodesic distance decides among them
    nearest = db.session.execute(
        select(Grid, func.ST_Distance(geography(Grid.geom), geography(p)).label("d")).options(defer(Grid.geom))
        .where(_grid_scope(scope)).order_by(Grid.geom.op("<->")(p)).limit(5)
    ).all()
    if not nearest:
        return Located(None, False, None)
    grid, distance = min(nearest, key=lambda row: (round(row.d, 6), row.Grid.code))
    if distance <= current_app.config["LOCATE_TOLERANCE_M"]:
        return Located(grid, True, float(distance))
    return Located(None, False, float(distance), nearest=grid)


def grids_geojson(bbox: tuple[float, float, float, float], scope, limit: int = 20000) -> str:
    """The grids meeting a bbox as a GeoJSON FeatureCollection, built by the database."""
    sql = text("""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
            'type', 'Feature', 'id', g.code, 'geometry', ST_AsGeoJSON(g.geom, 7)::json,
            'properties', json_build_object('code', g.code, 'name', g.name, 'street_code', g.street_code,
                                            'community_code', g.community_code)) ORDER BY g.code), '[]'))::text
        FROM (SELECT code, name, street_code, community_code, geom FROM grids
              WHERE geom && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326) AND ({scope})
              ORDER BY code LIMIT :limit) g
    """.format(scope=_scope_sql(scope)))
    return db.session.execute(sql, {"x1": bbox[0], "y1": bbox[1], "x2": bbox[2], "y2": bbox[3], "limit": limit,
                                    **_scope_params(scope)}).scalar_one()


def _scope_sql(scope) -> str:
    """Scope as a SQL fragment on a grid code: every level is a prefix of the 15-digit code."""
    return " OR ".join(f"code LIKE :s{i}" for i in range(len(scope))) or "false"


def _scope_params(scope) -> dict:
    return {f"s{i}": p for i, p in enumerate(like_patterns(scope))}


# an area's level by the length of its code; its parent is its code less the last three digits
AREA_LEVELS = {6: "district", 9: "street", 12: "community"}


def area_parent(code: str) -> str | None:
    """The code of the area holding this district, street or community (None for a district)."""
    return code[:-3] if len(code) > 6 else None


def ensure_areas(codes: set[str], names: dict[str, str]) -> None:
    """Create the district, street and community rows a set of grid codes needs."""
    wanted = {}
    for code in codes:
        for n, level in AREA_LEVELS.items():
            wanted[code[:n]] = level
    existing = set(db.session.execute(select(AdminArea.code).where(AdminArea.code.in_(list(wanted)))).scalars())
    for code in sorted(wanted, key=len):
        if code in existing:
            continue
        level = wanted[code]
        db.session.add(AdminArea(code=code, level=level, name=names.get(code) or f"{level} {code}",
                                 parent_code=area_parent(code)))
    db.session.flush()


def area_names(areas: list[dict]) -> None:
    """Load or rename admin areas from a list like geodata/areas.json."""
    for a in sorted(areas, key=lambda a: len(a["code"])):
        row = db.session.get(AdminArea, a["code"])
        if row is None:
            db.session.add(AdminArea(code=a["code"], level=a["level"], name=a["name"], name_en=a.get("name_en"),
                                     parent_code=a.get("parent_code")))
        else:
            row.name, row.name_en = a["name"], a.get("name_en")
        db.session.flush()


def upsert_grids(rows: list[dict]) -> tuple[int, int]:
    """Insert or update grids by code from dicts with code, name and WKB geometry (EPSG:4326).

    Returns (created, updated)."""
    if not rows:
        return 0, 0
    result = db.session.execute(text("""
        INSERT INTO grids (code, name, district_code, street_code, community_code, geom, area_m2)
        SELECT r.code, r.name, left(r.code, 6), left(r.code, 9), left(r.code, 12), g.geom,
               ST_Area(g.geom::geography)
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(code text, name text, wkb text),
             LATERAL (SELECT ST_SetSRID(ST_GeomFromWKB(decode(r.wkb, 'hex')), 4326) AS geom) g
        ON CONFLICT (code) DO UPDATE SET name = excluded.name, geom = excluded.geom, area_m2 = excluded.area_m2,
                                         updated_at = now()
        RETURNING (xmax = 0) AS created
    """), {"rows": json.dumps(rows)}).scalars().all()
    created = sum(1 for c in result if c)
    return created, len(result) - created
