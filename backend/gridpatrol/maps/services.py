"""Vector tiles as read models: one SQL statement per tile, made by PostGIS (a grid tile not yet
cut since the grids last changed takes a second one, which keeps its grids for the next request; an
open-case cluster tile, a tile of bins and a grid tile cut afresh set their plan mode first). Under the
map's default filter the grid layer's counts come from grid_open_cases, kept by the writes to cases.

The grid layer is a choropleth: each unit grid with the number of cases in it that pass the map's
filters and how many of those are overdue. Zoomed out (below GRID_MIN_ZOOM) a tile would hold tens
of thousands of grids a few pixels wide, so grids are summed into square bins instead (`bins`). Grid
tiles are cut from the grids' polygons kept in web mercator (`geom_3857`), so nothing is projected
per request. The case layer is points from CASE_POINT_ZOOM, clusters below it (counts per cell of
the tile).
Both are cut to the caller's scope like every list: a grid or case outside it is not in any tile.
"""
import math

from psycopg.errors import LockNotAvailable
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ..cases.models import KEPT_OVERDUE_SQL, OPEN_SQL, tile_key_sql
from ..cases.states import OPEN
from ..core.authz import case_scope_sql, like_patterns
from ..core.db import driver_sql
from ..extensions import db

EXTENT = 4096  # tile coordinate units per tile side
TILE_PX = 256  # the tile's side on screen at its own zoom, which fixes the size of bins and clusters
GRID_MIN_ZOOM = 13  # grids as polygons from here (about 5 px wide); square bins below
GRID_NAME_ZOOM = 16  # grid names in the tile from here (below, most of its bytes: the console asks /map/grid-names)
CASE_POINT_ZOOM = 16  # single case points from here; clusters below
BIN_PX = 8
CLUSTER_PX = 64
MAX_ZOOM = 22
TILE_KEY_ZOOM = 24  # tile_key() (migration 0019): a point's tile at this zoom, its bits interleaved

# overdue, of a row the map's filters already hold to open statuses (a check less per case counted)
_OVERDUE_OF_OPEN = "(c.status <> 'suspended' AND c.stage_deadline < now())"
OVERDUE_SQL = f"(c.{OPEN_SQL} AND {_OVERDUE_OF_OPEN})"

_BOUNDS = """
b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e,
             ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326) AS e4326)
"""


def valid_tile(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z


def case_filters(args: dict, scope) -> tuple[str, dict]:
    """The map's filters as SQL on a cases row `c`, with the caller's scope."""
    scope_sql, params = case_scope_sql(scope, "c")
    where = [scope_sql]
    statuses = set(args.get("status") or OPEN)
    if statuses != OPEN:
        where.append("c.status = ANY(:f_status)")
        params["f_status"] = sorted(statuses)
    # open states said in literals, so the partial indexes on open cases apply; for every open state (the
    # default) this alone, which such an index implies: no test of each case's status as it is read
    if _open_only(args):
        where.append(f"c.{OPEN_SQL}")
    for name, column in (("category", "c.category_code"), ("team", "c.lead_team_id"), ("urgency", "c.urgency")):
        if args.get(name):
            where.append(f"{column} = ANY(:f_{name})")
            params[f"f_{name}"] = list(args[name])
    if args.get("overdue") is not None:
        where.append(OVERDUE_SQL if args["overdue"] else f"NOT {OVERDUE_SQL}")
    if args.get("escalated") is not None:
        where.append("c.escalation_level > 0" if args["escalated"] else "c.escalation_level = 0")
    if args.get("from"):
        where.append("c.reported_at >= :f_from")
        params["f_from"] = args["from"]
    if args.get("to"):
        where.append("c.reported_at < :f_to")
        params["f_to"] = args["to"]
    return " AND ".join(f"({w})" for w in where), params


def _open_only(args: dict) -> bool:
    """The map's status filter holds open statuses only (the default)."""
    return set(args.get("status") or OPEN) <= OPEN


def _overdue(args: dict) -> str:
    return _OVERDUE_OF_OPEN if _open_only(args) else OVERDUE_SQL


def tile_key_range(z: int, x: int, y: int) -> tuple[int, int]:
    """The tile_key()s of the points in tile (z, x, y): from the first, up to and without the second."""
    key = 0
    for bit in range(z):
        key |= ((x >> bit) & 1) << (2 * bit) | ((y >> bit) & 1) << (2 * bit + 1)
    shift = 2 * (TILE_KEY_ZOOM - z)
    return key << shift, (key + 1) << shift


def _params(z, x, y, scope, margin_px=0) -> dict:
    return {"z": z, "x": x, "y": y, "margin": margin_px / TILE_PX, "patterns": like_patterns(scope)}


_KEPT_OVERDUE = KEPT_OVERDUE_SQL.format(alias="n")


def _counts_sql(filters: str, overdue: str, kept: bool = False) -> str:
    """The cases of each grid in `g` passing the filters, and how many of those are overdue. `kept`:
    the map's default filter, read from grid_open_cases (a row a grid instead of its cases)."""
    if kept:
        # joined to `g` on the key alone (a semi join to `g` besides, planned for a row of `g` in a
        # generic plan, read `g` again for every grid)
        return f"""
    n AS (SELECT n.grid_code, n.open AS cases, {_KEPT_OVERDUE} AS overdue FROM grid_open_cases n)
    """
    return f"""
    n AS (SELECT c.grid_code, count(*) AS cases, count(*) FILTER (WHERE {overdue}) AS overdue
          FROM cases c WHERE c.grid_code IN (SELECT code FROM g) AND {filters} GROUP BY c.grid_code)
    """


# The grids of a tile from GRID_MIN_ZOOM to CACHE_MAX_ZOOM: what ST_AsMVTGeom makes of them (most of
# the tile's work) is the same for every caller and only changes with the grids, so it is kept in
# grid_tile_cache (migration 0012) with the version of the grids it was cut from, and only the counts,
# which move with every case action and with the clock (overdue), are read per request. Deeper tiles
# hold a few grids each (cheap to cut) and there are many more of them: they are always cut afresh.
CACHE_MAX_ZOOM = 16
FILL_WAIT = "200ms"
_BUFFER = 64


def _grid_name(z: int) -> str:
    return "g.name::text" if z >= GRID_NAME_ZOOM else "NULL::text"


# Features in the order of their ids (the grid codes), so a tile's bytes are the same whichever way
# its grids were read. The tile's bytes must not depend on whether it came from the cache.
_ENCODE = f"SELECT ST_AsMVT(t, 'grids', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM t"

# The grids as the current version of them (grid_tile_state and grids read in one statement, so the
# rows are of the version they carry), every grid of the tile whatever the caller's scope. A newer
# row is never replaced by an older one (two requests filling the same tile across a grid change).
_FILL = """
WITH v AS (SELECT version FROM grid_tile_state),
b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
g AS MATERIALIZED (
      SELECT g.code, {name} AS name, ST_AsMVTGeom(g.geom_3857, b.e, {extent}, {buffer}, true) AS geom
      FROM grids g, b WHERE g.geom_3857 && b.e),
k AS (SELECT array_agg(code ORDER BY code) AS codes, array_agg(name ORDER BY code) AS names,
             array_agg(geom ORDER BY code) AS geoms
      FROM g WHERE geom IS NOT NULL),
kept AS (
      INSERT INTO grid_tile_cache (z, x, y, version, codes, names, geoms)
      SELECT :z, :x, :y, v.version, k.codes, k.names, k.geoms FROM v, k WHERE k.codes IS NOT NULL
      ON CONFLICT (z, x, y) DO UPDATE SET version = excluded.version, codes = excluded.codes,
                                          names = excluded.names, geoms = excluded.geoms
      WHERE grid_tile_cache.version < excluded.version)
SELECT k.codes IS NOT NULL FROM k
"""

# The tile from the cache when it holds the tile at the current version of the grids (`hit`): the
# kept grids in the caller's scope (`g`), then each with its counts (`t`, given below).
_CACHED = """
WITH k AS (SELECT k.codes, k.names, k.geoms FROM grid_tile_cache k
           WHERE k.z = :z AND k.x = :x AND k.y = :y
             AND k.version = (SELECT version FROM grid_tile_state)),
g AS (SELECT u.code, u.name, u.geom FROM k, unnest(k.codes, k.names, k.geoms) AS u(code, name, geom)
      WHERE u.code LIKE ANY(:patterns)),
{counted}
SELECT EXISTS (SELECT 1 FROM k) AS hit, ({encode}) AS tile
"""
# The counts per grid over the cases, a probe of the open cases' index each: the planner cannot tell
# how many grids the cached arrays hold, and a join it takes for one row would aggregate the cases
# again for every grid.
_COUNTED = """
t AS (SELECT g.code::bigint AS id, g.name, n.cases, n.overdue, g.geom
      FROM g CROSS JOIN LATERAL (
           SELECT count(*)::int AS cases, (count(*) FILTER (WHERE {overdue}))::int AS overdue
           FROM cases c WHERE c.grid_code = g.code AND {filters}) n)"""
# Under the map's default filter (every open case, nothing else): each grid's open cases and their
# stage deadlines kept in grid_open_cases (migration 0020), one row a grid instead of its cases. The
# grids are held to the caller's scope, and a case's areas are its grid's, so these are the counts of
# the cases the caller sees.
_KEPT = f"""{_counts_sql("", "", kept=True)},
t AS (SELECT g.code::bigint AS id, g.name, coalesce(n.cases, 0)::int AS cases, coalesce(n.overdue, 0)::int AS overdue,
             g.geom
      FROM g LEFT JOIN n ON n.grid_code = g.code)"""


def _default_filter(args: dict) -> bool:
    """The map's filters are the default: every open case and nothing else (the status set, if given, is
    every open state, and no other filter of TileQuery is given)."""
    return (not args.get("status") or set(args["status"]) == OPEN) and all(
        value in (None, []) for name, value in args.items() if name != "status")


def _cached_grids_tile(z: int, x: int, y: int, filters: str, overdue: str, params: dict,
                       kept: bool = False) -> bytes | None:
    """The tile made from the cached grids, filling the cache on a miss; None when the cache cannot
    answer (the grids changed meanwhile: the caller cuts the tile afresh). `kept`: the counts from
    grid_open_cases (the map's default filter)."""
    counted = _KEPT if kept else _COUNTED.format(overdue=overdue, filters=filters)
    cached = driver_sql(_CACHED.format(counted=counted, encode=_ENCODE))
    hit, tile = _run(cached, params).one()
    if hit:
        return bytes(tile or b"")
    fill = text(_FILL.format(name=_grid_name(z), extent=EXTENT, buffer=_BUFFER))
    # its own short transaction: the request's own is rolled back at its end (a read), and the
    # tile is kept for every server and every caller as soon as it is cut. It waits on a tile row
    # only while a grid change that emptied it commits (or forever, when that change is the caller's
    # own open transaction): past FILL_WAIT the tile is cut afresh, as the caller sees the grids.
    try:
        with db.engine.begin() as conn:
            conn.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": FILL_WAIT})
            any_grid = conn.execute(fill, {"z": z, "x": x, "y": y}).scalar_one()
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            return None
        raise
    if not any_grid:
        return b""  # no grid meets the tile: empty for every caller, and not kept
    hit, tile = _run(cached, params).one()
    return bytes(tile or b"") if hit else None


def grids_tile(z: int, x: int, y: int, args: dict, scope) -> bytes:
    """Layer `grids` (feature id: the grid's code as a number; name from GRID_NAME_ZOOM, cases,
    overdue) or, zoomed out, layer `bins` (grids, cases, overdue per square of BIN_PX pixels)."""
    filters, params = case_filters(args, scope)
    params.update(_params(z, x, y, scope))
    kept = _default_filter(args)
    if GRID_MIN_ZOOM <= z <= CACHE_MAX_ZOOM:
        tile = _cached_grids_tile(z, x, y, filters, _overdue(args), params, kept=kept)
        if tile is not None:
            return tile
    counts = _counts_sql(filters, _overdue(args), kept=kept)
    if z >= GRID_MIN_ZOOM:
        # the grids meeting the tile itself: one only in the buffer adds bytes and nothing drawn (the
        # console cuts every tile to its square); the code as the feature id is a varint, not a string
        # MATERIALIZED: the geometry is made once per grid, not again for the geom IS NOT NULL test
        sql = f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
        g AS (SELECT g.code, g.name, g.geom_3857 FROM grids g, b
              WHERE g.geom_3857 && b.e AND g.code LIKE ANY(:patterns)),
        {counts},
        u AS MATERIALIZED (
              SELECT g.code::bigint AS id, {_grid_name(z)} AS name, coalesce(n.cases, 0)::int AS cases,
                     coalesce(n.overdue, 0)::int AS overdue,
                     ST_AsMVTGeom(g.geom_3857, b.e, {EXTENT}, {_BUFFER}, true) AS geom
              FROM g CROSS JOIN b LEFT JOIN n ON n.grid_code = g.code),
        t AS (SELECT * FROM u WHERE geom IS NOT NULL)
        {_ENCODE}
        """
    else:
        cell = EXTENT * BIN_PX // TILE_PX
        sql = f"""
        WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e),
        g AS MATERIALIZED (
              SELECT g.code, ST_AsMVTGeom(ST_Centroid(g.geom_3857), b.e, {EXTENT}, 0, true) AS p
              FROM grids g, b WHERE g.geom_3857 && b.e AND g.code LIKE ANY(:patterns)),
        {counts},
        cells AS (SELECT floor(ST_X(g.p) / {cell})::int AS i, floor(ST_Y(g.p) / {cell})::int AS j,
                         count(*)::int AS grids, coalesce(sum(n.cases), 0)::int AS cases,
                         coalesce(sum(n.overdue), 0)::int AS overdue
                  FROM g LEFT JOIN n ON n.grid_code = g.code WHERE g.p IS NOT NULL GROUP BY 1, 2),
        t AS (SELECT grids, cases, overdue,
                     ST_MakeEnvelope(i * {cell}, j * {cell}, (i + 1) * {cell}, (j + 1) * {cell}) AS geom FROM cells)
        SELECT ST_AsMVT(t, 'bins', {EXTENT}, 'geom') FROM t
        """
    # planned for each tile: a generic plan (what a statement prepared by the driver gets after a few
    # uses) takes `g` for one grid and joins its thousands of grids in nested loops (0.7 s for a z12 tile)
    _run("SET LOCAL plan_cache_mode = force_custom_plan")
    return bytes(_run(driver_sql(sql), params).scalar_one() or b"")


def cases_tile(z: int, x: int, y: int, args: dict, scope) -> bytes:
    """Layer `cases`: points (id, number, status, category_code, urgency, escalation_level, overdue)
    from CASE_POINT_ZOOM; below it clusters (count, overdue, escalated, and the point's fields when
    the cluster holds one case)."""
    filters, params = case_filters(args, scope)
    params.update(_params(z, x, y, scope))
    points = f"""
    WITH {_BOUNDS},
    c AS (SELECT c.id, c.number, c.status, c.category_code, c.urgency, c.escalation_level,
                 {_overdue(args)} AS overdue,
                 ST_AsMVTGeom(ST_Transform(c.location, 3857), b.e, {EXTENT}, 0, true) AS geom
          FROM cases c, b WHERE c.location && b.e4326 AND {filters})
    """
    if z >= CASE_POINT_ZOOM:
        sql = points + f"SELECT ST_AsMVT(c, 'cases', {EXTENT}, 'geom') FROM c WHERE geom IS NOT NULL"
    else:
        sql, cells = _clusters(z, x, y, filters, args)
        params.update(cells)
        if _open_only(args):
            # the same plan for every tile (sixteen key ranges of one index): planned once per
            # connection, not for each tile (~0.3 ms of a ~2.3 ms statement); for this read only
            _run("SET LOCAL plan_cache_mode = force_generic_plan")
    return bytes(_run(driver_sql(sql), params).scalar_one() or b"")


def _run(sql: str, params: dict | None = None):
    """A tile's statement, in the driver's parameter style (core.db.driver_sql), in the request's
    transaction."""
    return db.session.connection().exec_driver_sql(sql, params)


def _clusters(z: int, x: int, y: int, filters: str, args: dict) -> tuple[str, dict]:
    """Cases counted per cell of CLUSTER_PX pixels (the tiles two zooms deeper): the statement and the
    tile's parameters of it. A cluster sits at the mean of its points and, when it holds one case,
    reads its number, status and category by id.

    Open cases come from ix_cases_open_tile alone (migration 0019 keeps every column read here beside
    the key): the cells follow each other in key order, each one range of keys, so a cell's thousands
    of cases are neighbouring index entries aggregated as they are read, with no table page and
    nothing to sort or hash. Other statuses are found by the tile's envelope, held to its own edges as
    its keys are (west and north in, east and south out), and put in cells by comparing each case
    with the cells' edges in degrees (web mercator is a lon/lat grid: columns are meridians, rows
    parallels), so no case is projected."""
    n = TILE_PX // CLUSTER_PX
    aggregates = f"""count(*)::int AS count, count(*) FILTER (WHERE {_overdue(args)})::int AS overdue,
                 max(c.escalation_level) AS escalated, CASE WHEN count(*) = 1 THEN min(c.id) END AS id,
                 avg(ST_X(c.location)) AS lon, avg(ST_Y(c.location)) AS lat"""
    if _open_only(args):
        lo, hi = tile_key_range(z, x, y)
        params = {"key_lo": lo, "key_cell": (hi - lo) // n ** 2}
        key = tile_key_sql("c")
        cells = f"""
          SELECT k.* FROM generate_series(0, {n * n - 1}) i CROSS JOIN LATERAL (
                 SELECT {aggregates} FROM cases c
                 WHERE {key} >= :key_lo + i * :key_cell AND {key} < :key_lo + (i + 1) * :key_cell AND {filters}) k
          WHERE k.count > 0"""
    else:
        tiles = 2 ** z

        def lat(row: float) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / tiles))))
        # the tile's edges, and the latitudes between its rows of cells, south to north
        params = {"lon0": x / tiles * 360 - 180, "lon1": (x + 1) / tiles * 360 - 180, "lat0": lat(y + 1),
                  "lat1": lat(y), "rows": [lat(y + 1 - k / n) for k in range(1, n)]}
        cells = f"""
          SELECT {aggregates} FROM cases c
          WHERE c.location && ST_MakeEnvelope(:lon0, :lat0, :lon1, :lat1, 4326) AND ST_X(c.location) >= :lon0
            AND ST_X(c.location) < :lon1 AND ST_Y(c.location) > :lat0 AND ST_Y(c.location) <= :lat1 AND {filters}
          GROUP BY floor((ST_X(c.location) - :lon0) / (:lon1 - :lon0) * {n}),
                   width_bucket(ST_Y(c.location), CAST(:rows AS float8[]))"""
    return f"""
    WITH k AS ({cells}),
    t AS (SELECT k.count, k.overdue, k.escalated, k.id, s.number, s.status, s.category_code,
                 ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(k.lon, k.lat), 4326), 3857),
                              ST_TileEnvelope(:z, :x, :y), {EXTENT}, 0, true) AS geom
          FROM k LEFT JOIN cases s ON s.id = k.id)
    SELECT ST_AsMVT(t, 'cases', {EXTENT}, 'geom') FROM t WHERE geom IS NOT NULL
    """, params


def extent(scope) -> dict:
    """The bounding box of the grids in scope (where a map opens) and how many there are."""
    row = db.session.execute(text("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), n
        FROM (SELECT ST_Extent(geom) AS e, count(*) AS n FROM grids WHERE code LIKE ANY(:patterns)) s
    """), {"patterns": like_patterns(scope)}).one()
    bbox = None if row[0] is None else [round(float(v), 7) for v in row[:4]]
    return {"bbox": bbox, "grids": row[4]}


def areas(scope) -> list[dict]:
    """Districts, streets and communities in scope, and the coarser ones containing the scope."""
    rows = db.session.execute(text("""
        SELECT code, level, name, name_en, parent_code FROM admin_areas a
        WHERE a.code LIKE ANY(:patterns) OR EXISTS (SELECT 1 FROM unnest(CAST(:scope AS text[])) s
                                                   WHERE s LIKE a.code || '%')
        ORDER BY code
    """), {"patterns": like_patterns(scope), "scope": list(scope)}).mappings().all()
    return [dict(r) for r in rows]


def grid_names(codes: list[str], scope) -> dict[str, str]:
    return dict(db.session.execute(text(
        "SELECT code, name FROM grids WHERE code = ANY(:codes) AND code LIKE ANY(:patterns)"),
        {"codes": list(codes), "patterns": like_patterns(scope)}).all())
