"""Benchmark: the map's vector tiles for a city of 100,000 unit grids.

    python -m gridpatrol.maps.bench --database-url postgresql+psycopg://postgres@127.0.0.1:54329/gp_tiles_bench

The database named (its name must end in `_bench`: it is dropped and made again) gets the schema,
the catalog, a lattice of square grids of about 100 m (codes in 100 streets × 10 communities) and
open cases spread over them, then every tile a 1366×768 map needs is asked for over HTTP (the whole
WSGI stack, gzip included) at the zooms a desk uses: the whole city (bins), a district, a street and
a few communities (grids). It prints, per zoom and layer, the tiles, their time (median, 95th
percentile, worst) and sizes, and exits non-zero when a tile takes longer than --budget-ms.
"""
import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from .services import TILE_PX

VIEW = (1366 - 250, 768 - 44)  # the map page's canvas at a 1366×768 desk


def _tiles_for_view(lon: float, lat: float, zoom: int) -> list[tuple[int, int, int]]:
    n = 2 ** zoom
    cx = (lon + 180) / 360 * n * TILE_PX
    cy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n * TILE_PX
    x0, x1 = int((cx - VIEW[0] / 2) // TILE_PX), int((cx + VIEW[0] / 2) // TILE_PX)
    y0, y1 = int((cy - VIEW[1] / 2) // TILE_PX), int((cy + VIEW[1] / 2) // TILE_PX)
    return [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _recreate(url: str) -> None:
    u = make_url(url)
    if not u.database.endswith("_bench"):
        sys.exit("the benchmark database's name must end in _bench (it is dropped)")
    admin = u.set(database="postgres", drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{u.database}"')


def build(app, grids: int, cases: int, lon0: float, lat0: float) -> None:
    from flask_migrate import upgrade

    from ..catalog import services as catalog
    from ..extensions import db

    side = math.ceil(math.sqrt(grids))
    d = 0.00105  # about 100 m north–south, 90 m east–west at 31°N
    with app.app_context():
        upgrade()
        geodata = Path(app.config["GEODATA_DIR"])
        catalog.load_catalog(json.loads((geodata / "catalog.json").read_text()))
        catalog.load_calendar(json.loads((geodata / "calendar.json").read_text()))
        db.session.execute(text("""
            INSERT INTO admin_areas (code, level, name, parent_code) VALUES ('970001', 'district', 'bench district', NULL);
            INSERT INTO admin_areas (code, level, name, parent_code)
              SELECT '970001' || lpad(s::text, 3, '0'), 'street', 'street ' || s, '970001' FROM generate_series(1, 100) s;
            INSERT INTO admin_areas (code, level, name, parent_code)
              SELECT '970001' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0'), 'community', 'community ' || s || '-' || c,
                     '970001' || lpad(s::text, 3, '0')
              FROM generate_series(1, 100) s, generate_series(1, 10) c;
        """))
        # cell k (row-major over a side×side lattice) → street, community, sequence: 100 grids a community
        db.session.execute(text("""
            INSERT INTO grids (code, name, district_code, street_code, community_code, geom, area_m2)
            SELECT code, 'grid ' || code, left(code, 6), left(code, 9), left(code, 12), geom, ST_Area(geom::geography)
            FROM (
              SELECT '970001' || lpad((k / 1000 + 1)::text, 3, '0') || lpad((k / 100 % 10 + 1)::text, 3, '0')
                     || lpad((k % 100 + 1)::text, 3, '0') AS code,
                     ST_MakeEnvelope(:lon0 + (k % :side) * :d, :lat0 - (k / :side + 1) * :d,
                                     :lon0 + (k % :side + 1) * :d, :lat0 - (k / :side) * :d, 4326) AS geom
              FROM generate_series(0, :n - 1) k) g
        """), {"lon0": lon0, "lat0": lat0, "side": side, "d": d, "n": grids})
        db.session.execute(text("""
            INSERT INTO cases (number, status, category_code, urgency, description, location, accuracy_m, grid_code,
                               district_code, street_code, community_code, source, reported_at, updated_at, version,
                               stage_started_at, stage_deadline)
            SELECT 'B' || lpad(i::text, 12, '0'), (ARRAY['reported','registered','returned'])[1 + i % 3],
                   '0701', 'B', 'bench', ST_Centroid(g.geom), 5, g.code, g.district_code, g.street_code, g.community_code,
                   'inspector', now() - (i % 720) * interval '1 hour', now(), 1,
                   now() - (i % 720) * interval '1 hour', now() + ((i % 7) - 3) * interval '1 day'
            FROM generate_series(1, :cases) i
            JOIN grids g ON g.code = '970001' || lpad(((i * 7919) % :n / 1000 + 1)::text, 3, '0')
                 || lpad(((i * 7919) % :n / 100 % 10 + 1)::text, 3, '0') || lpad(((i * 7919) % :n % 100 + 1)::text, 3, '0')
        """), {"cases": cases, "n": grids})
        db.session.commit()
        db.session.execute(text("ANALYZE grids; ANALYZE cases"))
        db.session.commit()


def run(app, lon0: float, lat0: float, side_deg: float, budget_ms: float) -> bool:
    from ..auth import services as auth
    from ..auth.models import User
    from ..extensions import db

    with app.app_context():
        if db.session.query(User).filter_by(username="bench").first() is None:
            auth.create_user(username="bench", password="Bench-pass-2026", display_name="bench", roles=["supervisor"],
                             scope=["970001"], team_ids=[], grid_codes=[])
            db.session.commit()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "bench", "password": "Bench-pass-2026"}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept-Encoding": "gzip"}
    centre = (lon0 + side_deg / 2, lat0 - side_deg / 2)
    views = [("whole city", 11), ("city", 12), ("district", 13), ("street", 14), ("communities", 15), ("block", 16)]
    ok = True
    print(f"{'view':<12} {'zoom':>4} {'layer':<6} {'tiles':>5} {'median ms':>9} {'p95 ms':>7} {'worst ms':>8} "
          f"{'median kB':>9} {'largest kB':>10}")
    for name, zoom in views:
        tiles = _tiles_for_view(*centre, zoom)
        for kind in ("grids", "cases"):
            times, sizes = [], []
            for z, x, y in tiles:
                t0 = time.perf_counter()
                r = client.get(f"/api/v1/tiles/{kind}/{z}/{x}/{y}.mvt", headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.status_code
                sizes.append(len(r.get_data()) / 1024)
            times.sort()
            p95 = times[min(len(times) - 1, int(math.ceil(len(times) * 0.95)) - 1)]
            print(f"{name:<12} {zoom:>4} {kind:<6} {len(tiles):>5} {statistics.median(times):>9.0f} {p95:>7.0f} "
                  f"{times[-1]:>8.0f} {statistics.median(sizes):>9.1f} {max(sizes):>10.1f}")
            ok &= times[-1] <= budget_ms
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--budget-ms", type=float, default=1000.0, help="the slowest tile allowed")
    parser.add_argument("--keep", action="store_true", help="reuse the database as it is (built before)")
    args = parser.parse_args(argv)

    from .. import create_app

    lon0, lat0 = 121.0, 31.5
    if not args.keep:
        _recreate(args.database_url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url})
    side_deg = math.ceil(math.sqrt(args.grids)) * 0.00105
    if not args.keep:
        t0 = time.perf_counter()
        build(app, args.grids, args.cases, lon0, lat0)
        print(f"built {args.grids:,} grids and {args.cases:,} open cases in {time.perf_counter() - t0:.0f} s")
    ok = run(app, lon0, lat0, side_deg, args.budget_ms)
    print("within the budget" if ok else f"SLOWER than the budget of {args.budget_ms:.0f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
