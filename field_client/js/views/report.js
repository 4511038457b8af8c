// Report a problem: category, urgency, description, photos, and a position the person can
// stand behind (a good fix, a poor one they accepted, or a pin they placed). The draft is kept
// on the device as it is typed; submitting moves it into the outbox in one transaction.
import { call } from '../api.js';
import { kv, req } from '../db.js';
import * as geo from '../geo.js';
import { catName, t } from '../i18n.js';
import { createMap } from '../map.js';
import * as outbox from '../outbox.js';
import { prepare } from '../photos.js';
import { myGridCodes, on, state, ukey } from '../state.js';
import { $, h, previewUrls } from '../ui.js';

let draft = null; // {id, key, created_at, category_code, urgency, description, photos: [{id, key, name, width, height, taken_at}], pin, accepted}
let blobs = new Map(); // photo id → Blob (stored apart from the draft so typing does not rewrite photos)
let fix = null;
let geoError = null;
let stopWatch = null;
let map = null;
let pinMode = false;
let processing = 0;
let saveTimer = null;
let located = { key: null, grid: undefined };
let edits = 0; // the person's changes to the draft so far (a stored draft read meanwhile is older)
const previews = previewUrls();

export function init() {
  map = createMap($('report-map'), { testid: 'report-map', onTap: placePin });
  $('report-category-search').addEventListener('input', fillCategories);
  $('report-category').addEventListener('change', (e) => edit({ category_code: e.target.value }));
  $('report-urgency').addEventListener('change', (e) => edit({ urgency: e.target.value }));
  $('report-description').addEventListener('input', (e) => edit({ description: e.target.value }, 400));
  $('report-photo').addEventListener('change', addPhotos);
  $('report-accept-poor').addEventListener('click', () => { if (fix) edit({ accepted: { ...fix }, pin: null }, 0); });
  $('report-use-pin').addEventListener('click', () => { pinMode = true; render(); });
  $('report-use-gps').addEventListener('click', () => { pinMode = false; edit({ pin: null }, 0); });
  $('report-form').addEventListener('submit', submit);
  on('categories', () => { fillCategories(); if (draft) renderReady(); });
  on('lang', () => { fillCategories(); render(); });
  on('grids', () => { located.key = null; render(); });
  on('network', () => { located.key = null; render(); });
  on('signedout', () => { draft = null; blobs = new Map(); previews.release(); });
  document.addEventListener('visibilitychange', async () => {
    if ($('view-report').hidden || !state.user) return;
    if (document.visibilityState === 'hidden') { saveNow(); return; }
    await loadDraft(); // another tab may have changed or sent this draft
    render();
  });
}

export async function show() {
  await loadDraft();
  $('report-done').hidden = true;
  fillCategories();
  render();
  stopWatch = geo.watch((f) => {
    fix = f;
    geoError = null;
    if (draft && draft.accepted && geo.isGood(f)) draft.accepted = null; // a good fix replaces an accepted poor one
    render();
  }, (e) => { geoError = e; if (e.reason === 'denied' || !fix) pinMode = true; render(); });
}

export function hide() {
  saveNow();
  if (stopWatch) stopWatch();
  stopWatch = null;
}

async function loadDraft() {
  if (!state.user) return;
  const seen = edits;
  const stored = await kv.get(ukey('draft'));
  if (edits !== seen && draft && draft.user_id === state.user.id) {
    return; // changed while the stored copy was read (a category picked as the view opened): the change wins
  }
  if (stored) {
    draft = stored;
    for (const p of draft.photos) if (!blobs.has(p.id)) blobs.set(p.id, await kv.get(ukey(`draftphoto:${p.id}`)));
  } else if (!draft || draft.user_id !== state.user.id) {
    draft = newDraft();
  }
  pinMode = !!draft.pin || pinMode;
}

function newDraft() {
  return {
    id: outbox.uuid(), key: outbox.uuid(), user_id: state.user.id, created_at: new Date().toISOString(),
    category_code: '', urgency: 'B', description: '', photos: [], pin: null, accepted: null,
  };
}

function edit(change, delay = 0) {
  edits++;
  Object.assign(draft, change);
  $('report-done').hidden = true;
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveNow, delay);
  if (!('description' in change)) render();
  else renderReady();
}

export async function saveNow() {
  clearTimeout(saveTimer);
  if (!draft || !state.user) return;
  try {
    await kv.set(ukey('draft'), draft);
  } catch (e) {
    showError(storageMessage(e));
  }
}

function storageMessage(e) {
  return e && e.name === 'QuotaExceededError' ? t('storage.full') : `${t('storage.failed')}: ${e && e.message}`;
}

function fillCategories() {
  const sel = $('report-category');
  const q = $('report-category-search').value.trim().toLowerCase();
  const chosen = draft ? draft.category_code : sel.value;
  const match = (c) => !q || c.code.includes(q) || (c.name_zh || '').toLowerCase().includes(q) || (c.name_en || '').toLowerCase().includes(q)
    || (c.major_name_zh || '').toLowerCase().includes(q) || (c.major_name_en || '').toLowerCase().includes(q);
  const cats = state.categories.filter((c) => match(c) || c.code === chosen);
  sel.replaceChildren(
    h('option', { value: '', text: state.categories.length ? t('report.choose') : t('report.noCategories') }),
    ...cats.map((c) => h('option', { value: c.code, text: `${c.code} ${catName(c)}` })),
  );
  sel.value = chosen || '';
  if (q && !chosen && cats.length === 1) { sel.value = cats[0].code; edit({ category_code: cats[0].code }); }
}

async function addPhotos(e) {
  const files = [...e.target.files];
  e.target.value = '';
  $('report-message').hidden = true;
  for (const file of files) {
    processing++;
    renderReady();
    try {
      const p = await prepare(file);
      const id = outbox.uuid();
      await kv.set(ukey(`draftphoto:${id}`), p.blob);
      blobs.set(id, p.blob);
      draft.photos.push({ id, key: outbox.uuid(), name: p.name, width: p.width, height: p.height, taken_at: p.taken_at });
      await saveNow();
    } catch (err) {
      showError(err.name === 'QuotaExceededError' ? t('storage.full') : t('photo.bad'));
    } finally {
      processing--;
      render();
    }
  }
}

function removePhoto(id) {
  draft.photos = draft.photos.filter((p) => p.id !== id);
  blobs.delete(id);
  kv.del(ukey(`draftphoto:${id}`));
  saveNow();
  render();
}

function placePin(p) {
  if (!pinMode) return;
  edit({ pin: { lon: p.lon, lat: p.lat }, accepted: null }, 0);
}

// The position this report will carry, and how it was taken; null until the person can stand behind it.
function position() {
  if (!draft) return null;
  if (draft.pin) return { lon: draft.pin.lon, lat: draft.pin.lat, accuracy_m: null, flags: ['pin'] };
  if (fix && geo.isGood(fix)) return { ...fix, flags: [] };
  if (draft.accepted) return { ...draft.accepted, flags: ['poor_accuracy'] };
  return null;
}

function render() {
  if (!draft) return;
  $('report-urgency').value = draft.urgency;
  if (document.activeElement !== $('report-description')) $('report-description').value = draft.description;
  if ($('report-category').value !== draft.category_code) fillCategories();
  renderPhotos();
  renderLocation();
  renderReady();
}

function renderPhotos() {
  previews.release();
  $('report-photos').replaceChildren(...draft.photos.map((p, i) => h('figure', { class: 'thumb', testid: 'report-photo-item' },
    blobs.get(p.id) ? h('img', { src: previews.url(blobs.get(p.id)), alt: `${t('report.photo')} ${i + 1}` }) : null,
    h('button', { type: 'button', class: 'remove', testid: 'report-photo-remove', 'aria-label': t('remove'), text: '×', onclick: () => removePhoto(p.id) }))));
  if (processing) $('report-photos').append(h('span', { class: 'muted', text: t('photo.processing') }));
}

function renderLocation() {
  const el = $('report-location');
  const pos = position();
  let stateName;
  let text;
  if (draft.pin) { stateName = 'pin'; text = `${t('loc.pin')}: ${geo.formatFix(draft.pin)}`; }
  else if (pos && pos.flags.includes('poor_accuracy')) { stateName = 'accepted'; text = `${geo.formatFix(pos)} ±${pos.accuracy_m} m · ${t('loc.acceptedPoor')}`; }
  else if (pos) { stateName = 'good'; text = `${geo.formatFix(pos)} ±${pos.accuracy_m} m`; }
  else if (fix) { stateName = 'poor'; text = `±${fix.accuracy_m} m · ${t('loc.poor')}`; }
  else if (geoError) { stateName = 'error'; text = `${t(`geo.${geoError.reason}`)} · ${t('loc.placePin')}`; }
  else { stateName = 'waiting'; text = t('loc.waiting'); }
  el.dataset.state = stateName;
  el.textContent = text;
  const choice = stateName === 'poor';
  $('report-location-choice').hidden = !choice;
  if (choice) $('report-accept-poor').textContent = t('loc.acceptPoor', { n: fix.accuracy_m });
  const showMap = pinMode || !!draft.pin || stateName === 'error';
  $('report-map').hidden = !showMap;
  $('report-map-hint').hidden = !showMap;
  $('report-use-gps').hidden = !draft.pin && !pinMode;
  if (showMap) {
    if (!pinMode) pinMode = true;
    const mine = myGridCodes();
    map.setTiles(state.config.tile_url || null);
    map.setGrids(state.grids, mine);
    map.setPosition(fix);
    map.setPin(draft.pin);
    if (!map.fitted) {
      const own = state.grids.filter((f) => mine.includes(f.properties.code));
      if (draft.pin) map.center(draft.pin.lon, draft.pin.lat);
      else if (fix && geo.isGood(fix)) map.fit([fix.lon - 0.002, fix.lat - 0.002, fix.lon + 0.002, fix.lat + 0.002]);
      else if (own.length || state.grids.length) map.fit(geo.bboxOf(own.length ? own : state.grids));
      else if (fix) map.center(fix.lon, fix.lat);
      map.fitted = true;
    }
  }
  locate(pos);
}

// The grid of the point, shown before sending: the server's answer when online, the grids kept
// on the device otherwise.
async function locate(pos) {
  const out = $('report-grid');
  const name = $('report-grid-name');
  if (!pos) { out.textContent = ''; name.textContent = ''; located = { key: null, grid: undefined }; map.select(null); return; }
  const key = `${pos.lon.toFixed(7)},${pos.lat.toFixed(7)},${navigator.onLine}`;
  if (located.key === key) return;
  located = { key, grid: undefined };
  let grid;
  let snapped = false;
  if (navigator.onLine) {
    try {
      const r = await call(`/grids/locate?lon=${pos.lon}&lat=${pos.lat}`, { timeout: 8000 });
      if (r.ok) { grid = r.data.grid; snapped = r.data.snapped; }
    } catch { /* fall back to the grids on the device */ }
  }
  if (grid === undefined) {
    const f = state.grids.find((g) => geo.inFeature(pos.lon, pos.lat, g.geometry));
    grid = f ? f.properties : null;
  }
  if (located.key !== key) return;
  located.grid = grid;
  out.textContent = grid ? grid.code : '';
  name.textContent = grid ? `${grid.name || ''}${snapped ? ` (${t('loc.snapped')})` : ''}` : t('loc.noGrid');
  map.select(grid ? grid.code : null);
}

function missing() {
  const m = [];
  if (!state.categories.length) m.push(t('missing.catalog'));
  if (!draft.category_code) m.push(t('missing.category'));
  if (!draft.photos.length) m.push(t('missing.photo'));
  if (draft.photos.some((p) => !blobs.get(p.id))) m.push(t('missing.photoLost'));
  if (!position()) m.push(t('missing.position'));
  if (processing) m.push(t('photo.processing'));
  return m;
}

function renderReady() {
  const m = missing();
  $('report-submit').disabled = m.length > 0;
  $('report-missing').textContent = m.length ? `${t('missing.title')}: ${m.join('、')}` : '';
}

function showError(text) {
  $('report-message').textContent = text;
  $('report-message').hidden = false;
}

async function submit(e) {
  e.preventDefault();
  if (missing().length) return;
  const d = draft;
  const pos = position();
  const catalogVersion = await kv.get(ukey('catalog_version'));
  const body = {
    category_code: d.category_code, urgency: d.urgency, description: d.description.trim(),
    lon: pos.lon, lat: pos.lat, accuracy_m: pos.accuracy_m, observed_at: d.created_at,
    location_flags: pos.flags, ...(catalogVersion ? { catalog_version: catalogVersion } : {}),
  };
  const cat = state.categories.find((c) => c.code === d.category_code);
  const items = [outbox.item('report', { body, grid_code: located.grid ? located.grid.code : null, category: cat ? { code: cat.code, name_zh: cat.name_zh, name_en: cat.name_en } : null },
    { id: d.id, key: d.key })];
  d.photos.forEach((p, i) => items.push(outbox.item('photo', {
    report_id: d.id, kind: 'before', blob: blobs.get(p.id), name: p.name, taken_at: p.taken_at, n: i + 1, of: d.photos.length,
  }, { id: p.id, key: p.key, dependsOn: [d.id] })));
  $('report-submit').disabled = true;
  try {
    const prefix = ukey('draft');
    await outbox.enqueue(items, {
      stores: ['kv'],
      alsoInTx: (tr) => req(tr.objectStore('kv').delete(IDBKeyRange.bound(prefix, `${prefix}\uffff`))),
    });
    done(t('report.queued'));
  } catch (err) {
    if (err && err.name === 'ConstraintError') {
      // the same draft was already submitted (from another tab): it is in the outbox once
      await kv.del(ukey('draft'));
      done(t('report.already'));
    } else {
      showError(storageMessage(err));
      renderReady();
    }
  }
}

function done(text) {
  draft = newDraft();
  blobs = new Map();
  pinMode = false;
  map.fitted = false;
  located = { key: null, grid: undefined };
  $('report-category-search').value = '';
  $('report-message').hidden = true;
  $('report-done').textContent = text;
  $('report-done').hidden = false;
  fillCategories();
  render();
}
