// Patrol: record the track with watchPosition (screen kept awake where the browser allows) and
// upload it in ordered batches through the outbox. The recording state lives in IndexedDB and
// each batch leaves the buffer in the same transaction that queues it, so a reload or a crash
// neither loses nor repeats a point. One tab records at a time (a Web Lock).
import { kv, req } from '../db.js';
import * as geo from '../geo.js';
import { t } from '../i18n.js';
import * as outbox from '../outbox.js';
import { on, state, ukey } from '../state.js';
import { $ } from '../ui.js';

const BATCH = 10;
const BATCH_EVERY_MS = 30000;
let stopWatch = null;
let releaseLock = null;
let wakeLock = null;
let chain = Promise.resolve();
let batchTimer = null;
let last = null;
let elsewhere = false;

export function init() {
  $('patrol-start').addEventListener('click', start);
  $('patrol-stop').addEventListener('click', stop);
  on('session', resume);
  on('lang', () => render());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && stopWatch) keepAwake();
  });
}

export async function show() { await render(); }

const load = () => kv.get(ukey('patrol'));

async function render(st) {
  if (!state.user) return;
  st = st || (await load());
  const active = !!(st && st.active);
  $('patrol-points').textContent = String(st ? st.count : 0);
  $('patrol-start').hidden = active;
  $('patrol-stop').hidden = !active;
  let text = active ? t('patrol.recording') : t('patrol.idle');
  if (active && elsewhere) text = t('patrol.elsewhere');
  else if (active && last) text += ` · ±${last.accuracy_m} m`;
  $('patrol-status').textContent = text;
  $('patrol-status').dataset.state = active ? (elsewhere ? 'elsewhere' : 'recording') : 'idle';
}

async function start() {
  if ((await load())?.active) return;
  const begin = outbox.item('patrol_start', {}, { label: 'patrol' });
  const st = { active: true, start_id: begin.id, last_id: begin.id, seq: 0, buffer: [], count: 0, started_at: begin.created_at, last: null };
  await outbox.enqueue([begin], { stores: ['kv'], alsoInTx: (tr) => req(tr.objectStore('kv').put(st, ukey('patrol'))) });
  await record();
  render(st);
}

async function stop() {
  await enqueueWork(async (st) => {
    const items = [];
    if (st.buffer.length) items.push(batch(st));
    items.push(outbox.item('patrol_end', { start_id: st.start_id }, { dependsOn: [...new Set([st.start_id, st.last_id])] }));
    st.active = false;
    return items;
  });
  quit();
  render();
}

// Sign-out: stop recording; the data itself is removed with the rest of the person's.
export function stopForSignOut() { quit(); }

function quit() {
  if (stopWatch) stopWatch();
  stopWatch = null;
  clearInterval(batchTimer);
  if (releaseLock) releaseLock();
  releaseLock = null;
  if (wakeLock) wakeLock.release().catch(() => {});
  wakeLock = null;
  last = null;
}

async function resume() {
  quit();
  elsewhere = false;
  const st = await load();
  if (st && st.active) await record();
}

async function record() {
  if (stopWatch) return;
  const uid = state.user.id;
  if (navigator.locks) {
    const got = await new Promise((resolve) => {
      navigator.locks.request(`gridpatrol-patrol-${uid}`, { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(false); return null; }
        resolve(true);
        return new Promise((release) => { releaseLock = release; });
      });
    });
    elsewhere = !got;
    if (!got) { render(); return; }
  }
  stopWatch = geo.watch((fix) => { last = fix; chain = chain.then(() => addPoint(fix)).catch((e) => console.error('patrol', e)); }, () => render());
  batchTimer = setInterval(() => { chain = chain.then(() => enqueueWork((st) => (st.buffer.length ? [batch(st)] : []))); }, BATCH_EVERY_MS);
  keepAwake();
}

async function keepAwake() {
  try {
    if ('wakeLock' in navigator && !wakeLock) {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', () => { wakeLock = null; });
    }
  } catch { /* not allowed now (hidden page, power saving): recording goes on */ }
}

async function addPoint(fix) {
  if (!state.user) return;
  const st = await load();
  if (!st || !st.active) return;
  if (st.last && st.last.lon === fix.lon && st.last.lat === fix.lat) return; // the same fix reported again
  st.buffer.push({ lon: fix.lon, lat: fix.lat, accuracy_m: fix.accuracy_m, recorded_at: fix.at });
  st.count += 1;
  st.last = { lon: fix.lon, lat: fix.lat };
  if (st.buffer.length >= BATCH) {
    const item = batch(st);
    await outbox.enqueue([item], { stores: ['kv'], alsoInTx: (tr) => req(tr.objectStore('kv').put(st, ukey('patrol'))) });
  } else {
    await kv.set(ukey('patrol'), st);
  }
  render(st);
}

// The buffered points become the next batch: it waits for the one before, keeping the order.
function batch(st) {
  const item = outbox.item('patrol_points', { start_id: st.start_id, seq: st.seq, points: st.buffer },
    { dependsOn: [...new Set([st.start_id, st.last_id])] });
  st.seq += 1;
  st.last_id = item.id;
  st.buffer = [];
  return item;
}

function enqueueWork(make) {
  const run = async () => {
    const st = await load();
    if (!st || !st.active) return;
    const items = await make(st);
    await outbox.enqueue(items, { stores: ['kv'], alsoInTx: (tr) => req(tr.objectStore('kv').put(st, ukey('patrol'))) });
    render(st);
  };
  chain = chain.then(run);
  return chain;
}
