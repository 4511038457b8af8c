// A small canvas map in Web Mercator for the console: vector tiles from the backend (ST_AsMVT,
// fetched with the bearer header and decoded by mvt.js), GeoJSON overlays (tracks, a case's
// point), optional raster base tiles under it (TILE_URL), pan, zoom and keyboard.
//
// Polygon tile layers are drawn once per tile into an offscreen bitmap and then only copied while
// panning or zooming, so a frame costs the same for a hundred grids or a hundred thousand; point
// layers (case clusters) are drawn each frame so their symbols keep their size.
// For tests and the curious the container carries what the last frame drew: data-zoom,
// data-ready ("true" once every visible tile is in), data-grids (distinct grids drawn),
// data-bins, data-cases (cases drawn, clusters counted by their size).
import { call } from './api.js';
import { decodeTile } from './mvt.js';
import { h } from './ui.js';

const TILE = 256;
const MAX_TILES = 400;
const MAX_BITMAPS = 120;

export const project = (lon, lat) => {
  const s = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
  return [((lon + 180) / 360) * TILE, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE];
};
export const unproject = (x, y) => {
  const lon = (x / TILE) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / TILE;
  return [lon, (180 / Math.PI) * Math.atan(Math.sinh(n))];
};

export function createMap(container, { testid, minZoom = 3, maxZoom = 20, onClick, onHover, label } = {}) {
  const base = h('div', { class: 'map-base' });
  const canvas = h('canvas', { class: 'map-canvas' });
  const tip = h('div', { class: 'map-tip', hidden: true });
  const controls = h('div', { class: 'map-controls' },
    h('button', { type: 'button', title: '+', 'aria-label': 'zoom in', onclick: () => zoomBy(1) }, '+'),
    h('button', { type: 'button', title: '−', 'aria-label': 'zoom out', onclick: () => zoomBy(-1) }, '−'),
    h('button', { type: 'button', title: '⤢', 'aria-label': 'fit', testid: 'map-fit', onclick: () => fitHome() }, '⤢'));
  container.classList.add('mapview');
  container.tabIndex = 0;
  container.setAttribute('role', 'application');
  if (label) container.setAttribute('aria-label', label);
  if (testid) container.dataset.testid = testid;
  container.replaceChildren(base, canvas, controls, tip);
  const ctx = canvas.getContext('2d');
  const probe = document.createElement('canvas').getContext('2d');

  const view = { cx: project(121.47, 31.23)[0], cy: project(121.47, 31.23)[1], zoom: 13 };
  let home = null;
  let width = 0;
  let height = 0;
  let dpr = 1;
  let frame = 0;
  let settle = null;
  let destroyed = false;
  let baseUrl = null;
  const tileLayers = [];
  const overlays = new Map();
  let drawn = []; // the tiles drawn in the last frame, [{layer, e}]: what queryRenderedFeatures reads
  let drawing = [];

  // ------------------------------------------------------------------ geometry

  const scale = () => 2 ** view.zoom;
  const toScreen = (wx, wy) => [(wx - view.cx) * scale() + width / 2, (wy - view.cy) * scale() + height / 2];
  const toWorld = (sx, sy) => [(sx - width / 2) / scale() + view.cx, (sy - height / 2) / scale() + view.cy];
  const lonLatAt = (sx, sy) => unproject(...toWorld(sx, sy));

  function visibleTiles(tz) {
    const n = 2 ** tz;
    const [x0, y0] = toWorld(0, 0);
    const [x1, y1] = toWorld(width, height);
    const f = n / TILE;
    const out = [];
    for (let ty = Math.max(0, Math.floor(y0 * f)); ty <= Math.min(n - 1, Math.floor(y1 * f)); ty++) {
      for (let tx = Math.max(0, Math.floor(x0 * f)); tx <= Math.min(n - 1, Math.floor(x1 * f)); tx++) out.push([tz, tx, ty]);
    }
    return out;
  }

  // screen transform of a tile's units: x_screen = ox + a * x_tile
  function tileTransform(z, x, y, extent) {
    const k = scale() * (TILE / 2 ** z);
    const [ox, oy] = toScreen((x * TILE) / 2 ** z, (y * TILE) / 2 ** z);
    return { a: k / extent, ox, oy, size: k };
  }

  // ------------------------------------------------------------------ tile layers

  function tileZoom(layer) {
    return Math.max(layer.minTileZoom, Math.min(layer.maxTileZoom, Math.round(view.zoom)));
  }

  function entryFor(layer, key, z, x, y, create) {
    const id = `${key}|${z}/${x}/${y}`;
    let e = layer.tiles.get(id);
    if (!e && create) {
      e = { id, key, z, x, y, state: 'new', data: null, bitmap: null, stale: false };
      layer.tiles.set(id, e);
    }
    if (e) { layer.tiles.delete(id); layer.tiles.set(id, e); } // LRU order
    return e;
  }

  async function load(layer, e) {
    e.state = e.data ? 'refreshing' : 'loading';
    e.stale = false;
    try {
      const res = await call(layer.url(e.z, e.x, e.y), { as: 'buffer', timeout: 60000 });
      if (destroyed) return;
      if (res.status === 304 && e.data) {
        e.state = 'ok';
      } else if (res.ok) {
        e.data = prepare(decodeTile(res.data));
        e.bitmap = null;
        e.state = 'ok';
      } else {
        e.state = 'error';
        e.failedAt = Date.now();
      }
    } catch {
      e.state = 'error';
      e.failedAt = Date.now();
    }
    schedule();
  }

  // features with a Path2D in tile units for polygons and lines, points as they are; a grid's
  // code comes as the feature id (the 15 digits as a number, fewer bytes than a string)
  function prepare(layers) {
    for (const l of Object.values(layers)) {
      for (const f of l.features) {
        if (l.name === 'grids' && f.id != null && f.props.code == null) f.props.code = String(f.id).padStart(15, '0');
        if (f.type === 2 || f.type === 3) {
          const p = new Path2D();
          for (const part of f.geom) {
            part.forEach(([x, y], i) => (i ? p.lineTo(x, y) : p.moveTo(x, y)));
            if (f.type === 3) p.closePath();
          }
          f.path = p;
        }
      }
    }
    return layers;
  }

  function trim(layer) {
    while (layer.tiles.size > MAX_TILES) layer.tiles.delete(layer.tiles.keys().next().value);
    let bitmaps = 0;
    for (const e of [...layer.tiles.values()].reverse()) {
      if (e.bitmap && ++bitmaps > MAX_BITMAPS) e.bitmap = null;
    }
  }

  // the tile drawn into its own canvas at the current scale (polygons and lines)
  function bitmapOf(layer, e) {
    const { size } = tileTransform(e.z, e.x, e.y, 1);
    const px = Math.max(64, Math.min(2048, Math.ceil(size * dpr)));
    const b = e.bitmap;
    if (b && b.styleVersion === layer.styleVersion && (b.px === px || (settle && b.px >= px * 0.5 && b.px <= px * 2))) return b;
    const c = document.createElement('canvas');
    c.width = c.height = px;
    const g = c.getContext('2d');
    for (const l of Object.values(e.data)) {
      const k = px / l.extent;
      g.setTransform(k, 0, 0, k, 0, 0);
      for (const f of l.features) {
        if (!f.path) continue;
        const s = layer.style(f, l.name);
        if (!s) continue;
        if (s.fill && f.type === 3) { g.fillStyle = s.fill; g.fill(f.path, 'evenodd'); }
        if (s.stroke) {
          g.strokeStyle = s.stroke;
          g.lineWidth = (s.width || 1) / k;
          g.stroke(f.path);
        }
      }
    }
    e.bitmap = { canvas: c, px, styleVersion: layer.styleVersion };
    return e.bitmap;
  }

  function drawTileLayer(layer, stats) {
    const tz = tileZoom(layer);
    const want = visibleTiles(tz);
    let pending = 0;
    for (const [z, x, y] of want) {
      const e = entryFor(layer, layer.key, z, x, y, true);
      if (e.state === 'new' || (e.stale && e.state === 'ok') || (e.state === 'error' && Date.now() - e.failedAt > 5000)) load(layer, e);
      if (!e.data) pending++;
      let shown = e.data ? e : null;
      if (!shown && layer.prevKey) {
        const old = entryFor(layer, layer.prevKey, z, x, y, false);
        if (old && old.data) shown = old;
      }
      if (shown) {
        drawTile(layer, shown, z, x, y, stats);
        drawing.push({ layer, e: shown });
      } else {
        // while it loads: a coarser tile of the same layer, cut to this tile's square
        for (let dz = 1; dz <= 4 && z - dz >= 0; dz++) {
          const pz = z - dz;
          const p = entryFor(layer, layer.key, pz, x >> dz, y >> dz, false);
          if (p && p.data && layer.kind === 'fill') {
            const t = tileTransform(z, x, y, 1);
            ctx.save();
            ctx.beginPath();
            ctx.rect(t.ox, t.oy, t.size, t.size);
            ctx.clip();
            drawTile(layer, p, pz, x >> dz, y >> dz, null);
            ctx.restore();
            break;
          }
        }
      }
    }
    trim(layer);
    return pending;
  }

  function drawTile(layer, e, z, x, y, stats) {
    const t = tileTransform(z, x, y, 1);
    if (layer.kind === 'fill') {
      const b = bitmapOf(layer, e);
      ctx.drawImage(b.canvas, t.ox, t.oy, t.size, t.size);
    } else {
      for (const l of Object.values(e.data)) {
        const a = t.size / l.extent;
        for (const f of l.features) {
          f.screen = null;
          if (f.type !== 1) continue;
          for (const [px, py] of f.geom.flat()) {
            const sx = t.ox + px * a;
            const sy = t.oy + py * a;
            if (sx < -40 || sy < -40 || sx > width + 40 || sy > height + 40) continue;
            if (px < 0 || py < 0 || px >= l.extent || py >= l.extent) continue; // another tile's
            const s = layer.point(f, l.name);
            if (!s) continue;
            drawSymbol(ctx, sx, sy, s);
            f.screen = [sx, sy, s.radius || 6];
            if (stats) stats.cases += Number(f.props.count || 1);
          }
        }
      }
    }
    if (stats && layer.kind === 'fill') {
      for (const l of Object.values(e.data)) {
        for (const f of l.features) {
          if (l.name === 'grids' && f.props.code) stats.grids.add(f.props.code);
          if (l.name === 'bins') stats.bins += 1;
        }
      }
    }
  }

  function drawSymbol(g, x, y, s) {
    g.beginPath();
    g.arc(x, y, s.radius || 6, 0, Math.PI * 2);
    if (s.fill) { g.fillStyle = s.fill; g.fill(); }
    if (s.stroke) { g.lineWidth = s.width || 1.5; g.strokeStyle = s.stroke; g.stroke(); }
    if (s.label != null) {
      g.fillStyle = s.labelColor || '#fff';
      g.font = `600 ${s.fontSize || 11}px system-ui, sans-serif`;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText(String(s.label), x, y + 0.5);
    }
  }

  // ------------------------------------------------------------------ overlays (GeoJSON, lon/lat)

  function drawOverlay(o) {
    for (const f of o.features) {
      const s = o.style(f);
      if (!s || !f.geometry) continue;
      const g = f.geometry;
      const path = (coords) => coords.forEach(([lon, lat], i) => {
        const [sx, sy] = toScreen(...project(lon, lat));
        if (i) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy);
      });
      ctx.beginPath();
      if (g.type === 'Point') {
        const [sx, sy] = toScreen(...project(...g.coordinates));
        if (s.pin) {
          ctx.moveTo(sx, sy);
          ctx.bezierCurveTo(sx - 12, sy - 16, sx - 9, sy - 28, sx, sy - 28);
          ctx.bezierCurveTo(sx + 9, sy - 28, sx + 12, sy - 16, sx, sy);
          ctx.fillStyle = s.fill || '#d62828';
          ctx.fill();
          ctx.lineWidth = 1.5;
          ctx.strokeStyle = '#fff';
          ctx.stroke();
          ctx.beginPath();
          ctx.arc(sx, sy - 19, 3.5, 0, Math.PI * 2);
          ctx.fillStyle = '#fff';
          ctx.fill();
        } else {
          drawSymbol(ctx, sx, sy, s);
        }
        continue;
      }
      const lines = g.type === 'LineString' ? [g.coordinates] : g.type === 'MultiLineString' ? g.coordinates
        : g.type === 'Polygon' ? g.coordinates : g.type === 'MultiPolygon' ? g.coordinates.flat() : [];
      lines.forEach(path);
      if (s.fill && g.type.endsWith('Polygon')) { ctx.fillStyle = s.fill; ctx.fill('evenodd'); }
      if (s.stroke) {
        ctx.lineWidth = s.width || 2;
        ctx.strokeStyle = s.stroke;
        ctx.lineJoin = 'round';
        ctx.setLineDash(s.dash || []);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
  }

  // ------------------------------------------------------------------ base raster tiles (DOM, under the canvas)

  function drawBase() {
    if (!baseUrl) { base.replaceChildren(); return; }
    const tz = Math.max(0, Math.min(19, Math.round(view.zoom)));
    const n = 2 ** tz;
    const imgs = [];
    for (const [z, x, y] of visibleTiles(tz)) {
      const t = tileTransform(z, x, y, 1);
      const img = h('img', { src: baseUrl.replace('{z}', z).replace('{x}', ((x % n) + n) % n).replace('{y}', y), alt: '',
        draggable: 'false', class: 'map-base-tile' });
      img.style.transform = `translate(${t.ox}px, ${t.oy}px)`;
      img.style.width = img.style.height = `${t.size + 0.5}px`;
      imgs.push(img);
    }
    base.replaceChildren(...imgs);
  }

  // ------------------------------------------------------------------ frame

  function schedule() {
    if (!frame && !destroyed) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    if (destroyed) return;
    const w = container.clientWidth;
    const hgt = container.clientHeight;
    const r = window.devicePixelRatio || 1;
    if (w !== width || hgt !== height || r !== dpr) {
      width = w; height = hgt; dpr = r;
      canvas.width = Math.max(1, Math.round(w * r));
      canvas.height = Math.max(1, Math.round(hgt * r));
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    drawBase();
    const stats = { grids: new Set(), bins: 0, cases: 0 };
    drawing = [];
    let pending = 0;
    for (const layer of tileLayers.filter((l) => l.visible && l.kind === 'fill')) pending += drawTileLayer(layer, stats);
    for (const o of overlays.values()) if (o.visible !== false) drawOverlay(o);
    for (const layer of tileLayers.filter((l) => l.visible && l.kind === 'point')) pending += drawTileLayer(layer, stats);
    drawn = drawing;
    const ds = container.dataset;
    ds.zoom = view.zoom.toFixed(2);
    ds.grids = String(stats.grids.size);
    ds.bins = String(stats.bins);
    ds.cases = String(stats.cases);
    ds.ready = String(pending === 0 && width > 0);
    const [lon, lat] = lonLatAt(width / 2, height / 2);
    ds.center = `${lon.toFixed(5)},${lat.toFixed(5)}`;
  }

  function changed() {
    // while moving, bitmaps are scaled; once still, they are drawn again at the new scale
    clearTimeout(settle);
    settle = setTimeout(() => { settle = null; schedule(); }, 180);
    schedule();
  }

  // ------------------------------------------------------------------ interaction

  function zoomAround(sx, sy, z) {
    const nz = Math.max(minZoom, Math.min(maxZoom, z));
    const [wx, wy] = toWorld(sx, sy);
    view.zoom = nz;
    view.cx = wx - (sx - width / 2) / scale();
    view.cy = wy - (sy - height / 2) / scale();
    changed();
  }
  const zoomBy = (d) => zoomAround(width / 2, height / 2, Math.round(view.zoom) + d);

  function hitTest(sx, sy) {
    for (const layer of [...tileLayers].reverse()) {
      if (!layer.visible || !layer.hit) continue;
      if (layer.kind === 'point') {
        let best = null;
        for (const e of layer.tiles.values()) {
          if (e.key !== layer.key || !e.data || e.z !== tileZoom(layer)) continue;
          for (const l of Object.values(e.data)) {
            for (const f of l.features) {
              if (!f.screen) continue;
              const d = Math.hypot(f.screen[0] - sx, f.screen[1] - sy);
              if (d <= f.screen[2] + 3 && (!best || d < best.d)) best = { d, f, l };
            }
          }
        }
        if (best) return { layer: layer.id, name: best.l.name, props: best.f.props };
      } else {
        const tz = tileZoom(layer);
        const [wx, wy] = toWorld(sx, sy);
        const n = 2 ** tz;
        const tx = Math.floor((wx * n) / TILE);
        const ty = Math.floor((wy * n) / TILE);
        const e = entryFor(layer, layer.key, tz, tx, ty, false);
        if (!e || !e.data) continue;
        for (const l of Object.values(e.data)) {
          const ux = ((wx * n) / TILE - tx) * l.extent;
          const uy = ((wy * n) / TILE - ty) * l.extent;
          for (let i = l.features.length - 1; i >= 0; i--) {
            const f = l.features[i];
            if (f.type === 3 && f.path && probe.isPointInPath(f.path, ux, uy, 'evenodd')) {
              return { layer: layer.id, name: l.name, props: f.props };
            }
          }
        }
      }
    }
    return null;
  }

  let drag = null;
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    canvas.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, cx: view.cx, cy: view.cy, moved: false };
  });
  canvas.addEventListener('pointermove', (e) => {
    const rect = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (drag.moved) {
        view.cx = drag.cx - dx / scale();
        view.cy = drag.cy - dy / scale();
        tip.hidden = true;
        changed();
      }
      return;
    }
    if (!onHover) return;
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    const text = onHover(hitTest(sx, sy));
    if (text) {
      tip.textContent = text;
      tip.hidden = false;
      tip.style.transform = `translate(${Math.min(sx + 14, width - 220)}px, ${sy + 14}px)`;
    } else {
      tip.hidden = true;
    }
  });
  canvas.addEventListener('pointerleave', () => { tip.hidden = true; });
  canvas.addEventListener('pointerup', (e) => {
    const d = drag;
    drag = null;
    if (!d || d.moved) return;
    const rect = canvas.getBoundingClientRect();
    const sx = e.clientX - rect.left;
    const sy = e.clientY - rect.top;
    const hit = hitTest(sx, sy);
    const [lon, lat] = lonLatAt(sx, sy);
    if (onClick) onClick(hit, { lon, lat }, api);
  });
  canvas.addEventListener('pointercancel', () => { drag = null; });
  canvas.addEventListener('dblclick', (e) => {
    const rect = canvas.getBoundingClientRect();
    zoomAround(e.clientX - rect.left, e.clientY - rect.top, view.zoom + 1);
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const step = e.deltaMode === 1 ? e.deltaY * 0.05 : e.deltaY * 0.0025;
    zoomAround(e.clientX - rect.left, e.clientY - rect.top, view.zoom - Math.max(-1, Math.min(1, step)));
  }, { passive: false });
  container.addEventListener('keydown', (e) => {
    if (e.target !== container) return;
    const pan = 120 / scale();
    const keys = {
      ArrowLeft: () => { view.cx -= pan; }, ArrowRight: () => { view.cx += pan; },
      ArrowUp: () => { view.cy -= pan; }, ArrowDown: () => { view.cy += pan; },
      '+': () => zoomBy(1), '=': () => zoomBy(1), '-': () => zoomBy(-1), 0: () => fitHome(),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); changed(); }
  });
  const resize = new ResizeObserver(() => changed());
  resize.observe(container);

  function fit(b, pad = 24) {
    if (!b) return;
    const w = container.clientWidth || 800;
    const hh = container.clientHeight || 500;
    const [x1, y1] = project(b[0], b[3]);
    const [x2, y2] = project(b[2], b[1]);
    view.cx = (x1 + x2) / 2;
    view.cy = (y1 + y2) / 2;
    const s = Math.min((w - 2 * pad) / Math.max(1e-9, x2 - x1), (hh - 2 * pad) / Math.max(1e-9, y2 - y1));
    view.zoom = Math.max(minZoom, Math.min(maxZoom, Math.log2(s)));
    changed();
  }
  function fitHome() { if (home) fit(home); }

  // ------------------------------------------------------------------ what the last frame drew

  // The features of the last frame with the style they were drawn with, like MapLibre's
  // queryRenderedFeatures: tile features of the tiles drawn (a grid cut by tile edges comes once per
  // tile; points only when on screen), and overlay features with how many of their vertices are on
  // screen. Also on the container (`el.queryRenderedFeatures({layers})`) for scripts and tests.
  function renderedFeatures({ layers } = {}) {
    const want = (id) => !layers || layers.includes(id);
    const out = [];
    for (const { layer, e } of drawn) {
      if (!want(layer.id) || !layer.visible) continue;
      for (const l of Object.values(e.data)) {
        for (const f of l.features) {
          if (layer.kind === 'point' && !f.screen) continue;
          const style = layer.kind === 'fill' ? layer.style(f, l.name) : layer.point(f, l.name);
          if (style) out.push({ layer: layer.id, sourceLayer: l.name, tile: e.id, properties: { ...f.props }, style });
        }
      }
    }
    const inside = ([sx, sy]) => sx >= 0 && sy >= 0 && sx <= width && sy <= height;
    for (const [id, o] of overlays) {
      if (o.visible === false || !want(id)) continue;
      for (const f of o.features) {
        const style = f.geometry && o.style(f);
        if (!style) continue;
        const g = f.geometry;
        const coords = g.type === 'Point' ? [g.coordinates] : g.type === 'LineString' || g.type === 'MultiPoint' ? g.coordinates
          : g.type === 'MultiLineString' || g.type === 'Polygon' ? g.coordinates.flat() : g.type === 'MultiPolygon' ? g.coordinates.flat(2) : [];
        const onScreen = coords.filter((c) => inside(toScreen(...project(c[0], c[1])))).length;
        out.push({ layer: id, properties: f.properties || {}, geometry: g, style, vertices: coords.length, onScreen });
      }
    }
    return out;
  }
  container.queryRenderedFeatures = renderedFeatures;

  // ------------------------------------------------------------------ the map's API

  const api = {
    // kind 'fill': polygons drawn from style(feature, layerName) → {fill, stroke, width};
    // kind 'point': symbols from point(feature, layerName) → {radius, fill, stroke, label}
    addTileLayer({ id, url, kind = 'fill', minTileZoom = 0, maxTileZoom = 16, style, point, hit = true, visible = true, key = '' }) {
      tileLayers.push({ id, url, kind, minTileZoom, maxTileZoom, style, point, hit, visible, key, prevKey: null,
        tiles: new Map(), styleVersion: 0 });
      schedule();
    },
    // a new URL (filters): the old tiles stay on screen until the new ones arrive
    setTileUrl(id, url, key) {
      const l = tileLayers.find((x) => x.id === id);
      if (!l || l.key === key) return;
      l.url = url;
      l.prevKey = l.key;
      l.key = key;
      for (const e of l.tiles.values()) if (e.key !== l.key && e.key !== l.prevKey) l.tiles.delete(e.id);
      schedule();
    },
    setVisible(id, visible) {
      const l = tileLayers.find((x) => x.id === id);
      if (l) l.visible = visible;
      const o = overlays.get(id);
      if (o) o.visible = visible;
      schedule();
    },
    // the style depends on something else now (a selection, coverage): redraw the bitmaps
    restyle(id) {
      const l = tileLayers.find((x) => x.id === id);
      if (l) l.styleVersion++;
      schedule();
    },
    // ask again for the visible tiles (new counts); what is shown stays until the answer
    refresh() {
      for (const l of tileLayers) for (const e of l.tiles.values()) e.stale = true;
      schedule();
    },
    setOverlay(id, features, style) {
      overlays.set(id, { features: features || [], style, visible: overlays.get(id)?.visible });
      schedule();
    },
    setBaseTiles(url) { baseUrl = url; schedule(); },
    setHome(b) { home = b; },
    fit,
    fitHome,
    center(lon, lat, zoom) {
      [view.cx, view.cy] = project(lon, lat);
      if (zoom != null) view.zoom = zoom;
      changed();
    },
    get zoom() { return view.zoom; },
    bounds() {
      const [w, n] = lonLatAt(0, 0);
      const [e, s] = lonLatAt(width, height);
      return [w, s, e, n];
    },
    hitTest,
    queryRenderedFeatures: renderedFeatures,
    screenOf(lon, lat) { return toScreen(...project(lon, lat)); },
    destroy() {
      destroyed = true;
      resize.disconnect();
      cancelAnimationFrame(frame);
      clearTimeout(settle);
    },
  };
  return api;
}
