// Home: the map of my responsibility grids and where I am.
import * as geo from '../geo.js';
import { t } from '../i18n.js';
import { createMap } from '../map.js';
import { myGridCodes, on, state } from '../state.js';
import { $ } from '../ui.js';

let map = null;
let stop = null;
let fix = null;
let fitted = false;

export function init() {
  map = createMap($('home-map'), { testid: 'home-map' });
  on('grids', draw);
  on('reference', draw);
  on('network', () => { if (!$('view-map').hidden) draw(); });
  on('session', () => { fitted = false; });
  on('signedout', () => { fix = null; map.setGrids([]); map.setPosition(null); });
}

export function show() {
  draw();
  stop = geo.watch((f) => { fix = f; map.setPosition(f); status(); }, (e) => { fix = null; status(e); });
}

export function hide() {
  if (stop) stop();
  stop = null;
}

function draw() {
  if (!state.user) return;
  const mine = new Set(myGridCodes());
  map.setTiles(state.config.tile_url || null);
  map.setGrids(state.grids, [...mine]);
  if (!fitted && state.grids.length) {
    const own = state.grids.filter((f) => mine.has(f.properties.code));
    map.fit(geo.bboxOf(own.length ? own : state.grids));
    fitted = true;
  }
  status();
}

function status(err) {
  const n = myGridCodes().length;
  const parts = [t('home.grids', { n })];
  if (fix) parts.push(`${t('home.here')} ±${fix.accuracy_m} m`);
  else if (err) parts.push(t(`geo.${err.reason}`));
  $('home-status').textContent = parts.join(' · ');
}
