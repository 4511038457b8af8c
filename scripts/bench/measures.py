"""The latency measures of the suite that are not throughput under wrk: one keep-alive client asking
a set of paths in turn (tiles, GeoJSON, KPIs, the cases list over filter combinations, duplicates),
the plans of the SQL those requests send, and the memory of the server's processes.

Used by bench.py; every function takes the port and the bench user's token.
"""
import gzip
import http.client
import math
import os
import re
import time

import psycopg

ZOOM = 14
LATTICE = (121.0, 31.0, 121.42, 31.225)  # generate.py / sql/grids.sql


def pct(xs: list[float], p: float):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3) if xs else None


def sequential(port: int, token: str, paths: list[str], seconds: float, min_requests: int = 5,
               max_requests: int = 100_000, gzip_ok: bool = True) -> dict:
    """One client, one keep-alive connection, the paths in turn for `seconds` (at least min_requests,
    at most max_requests): latency per request (ms), bytes on the wire and uncompressed. A request not
    answered in 120 s ends the measure, counted at 120 s (`statuses: {"timeout": 1}`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    lat, wire, raw, statuses = [], [], [], {}
    per_path = {p: [] for p in paths}
    end = time.perf_counter() + seconds
    i = 0
    while i < max_requests and (i < min_requests or time.perf_counter() < end):
        path = paths[i % len(paths)]
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
        except TimeoutError:  # no answer within the client's timeout: counted at the timeout, and the end
            lat.append((time.perf_counter() - t) * 1000)
            per_path[path].append(lat[-1])
            statuses["timeout"] = statuses.get("timeout", 0) + 1
            break
        ms = (time.perf_counter() - t) * 1000
        lat.append(ms)
        per_path[path].append(ms)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        wire.append(len(body))
        raw.append(len(gzip.decompress(body)) if r.getheader("Content-Encoding") == "gzip" else len(body))
        i += 1
    conn.close()
    return {"kind": "http-1", "clients": 1, "requests": len(lat), "paths": len(paths),
            "non_2xx": sum(n for s, n in statuses.items() if s == "timeout" or not 200 <= s < 300),
            "statuses": statuses,
            "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99), "max_ms": pct(lat, 100),
            "throughput_per_s": round(len(lat) / max(sum(lat) / 1000, 1e-9), 1),
            "bytes_wire_median": pct(wire, 50), "bytes_raw_median": pct(raw, 50),
            "bytes_wire_total": sum(wire), "bytes_raw_total": sum(raw),
            "per_path": {p: {"requests": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95)}
                         for p, v in per_path.items()}}


# ---------------------------------------------------------------- tiles

def _tile_x(lon, n):
    return (lon + 180) / 360 * n


def _tile_y(lat, n):
    return (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n


def inner_tiles(z: int = ZOOM) -> list[tuple[int, int, int]]:
    """The tiles at zoom z lying wholly inside the grid lattice."""
    n = 2 ** z
    x0, y0, x1, y1 = LATTICE
    return [(z, x, y) for x in range(math.ceil(_tile_x(x0, n)), math.floor(_tile_x(x1, n)))
            for y in range(math.ceil(_tile_y(y1, n)), math.floor(_tile_y(y0, n)))]


def tile_bbox(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2 ** z

    def lat(yy):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / n))))
    return (x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y))


def tile_paths(kind: str) -> list[str]:
    return [f"/api/v1/tiles/{kind}/{z}/{x}/{y}.mvt" for z, x, y in inner_tiles()]


def geojson_paths() -> list[str]:
    """GET /api/v1/grids for the same extents as the grid tiles."""
    return ["/api/v1/grids?bbox=" + ",".join(f"{v:.7f}" for v in tile_bbox(*t)) for t in inner_tiles()]


# ---------------------------------------------------------------- plans

CASES_SQL = re.compile(r"\b(FROM|JOIN)\s+(cases|kpi_facts)\b", re.I)  # the KPI rollup reads kpi_facts


def plans(dsn: str, token: str, paths: list[str]) -> dict:
    """The SQL statements on `cases` that each path sends (asked once in process through the Flask
    test client, the whole stack), then EXPLAIN (ANALYZE, BUFFERS) of each with the same parameters."""
    os.environ["DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    from sqlalchemy import event

    from gridpatrol import create_app
    from gridpatrol.extensions import db
    app = create_app({"REQUEST_STATEMENT_TIMEOUT_S": 120})  # as the suite's server (bench.Server)
    with app.app_context():
        engine = db.engine
    seen: list[tuple[str, object]] = []
    listener = (lambda conn, cursor, statement, parameters, context, executemany:
                seen.append((statement, parameters)))
    event.listen(engine, "before_cursor_execute", listener)
    client = app.test_client()
    out = {}
    try:
        for path in paths:
            seen.clear()
            status = client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code
            statements = [(s, p) for s, p in seen if CASES_SQL.search(s) and s.lstrip().upper().startswith(("SELECT", "WITH"))]
            out[path] = {"status": status, "statements": []}
            with psycopg.connect(dsn) as c:
                for sql, params in statements:
                    rows = c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or None).fetchall()
                    plan = [r[0] for r in rows]
                    exec_ms = next((float(m.group(1)) for line in plan
                                    if (m := re.search(r"Execution Time: ([\d.]+) ms", line))), None)
                    out[path]["statements"].append({"sql": sql, "params": {k: str(v)[:200] for k, v in (params or {}).items()}
                                                    if isinstance(params, dict) else str(params)[:400],
                                                    "plan": plan, "execution_ms": exec_ms})
            out[path]["seq_scan_on_cases"] = any("Seq Scan on cases" in line for st in out[path]["statements"]
                                                 for line in st["plan"])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return out


# ---------------------------------------------------------------- memory

def descendants(pid: int) -> list[int]:
    """pid's child processes, recursively (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            try:
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def memory(pid: int) -> dict:
    """VmRSS / VmHWM (peak) / RssAnon of the server process (gunicorn's arbiter) and each worker, MB."""
    def status(p):
        fields = {}
        with open(f"/proc/{p}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = round(int(value.split()[0]) / 1024, 1)
        return fields
    def rollup(p):
        """Pss (shared pages divided among their sharers) and private pages, from smaps_rollup."""
        fields = {}
        with open(f"/proc/{p}/smaps_rollup") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    fields[key] = int(value.split()[0])
        return {"Pss": round(fields.get("Pss", 0) / 1024, 1),
                "Private": round((fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024, 1)}
    out = {"arbiter": {"pid": pid, **status(pid)}, "workers": []}
    for p in descendants(pid):
        try:
            out["workers"].append({"pid": p, **status(p), **rollup(p)})
        except OSError:
            pass
    ws = out["workers"]
    out["max_rss_mb"] = max((w["VmRSS"] for w in ws), default=None)
    out["max_hwm_mb"] = max((w["VmHWM"] for w in ws), default=None)
    out["max_pss_mb"] = max((w["Pss"] for w in ws), default=None)
    out["max_private_mb"] = max((w["Private"] for w in ws), default=None)
    return out
