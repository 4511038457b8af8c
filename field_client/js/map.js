// A small SVG map in Web Mercator: grid polygons, my position with its accuracy circle, a pin,
// and base-map tiles from the configured URL when there is a network. Drag pans, the buttons
// zoom, a tap reports the point (for placing a pin).
const NS = 'http://www.w3.org/2000/svg';
const TILE = 256;
const R = 6378137;

const project = (lon, lat) => {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [((lon + 180) / 360) * TILE, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE];
};
const unproject = (x, y) => {
  const lon = (x / TILE) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / TILE;
  return [lon, (180 / Math.PI) * Math.atan(Math.sinh(n))];
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

export function createMap(container, { onTap, testid } = {}) {
  const root = svg('svg', { class: 'map', role: 'img' });
  if (testid) root.setAttribute('data-testid', testid);
  const layers = { tiles: svg('g'), grids: svg('g'), marks: svg('g') };
  Object.values(layers).forEach((g) => root.appendChild(g));
  const controls = document.createElement('div');
  controls.className = 'map-controls';
  for (const [label, f] of [['+', 2], ['−', 0.5]]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', () => { view.scale *= f; render(); });
    controls.appendChild(b);
  }
  container.replaceChildren(root, controls);

  const view = { cx: project(121.47, 31.23)[0], cy: project(121.47, 31.23)[1], scale: 2 ** 14 };
  let grids = [];
  let mine = new Set();
  let position = null;
  let pin = null;
  let tileUrl = null;
  let selected = null;

  const size = () => [container.clientWidth || 320, container.clientHeight || 240];
  const toScreen = (lon, lat) => {
    const [x, y] = project(lon, lat);
    const [w, h] = size();
    return [(x - view.cx) * view.scale + w / 2, (y - view.cy) * view.scale + h / 2];
  };
  const toLonLat = (sx, sy) => {
    const [w, h] = size();
    return unproject((sx - w / 2) / view.scale + view.cx, (sy - h / 2) / view.scale + view.cy);
  };

  function render() {
    const [w, h] = size();
    root.setAttribute('viewBox', `0 0 ${w} ${h}`);
    renderTiles(w, h);
    layers.grids.replaceChildren();
    const [west, north] = toLonLat(0, 0);
    const [east, south] = toLonLat(w, h);
    for (const f of grids) {
      const b = f.bbox;
      if (b[2] < west || b[0] > east || b[3] < south || b[1] > north) continue;
      const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
      let d = '';
      for (const rings of polys) {
        for (const ring of rings) d += ring.map(([lon, lat], i) => `${i ? 'L' : 'M'}${toScreen(lon, lat).map((v) => v.toFixed(1)).join(' ')}`).join('') + 'Z';
      }
      const code = f.properties.code;
      const cls = ['grid', mine.has(code) ? 'mine' : '', code === selected ? 'selected' : ''].join(' ').trim();
      const p = svg('path', { d, class: cls, 'data-grid': code });
      const title = svg('title');
      title.textContent = `${code} ${f.properties.name || ''}`;
      p.appendChild(title);
      layers.grids.appendChild(p);
    }
    layers.marks.replaceChildren();
    if (position) {
      const [x, y] = toScreen(position.lon, position.lat);
      const mPerPx = (Math.cos((position.lat * Math.PI) / 180) * 2 * Math.PI * R) / (TILE * view.scale);
      layers.marks.appendChild(svg('circle', { cx: x, cy: y, r: Math.max(6, (position.accuracy_m || 0) / mPerPx), class: 'accuracy' }));
      layers.marks.appendChild(svg('circle', { cx: x, cy: y, r: 6, class: 'me', 'data-testid': 'map-me' }));
    }
    if (pin) {
      const [x, y] = toScreen(pin.lon, pin.lat);
      layers.marks.appendChild(svg('path', { d: `M${x} ${y}l-9 -22a10 10 0 1 1 18 0z`, class: 'pin', 'data-testid': 'map-pin' }));
    }
  }

  function renderTiles(w, h) {
    layers.tiles.replaceChildren();
    if (!tileUrl || !navigator.onLine) return;
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(view.scale))));
    const k = view.scale / 2 ** z; // screen px per tile px at zoom z
    const n = 2 ** z;
    const x0 = Math.floor(((view.cx - w / 2 / view.scale) * 2 ** z) / TILE);
    const y0 = Math.floor(((view.cy - h / 2 / view.scale) * 2 ** z) / TILE);
    const x1 = Math.floor(((view.cx + w / 2 / view.scale) * 2 ** z) / TILE);
    const y1 = Math.floor(((view.cy + h / 2 / view.scale) * 2 ** z) / TILE);
    for (let tx = x0; tx <= x1; tx++) {
      for (let ty = Math.max(0, y0); ty <= Math.min(n - 1, y1); ty++) {
        const url = tileUrl.replace('{z}', z).replace('{x}', ((tx % n) + n) % n).replace('{y}', ty);
        const sx = ((tx * TILE) / 2 ** z - view.cx) * view.scale + w / 2;
        const sy = ((ty * TILE) / 2 ** z - view.cy) * view.scale + h / 2;
        layers.tiles.appendChild(svg('image', { href: url, x: sx, y: sy, width: TILE * k + 0.5, height: TILE * k + 0.5 }));
      }
    }
  }

  // drag to pan, tap to report a point
  let drag = null;
  root.addEventListener('pointerdown', (e) => { drag = { x: e.clientX, y: e.clientY, cx: view.cx, cy: view.cy, moved: false }; });
  root.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 8) drag.moved = true;
    if (drag.moved) { view.cx = drag.cx - dx / view.scale; view.cy = drag.cy - dy / view.scale; render(); }
  });
  root.addEventListener('pointerup', (e) => {
    const d = drag;
    drag = null;
    if (!d || d.moved || !onTap) return;
    const r = root.getBoundingClientRect();
    const [lon, lat] = toLonLat(e.clientX - r.left, e.clientY - r.top);
    onTap({ lon, lat });
  });
  root.addEventListener('pointercancel', () => { drag = null; });
  root.addEventListener('wheel', (e) => { e.preventDefault(); view.scale *= e.deltaY < 0 ? 1.25 : 0.8; render(); }, { passive: false });
  new ResizeObserver(() => render()).observe(container);

  return {
    setGrids(features, mineCodes = []) {
      grids = features.map((f) => ({ ...f, bbox: f.bbox || bboxOfFeature(f) }));
      mine = new Set(mineCodes);
      render();
    },
    setPosition(p) { position = p; render(); },
    setPin(p) { pin = p; render(); },
    select(code) { selected = code; render(); },
    setTiles(url) { tileUrl = url; render(); },
    center(lon, lat) { [view.cx, view.cy] = project(lon, lat); render(); },
    fit(b, pad = 24) {
      if (!b) return;
      const [w, h] = size();
      const [x1, y1] = project(b[0], b[3]);
      const [x2, y2] = project(b[2], b[1]);
      view.cx = (x1 + x2) / 2;
      view.cy = (y1 + y2) / 2;
      view.scale = Math.min(2 ** 20, (w - 2 * pad) / Math.max(1e-9, x2 - x1), (h - 2 * pad) / Math.max(1e-9, y2 - y1));
      render();
    },
    render,
  };
}

function bboxOfFeature(f) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
    else c.forEach(walk);
  };
  walk(f.geometry.coordinates);
  return b;
}
