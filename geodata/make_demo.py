#!/usr/bin/env python3
"""Generate the fictional demo district 示范区 (Demo District, 310199).

Writes, next to this file:
  demo_district.geojson  about 2,000 unit grids (EPSG:4326, lon/lat, 7 decimals)
  areas.json             district -> street -> community hierarchy

Deterministic: a fixed seed, no network.  Run: python geodata/make_demo.py
The script re-reads what it wrote and asserts the invariants the importer relies on,
so a change to the generator that breaks them fails here rather than in a test.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import re
from collections import defaultdict, deque
from pathlib import Path

from shapely.geometry import Polygon, shape
from shapely.ops import unary_union
from shapely.strtree import STRtree

HERE = Path(__file__).resolve().parent
GEOJSON_PATH = HERE / "demo_district.geojson"
AREAS_PATH = HERE / "areas.json"

SEED = 310199
DISTRICT_CODE = "310199"
DISTRICT_NAME = "示范区"
DISTRICT_NAME_EN = "Demo District"
LON0, LAT0 = 121.46, 31.22
EARTH_R = 6_371_008.8  # mean Earth radius, m

TARGET_GRIDS = 2000
N_STREETS = 9
COMMUNITY_MIN, COMMUNITY_MAX = 25, 60
COMMUNITIES_PER_STREET = (4, 8)
GRID_AREA_MIN, GRID_AREA_MAX = 6_000.0, 16_000.0
MAX_OVERLAP_M2 = 0.01

# Lattice lines stand in for roads: uneven spacing looks like a real street plan, and the
# vertex jitter keeps every cell a convex-ish quad well inside the 6,000-16,000 m² band.
SPACING_MIN, SPACING_MAX = 88.0, 114.0
VERTEX_JITTER = 9.0
LATTICE_N = 72  # columns and rows; generously larger than the outline so it never clips

# Streets: (zh, en).  滨江 goes to the easternmost street (the river side); the rest are
# handed out in code order.  All fictional.
STREET_NAMES = [
    ("滨江街道", "Binjiang Subdistrict"),
    ("望湖路街道", "Wanghu Road Subdistrict"),
    ("青枫街道", "Qingfeng Subdistrict"),
    ("石桥街道", "Shiqiao Subdistrict"),
    ("丰盛里街道", "Fengshengli Subdistrict"),
    ("明珠湾街道", "Mingzhuwan Subdistrict"),
    ("长乐坊街道", "Changlefang Subdistrict"),
    ("锦绣路街道", "Jinxiu Road Subdistrict"),
    ("听涛街道", "Tingtao Subdistrict"),
    ("云台街道", "Yuntai Subdistrict"),
]

# Community stems in the styles Shanghai residents' committees use: plants and virtues,
# old village names (X家宅/弄/浜), 新村 estates, 苑 compounds, 里/坊 lane houses.
COMMUNITY_STEMS = [
    ("梧桐", "Wutong"), ("银杏", "Yinxing"), ("香樟", "Xiangzhang"), ("玉兰", "Yulan"),
    ("紫藤", "Ziteng"), ("海棠", "Haitang"), ("桂花", "Guihua"), ("翠竹", "Cuizhu"),
    ("松柏", "Songbai"), ("芙蓉", "Furong"), ("丁香", "Dingxiang"), ("蔷薇", "Qiangwei"),
    ("樱花", "Yinghua"), ("青松", "Qingsong"), ("杨柳", "Yangliu"), ("荷塘", "Hetang"),
    ("柳岸", "Liu'an"), ("兰亭", "Lanting"), ("春晖", "Chunhui"), ("朝阳", "Chaoyang"),
    ("晨曦", "Chenxi"), ("安居", "Anju"), ("康乐", "Kangle"), ("福寿", "Fushou"),
    ("永安", "Yong'an"), ("光明", "Guangming"), ("友谊", "Youyi"), ("幸福", "Xingfu"),
    ("明德", "Mingde"), ("崇文", "Chongwen"), ("尚贤", "Shangxian"), ("仁和", "Renhe"),
    ("嘉禾", "Jiahe"), ("丰泽", "Fengze"), ("润园", "Runyuan"), ("怡景", "Yijing"),
    ("静波", "Jingbo"), ("澄园", "Chengyuan"), ("清水湾", "Qingshuiwan"), ("花园坊", "Huayuanfang"),
    ("沈家弄", "Shenjianong"), ("陆家宅", "Lujiazhai"), ("张家浜", "Zhangjiabang"),
    ("徐家塘", "Xujiatang"), ("顾家桥", "Gujiaqiao"), ("曹家巷", "Caojiaxiang"),
    ("王家弄", "Wangjianong"), ("周家湾", "Zhoujiawan"), ("工农新村", "Gongnong Xincun"),
    ("曙光新村", "Shuguang Xincun"), ("建国新村", "Jianguo Xincun"), ("红星新村", "Hongxing Xincun"),
    ("东风新村", "Dongfeng Xincun"), ("枫丹苑", "Fengdanyuan"), ("翠湖苑", "Cuihuyuan"),
    ("碧波苑", "Bibo Yuan"), ("绿洲苑", "Lüzhouyuan"), ("星河苑", "Xingheyuan"),
    ("云锦苑", "Yunjinyuan"), ("水岸苑", "Shui'anyuan"), ("德润里", "Derunli"),
    ("宝庆里", "Baoqingli"), ("福源坊", "Fuyuanfang"), ("恒丰里", "Hengfengli"),
    ("永乐坊", "Yonglefang"), ("同福里", "Tongfuli"), ("积善里", "Jishanli"),
    ("临江路", "Linjiang Road"), ("望江路", "Wangjiang Road"), ("云台路", "Yuntai Road"),
    ("长堤", "Changdi"), ("新桥", "Xinqiao"), ("南塘", "Nantang"), ("北苑", "Beiyuan"),
]

M_PER_DEG_LAT = EARTH_R * math.pi / 180.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    return (round(LON0 + x / M_PER_DEG_LON, 7), round(LAT0 + y / M_PER_DEG_LAT, 7))


def to_metres(lon: float, lat: float) -> tuple[float, float]:
    # Equirectangular around the district centre: over ~6 km the scale error is < 0.1 %,
    # far below the area tolerances checked here.
    return ((lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT)


# --------------------------------------------------------------------------- lattice

def build_lattice(rng: random.Random):
    """Shared vertices, so neighbouring cells have bit-identical edges after rounding."""
    def edges():
        pos, out = 0.0, [0.0]
        for _ in range(LATTICE_N):
            pos += rng.uniform(SPACING_MIN, SPACING_MAX)
            out.append(pos)
        mid = out[-1] / 2
        return [p - mid for p in out]

    xs, ys = edges(), edges()
    verts = {}
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            verts[i, j] = (x + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER),
                           y + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER))
    centres = {}
    for i in range(LATTICE_N):
        for j in range(LATTICE_N):
            pts = [verts[i, j], verts[i + 1, j], verts[i + 1, j + 1], verts[i, j + 1]]
            centres[i, j] = (sum(p[0] for p in pts) / 4, sum(p[1] for p in pts) / 4)
    return verts, centres


def neighbours(c):
    i, j = c
    return ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1))


def blob_cells(rng: random.Random, centres) -> set:
    """Cells inside an irregular star-shaped outline, scaled to about TARGET_GRIDS cells."""
    tilt = rng.uniform(0, math.pi)
    harmonics = [(k, rng.uniform(0.03, 0.09), rng.uniform(0, 2 * math.pi)) for k in range(2, 7)]

    def radius(theta: float) -> float:
        # An ellipse (districts tend to be elongated along a river or main road) with a
        # few low harmonics for bays and bulges.
        a, b = 1.25, 0.8
        t = theta - tilt
        ellipse = a * b / math.hypot(b * math.cos(t), a * math.sin(t))
        return ellipse * (1 + sum(amp * math.sin(k * theta + ph) for k, amp, ph in harmonics))

    def cells_at(scale: float) -> set:
        inside = {c for c, (x, y) in centres.items()
                  if math.hypot(x, y) < scale * radius(math.atan2(y, x))}
        return fill_holes(largest_component(inside))

    lo, hi = 500.0, 4000.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cells = cells_at(mid)
        if abs(len(cells) - TARGET_GRIDS) <= TARGET_GRIDS // 100:
            return cells
        lo, hi = (mid, hi) if len(cells) < TARGET_GRIDS else (lo, mid)
    raise AssertionError("could not hit the target grid count")


def largest_component(cells: set) -> set:
    seen, best = set(), set()
    for start in sorted(cells):
        if start in seen:
            continue
        comp, queue = {start}, deque([start])
        while queue:
            for n in neighbours(queue.popleft()):
                if n in cells and n not in comp:
                    comp.add(n)
                    queue.append(n)
        seen |= comp
        if len(comp) > len(best):
            best = comp
    return best


def fill_holes(cells: set) -> set:
    """A district has no enclaves: any empty cell unreachable from outside joins it."""
    outside, queue = set(), deque([(-1, -1)])
    outside.add((-1, -1))
    while queue:
        for n in neighbours(queue.popleft()):
            i, j = n
            if -1 <= i <= LATTICE_N and -1 <= j <= LATTICE_N and n not in cells and n not in outside:
                outside.add(n)
                queue.append(n)
    every = {(i, j) for i in range(LATTICE_N) for j in range(LATTICE_N)}
    return cells | (every - outside)


# ------------------------------------------------------------------------ partition

def grow(cells: set, anchors: list, scales: list, centres) -> list[set]:
    """Grow regions from anchor points through 4-adjacency, nearest (scaled) claim first.

    A cell joins the region that reaches it with the smallest distance-to-anchor / scale,
    which approximates a multiplicatively weighted Voronoi split (compact parts) while the
    growth through neighbours alone guarantees every part is contiguous.
    """
    owner, heap = {}, []
    for r, (ax, ay) in enumerate(anchors):
        start = min(cells, key=lambda c: (centres[c][0] - ax) ** 2 + (centres[c][1] - ay) ** 2)
        heapq.heappush(heap, (0.0, r, start))
    while heap:
        _, r, cell = heapq.heappop(heap)
        if cell in owner:
            continue
        owner[cell] = r
        ax, ay = anchors[r]
        for n in neighbours(cell):
            if n in cells and n not in owner:
                heapq.heappush(heap, (math.hypot(centres[n][0] - ax, centres[n][1] - ay) / scales[r], r, n))
    regions = [set() for _ in anchors]
    for cell, r in owner.items():
        regions[r].add(cell)
    return regions


def partition(cells: set, k: int, rng: random.Random, centres, size_ok) -> list[set] | None:
    """Split a 4-connected set of cells into k contiguous, compact, roughly balanced parts.

    Anchors start from k-means on cell centres; then, alternately, each anchor moves to
    its region's centroid (Lloyd step, for compactness) and each region's scale is nudged
    towards its target size (for balance).  Targets vary by ±15 % so that parts are not
    suspiciously uniform.  Returns None if no split meets size_ok (caller retries).
    """
    ordered = sorted(cells)
    anchors = [centres[c] for c in rng.sample(ordered, k)]
    for _ in range(15):
        groups = defaultdict(list)
        for c in ordered:
            x, y = centres[c]
            groups[min(range(k), key=lambda m: (x - anchors[m][0]) ** 2 + (y - anchors[m][1]) ** 2)].append(c)
        anchors = [centroid(g, centres) if (g := groups.get(m)) else anchors[m] for m in range(k)]

    weights = [rng.uniform(0.85, 1.15) for _ in range(k)]
    targets = [len(cells) * w / sum(weights) for w in weights]
    scales = [1.0] * k
    for _ in range(80):
        regions = grow(cells, anchors, scales, centres)
        if all(size_ok(len(r)) for r in regions) and all(
                abs(len(r) - t) <= 0.08 * t for r, t in zip(regions, targets)):
            return regions
        anchors = [centroid(r, centres) if r else a for r, a in zip(regions, anchors)]
        scales = [s * (t / max(len(r), 1)) ** 0.3 for s, r, t in zip(scales, regions, targets)]
    return None


def centroid(cells, centres) -> tuple[float, float]:
    return (sum(centres[c][0] for c in cells) / len(cells), sum(centres[c][1] for c in cells) / len(cells))


def reading_order_key(cells: set, centres, band_m: float):
    """North to south in bands, west to east within a band (the grid-code convention)."""
    x, y = centroid(cells, centres)
    return (-round(y / band_m), x)


def build_hierarchy(district: set, rng: random.Random, centres):
    lo, hi = COMMUNITIES_PER_STREET

    def street_ok(n: int) -> bool:
        # Headroom inside 25-60 per community, so any street in range splits into 4-8 of them.
        return lo * 32 <= n <= hi * 52

    def community_ok(n: int) -> bool:
        return COMMUNITY_MIN <= n <= COMMUNITY_MAX

    for _ in range(50):
        streets = partition(district, N_STREETS, rng, centres, street_ok)
        if streets is None:
            continue
        result = []
        for street in streets:
            n = min(max(round(len(street) / 42), lo), hi)
            comms = next((p for _ in range(50)
                          if (p := partition(street, n, rng, centres, community_ok)) is not None), None)
            if comms is None:
                break
            result.append(comms)
        else:
            return streets, result
    raise AssertionError("no acceptable street/community split found")


# --------------------------------------------------------------------------- output

def generate():
    rng = random.Random(SEED)
    verts, centres = build_lattice(rng)
    district = blob_cells(rng, centres)
    streets, communities = build_hierarchy(district, rng, centres)

    order = sorted(range(len(streets)), key=lambda s: reading_order_key(streets[s], centres, 1000.0))
    easternmost = max(order, key=lambda s: centroid(streets[s], centres)[0])
    other_names = iter(STREET_NAMES[1:])
    stems = COMMUNITY_STEMS[:]
    rng.shuffle(stems)
    stems_iter = iter(stems)

    areas = [{"code": DISTRICT_CODE, "level": "district", "name": DISTRICT_NAME,
              "name_en": DISTRICT_NAME_EN, "parent_code": None}]
    features = []
    for s_no, s in enumerate(order, start=1):
        street_code = f"{DISTRICT_CODE}{s_no:03d}"
        s_zh, s_en = STREET_NAMES[0] if s == easternmost else next(other_names)
        areas.append({"code": street_code, "level": "street", "name": s_zh, "name_en": s_en,
                      "parent_code": DISTRICT_CODE})
        comms = sorted(communities[s], key=lambda c: reading_order_key(c, centres, 300.0))
        for c_no, comm in enumerate(comms, start=1):
            community_code = f"{street_code}{c_no:03d}"
            stem_zh, stem_en = next(stems_iter)
            c_zh, c_en = f"{stem_zh}社区", f"{stem_en} Community"
            areas.append({"code": community_code, "level": "community", "name": c_zh,
                          "name_en": c_en, "parent_code": street_code})
            # Lattice rows run west-east, so sorting by (row from the north, column from the
            # west) gives the code convention "west to east, then north to south".
            for seq, (i, j) in enumerate(sorted(comm, key=lambda c: (-c[1], c[0])), start=1):
                ring = [to_lonlat(*verts[v]) for v in ((i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1))]
                ring.append(ring[0])  # counter-clockwise exterior, as RFC 7946 recommends
                features.append({
                    "type": "Feature",
                    "properties": {
                        "code": f"{community_code}{seq:03d}",
                        "name": f"{s_zh} {c_zh} 第{seq:03d}网格",
                        "street_code": street_code,
                        "community_code": community_code,
                        "street_name": s_zh,
                        "community_name": c_zh,
                    },
                    "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
                })
    return features, areas


def write(features, areas):
    # One feature per line: small enough (no indentation) yet diffs stay readable.
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    with GEOJSON_PATH.open("w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","name":"demo_district_310199","features":[\n')
        fh.write(",\n".join(lines))
        fh.write("\n]}\n")
    with AREAS_PATH.open("w", encoding="utf-8") as fh:
        json.dump(areas, fh, ensure_ascii=False, indent=1)
        fh.write("\n")


# --------------------------------------------------------------------------- checks

def metric_polygon(coords) -> Polygon:
    return Polygon([to_metres(lon, lat) for lon, lat in coords[0]])


def check():
    """Assert on the files as written, not on the in-memory objects."""
    fc = json.loads(GEOJSON_PATH.read_text(encoding="utf-8"))
    areas = json.loads(AREAS_PATH.read_text(encoding="utf-8"))
    feats = fc["features"]
    assert fc["type"] == "FeatureCollection"
    assert GEOJSON_PATH.stat().st_size < 3_000_000, "geojson too large"

    code_re = re.compile(r"^\d{15}$")
    codes = [f["properties"]["code"] for f in feats]
    assert len(set(codes)) == len(codes), "duplicate grid codes"
    area_by_code = {a["code"]: a for a in areas}
    assert len(area_by_code) == len(areas), "duplicate area codes"

    metric = []
    for f in feats:
        p, g = f["properties"], f["geometry"]
        assert code_re.match(p["code"]), p["code"]
        assert p["code"].startswith(DISTRICT_CODE)
        assert p["street_code"] == p["code"][:9] and p["community_code"] == p["code"][:12]
        assert area_by_code[p["community_code"]]["parent_code"] == p["street_code"]
        assert area_by_code[p["community_code"]]["name"] == p["community_name"]
        assert area_by_code[p["street_code"]]["name"] == p["street_name"]
        ring = g["coordinates"][0]
        assert g["type"] == "Polygon" and len(g["coordinates"]) == 1
        assert ring[0] == ring[-1] and len(ring) >= 4, f"{p['code']}: ring not closed"
        assert shape(g).is_valid, f"{p['code']}: invalid polygon"
        poly = metric_polygon(g["coordinates"])
        assert poly.is_valid and poly.exterior.is_ccw, p["code"]
        assert GRID_AREA_MIN <= poly.area <= GRID_AREA_MAX, f"{p['code']}: area {poly.area:.0f} m²"
        metric.append(poly)

    tree = STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist()):
        if a < b:
            overlap = metric[a].intersection(metric[b]).area
            assert overlap <= MAX_OVERLAP_M2, f"{codes[a]} overlaps {codes[b]} by {overlap:.3f} m²"

    by_comm, by_street = defaultdict(list), defaultdict(list)
    for f, poly in zip(feats, metric):
        by_comm[f["properties"]["community_code"]].append((f["properties"]["code"], poly))
        by_street[f["properties"]["street_code"]].append(poly)

    for comm, items in by_comm.items():
        assert COMMUNITY_MIN <= len(items) <= COMMUNITY_MAX, f"{comm}: {len(items)} grids"
        assert sorted(int(c[-3:]) for c, _ in items) == list(range(1, len(items) + 1)), comm
        assert unary_union([p for _, p in items]).geom_type == "Polygon", f"{comm} not contiguous"
    for street, polys in by_street.items():
        assert unary_union(polys).geom_type == "Polygon", f"{street} not contiguous"
    outline = unary_union(metric)
    assert outline.geom_type == "Polygon" and not outline.interiors, "district must be one piece"
    # "Irregular": a rectangle would fill its own bounding box.
    minx, miny, maxx, maxy = outline.bounds
    assert outline.area / ((maxx - minx) * (maxy - miny)) < 0.9, "outline too rectangular"

    streets = [a for a in areas if a["level"] == "street"]
    comms = [a for a in areas if a["level"] == "community"]
    assert 8 <= len(streets) <= 10
    assert set(by_street) == {a["code"] for a in streets}
    assert set(by_comm) == {a["code"] for a in comms}
    per_street = defaultdict(int)
    for c in comms:
        per_street[c["parent_code"]] += 1
    assert all(COMMUNITIES_PER_STREET[0] <= n <= COMMUNITIES_PER_STREET[1] for n in per_street.values())
    assert len({a["name"] for a in areas}) == len(areas), "duplicate area names"

    return {
        "grids": len(feats),
        "streets": len(streets),
        "communities": len(comms),
        "grid_area_m2": (round(min(p.area for p in metric)), round(max(p.area for p in metric))),
        "district_km2": round(outline.area / 1e6, 2),
        "geojson_bytes": GEOJSON_PATH.stat().st_size,
        "areas_bytes": AREAS_PATH.stat().st_size,
    }


def main():
    features, areas = generate()
    write(features, areas)
    stats = check()
    for k, v in stats.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
