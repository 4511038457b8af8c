"""The z14 grid tile against the GeoJSON of the same extent, one keep-alive client as bench.py asks
them (measures.sequential over measures.tile_paths / geojson_paths), in alternating rounds so both
see the same load on the machine; then a check that every tile as served equals a freshly encoded
one (the served tiles read again after the cache is emptied).

    python scripts/bench/tile_cache_check.py --port 5091 --dsn postgresql://postgres@127.0.0.1:54329/gp_tiles_bench_test

Needs a `gridpatrol serve` on the port over a database made like gridpatrol_bench (sql/grids.sql,
some cases, the bench user). Prints p50 / p95 per round and overall, and the ratio GeoJSON / tile.
With --baseline-port, a second server (another build on the same database) is measured in the same
rounds, for a before / after in the same minutes.
"""
import argparse
import hashlib
import http.client
import json
import statistics
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402
import measures  # noqa: E402


def token(port: int) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/v1/auth/token", body=json.dumps(
        {"username": generate.BENCH_USER, "password": generate.BENCH_PASSWORD}),
        headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    return data["access_token"]


def bodies(port: int, tok: str, paths: list[str]) -> dict[str, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = {}
    for p in paths:
        c.request("GET", p, headers={"Authorization": f"Bearer {tok}"})
        r = c.getresponse()
        out[p] = hashlib.sha256(r.read()).hexdigest() if r.status == 200 else f"status {r.status}"
    c.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5091)
    ap.add_argument("--baseline-port", type=int, help="another server on the same database, measured alike")
    ap.add_argument("--dsn", required=True, help="the served database (to empty the tile cache for the check)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0, help="per layer per round")
    args = ap.parse_args()

    tok = token(args.port)
    tiles, geojson = measures.tile_paths("grids"), measures.geojson_paths()
    print(f"{len(tiles)} z14 tiles")
    servers = {"": args.port} if args.baseline_port is None else {"after ": args.port, "before": args.baseline_port}
    p50 = {name: ([], []) for name in servers}
    for i in range(args.rounds):
        for name, port in servers.items():
            t = measures.sequential(port, tok, tiles, args.seconds)
            g = measures.sequential(port, tok, geojson, args.seconds)
            p50[name][0].append(t["p50_ms"])
            p50[name][1].append(g["p50_ms"])
            print(f"round {i + 1} {name}: tile p50 {t['p50_ms']} p95 {t['p95_ms']} ms ({t['requests']} req, "
                  f"non-2xx {t['non_2xx']}, wire median {t['bytes_wire_median']} B); GeoJSON p50 {g['p50_ms']} "
                  f"p95 {g['p95_ms']} ms ({g['requests']} req); ratio {g['p50_ms'] / t['p50_ms']:.2f}x", flush=True)
    for name, (t_all, g_all) in p50.items():
        t50, g50 = statistics.median(t_all), statistics.median(g_all)
        print(f"median of rounds {name}: tile p50 {t50} ms, GeoJSON p50 {g50} ms, GeoJSON / tile {g50 / t50:.2f}x")

    served = bodies(args.port, tok, tiles)
    with psycopg.connect(args.dsn, autocommit=True) as c:
        has_cache = c.execute("SELECT to_regclass('grid_tile_cache') IS NOT NULL").fetchone()[0]
        if has_cache:
            c.execute("DELETE FROM grid_tile_cache")
    fresh = bodies(args.port, tok, tiles)
    differ = [p for p in tiles if served[p] != fresh[p]]
    print(f"served vs freshly encoded ({'cache emptied' if has_cache else 'no cache table'}): "
          f"{len(tiles) - len(differ)} equal, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
