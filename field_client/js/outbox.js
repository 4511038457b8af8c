// The one persistent outbox: reports, photos, actions and patrol batches, each sent exactly
// once. An item keeps the Idempotency-Key made when it was captured; it leaves the outbox only
// when the server has confirmed it. Statuses: queued, sending, sent, needs_attention.
import { call, NetError, problemText } from './api.js';
import { req, tx } from './db.js';

export const UNSENT = new Set(['queued', 'sending', 'needs_attention']);
const KEEP_SENT_MS = 24 * 3600 * 1000;
const channel = 'BroadcastChannel' in self ? new BroadcastChannel('gridpatrol-outbox') : null;
const listeners = new Set();
let userId = null;
let timer = null;
let running = null;
let onAuthLost = () => {};
let onSent = () => {};
let counter = 0;

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function configure(opts) {
  ({ onAuthLost = onAuthLost, onSent = onSent } = opts);
}

export function setUser(id) {
  userId = id;
  clearTimeout(timer);
  if (id != null) schedule(0);
}

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function changed(remote = false) {
  if (!remote && channel) channel.postMessage('changed');
  return Promise.all([...listeners].map((fn) => Promise.resolve().then(fn).catch((e) => console.error(e))));
}
if (channel) channel.onmessage = () => { changed(true); schedule(1000); };

// A new item, ready to add: kind, payload, and the items it waits for.
export function item(kind, payload, { dependsOn = [], label = '', id = uuid(), key = uuid() } = {}) {
  const now = Date.now();
  return {
    id, key, kind, payload, label, user_id: userId, depends_on: dependsOn, status: 'queued',
    attempts: 0, next_try: 0, message: null, conflict: false, response: null,
    created_at: new Date(now).toISOString(), order: now * 1000 + (counter++ % 1000),
  };
}

// Add items in one transaction; `add` refuses an id already there (the same draft sent twice).
// `alsoInTx(t)` runs in the same transaction (on stores listed in `stores`), e.g. to drop the draft.
export async function enqueue(items, { stores = [], alsoInTx = null } = {}) {
  await tx(['outbox', ...stores], 'readwrite', (t) => {
    const store = t.objectStore('outbox');
    return Promise.all([...items.map((it) => req(store.add(it))), alsoInTx && alsoInTx(t)]);
  });
  await changed(); // the count on screen includes the new items before the caller says "saved"
  schedule(0);
}

export async function list(uid = userId) {
  if (uid == null) return [];
  const items = await tx('outbox', 'readonly', (t) => req(t.objectStore('outbox').index('user').getAll(IDBKeyRange.only(uid))));
  return items.sort((a, b) => a.order - b.order);
}

export async function get(id) {
  return tx('outbox', 'readonly', (t) => req(t.objectStore('outbox').get(id)));
}

// Read-modify-write one item inside a transaction.
export async function update(id, fn) {
  const out = await tx('outbox', 'readwrite', async (t) => {
    const store = t.objectStore('outbox');
    const it = await req(store.get(id));
    if (!it) return null;
    const next = fn(it) || it;
    await req(store.put(next));
    return next;
  });
  changed();
  return out;
}

export async function remove(ids) {
  await tx('outbox', 'readwrite', (t) => Promise.all(ids.map((id) => req(t.objectStore('outbox').delete(id)))));
  changed();
}

export async function unsentCount(uid = userId) {
  return (await list(uid)).filter((it) => UNSENT.has(it.status)).length;
}

// An item and everything that waits for it, directly or not.
export function withDependents(items, id) {
  const out = new Set([id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const it of items) {
      if (!out.has(it.id) && it.depends_on.some((d) => out.has(d))) { out.add(it.id); grew = true; }
    }
  }
  return [...out];
}

export async function retry(id) {
  await update(id, (it) => Object.assign(it, { status: 'queued', attempts: 0, next_try: 0, message: null, conflict: false }));
  schedule(0);
}

// ------------------------------------------------------------------ sending

export function schedule(ms) {
  if (userId == null) return;
  clearTimeout(timer);
  timer = setTimeout(() => flush(), Math.max(0, ms));
}

// Send what can be sent now. Web Locks keep two tabs from sending at once: the tab that gets the
// lock sends, the other tries again later. `force` ignores the backoff (the "send now" button).
export function flush({ force = false } = {}) {
  if (userId == null) return Promise.resolve();
  if (running) {
    if (force) running.then(() => flush({ force }));
    return running;
  }
  const uid = userId;
  const work = async () => {
    if (!navigator.locks) return sendAll(uid, force);
    return navigator.locks.request(`gridpatrol-outbox-${uid}`, { ifAvailable: true }, (lock) => {
      if (!lock) { schedule(3000); return null; }
      return sendAll(uid, force);
    });
  };
  running = work().catch((e) => console.error('outbox', e)).finally(() => { running = null; });
  return running;
}

async function sendAll(uid, force) {
  await prune();
  for (;;) {
    if (uid !== userId) return;
    const items = await list();
    const byId = new Map(items.map((it) => [it.id, it]));
    const now = Date.now();
    const ready = items.filter((it) => (it.status === 'queued' || it.status === 'sending')
      && it.depends_on.every((d) => byId.get(d)?.status === 'sent')
      && (force || it.next_try <= now));
    if (!ready.length || !navigator.onLine) break;
    const outcome = await send(ready[0], byId);
    if (outcome === 'auth' || outcome === 'retry-later') break;
  }
  planNext();
}

async function planNext() {
  const items = await list();
  const waiting = items.filter((it) => it.status === 'queued' || it.status === 'sending');
  if (!waiting.length || !navigator.onLine) return; // going online flushes
  const next = Math.min(...waiting.map((it) => it.next_try || 0));
  schedule(Math.max(1000, next - Date.now()));
}

function backoff(attempts) {
  const base = Math.min(5 * 60 * 1000, 2000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function responseOf(byId, id) { return byId.get(id)?.response; }

function request(it, byId) {
  const p = it.payload;
  switch (it.kind) {
    case 'report':
      return call('/reports', { method: 'POST', json: p.body, headers: { 'Idempotency-Key': it.key } });
    case 'photo': {
      const caseId = p.case_id ?? responseOf(byId, p.report_id).id;
      const form = new FormData();
      form.append('kind', p.kind);
      if (p.taken_at) form.append('taken_at', p.taken_at);
      form.append('file', p.blob, p.name || 'photo.jpg');
      return call(`/cases/${caseId}/photos`, { method: 'POST', form, headers: { 'Idempotency-Key': it.key }, timeout: 120000 });
    }
    case 'action': {
      const body = { ...p.body, client_time: it.created_at };
      if (p.photo_items?.length) body.photo_ids = p.photo_items.map((id) => responseOf(byId, id).id);
      return call(`/cases/${p.case_id}/actions/${p.action}`, { method: 'POST', json: body, headers: { 'If-Match': `"${p.version}"` } });
    }
    case 'patrol_start':
      return call('/patrols', { method: 'POST', json: { client_time: it.created_at }, headers: { 'Idempotency-Key': it.key } });
    case 'patrol_points':
      return call(`/patrols/${responseOf(byId, p.start_id).id}/points`, { method: 'POST', json: { seq: p.seq, points: p.points } });
    case 'patrol_end':
      return call(`/patrols/${responseOf(byId, p.start_id).id}/end`, { method: 'POST', json: { client_time: it.created_at } });
    default:
      throw new Error(`unknown outbox item ${it.kind}`);
  }
}

async function send(it, byId) {
  await update(it.id, (x) => Object.assign(x, { status: 'sending', attempts: x.attempts + 1, last_try: Date.now() }));
  let res;
  try {
    res = await request(it, byId);
  } catch (e) {
    if (!(e instanceof NetError)) {
      // a bug or a damaged item: show it, never loop on it
      await update(it.id, (x) => Object.assign(x, { status: 'needs_attention', message: String(e && e.message) }));
      return 'attention';
    }
    await update(it.id, (x) => Object.assign(x, { status: 'queued', next_try: Date.now() + backoff(x.attempts), message: null }));
    return 'retry-later';
  }
  const s = res.status;
  if (res.ok) {
    const sent = await update(it.id, (x) => Object.assign(x, {
      status: 'sent', response: res.data, message: null, conflict: false, sent_at: Date.now(),
    }));
    onSent(sent);
    return 'sent';
  }
  if (s === 401) {
    // keep the item exactly as it was: it goes once the person has signed in again
    await update(it.id, (x) => Object.assign(x, { status: 'queued', attempts: Math.max(0, x.attempts - 1), next_try: 0 }));
    onAuthLost();
    return 'auth';
  }
  const inFlight = s === 409 && /in flight/i.test(res.data?.detail || '');
  if (s >= 500 || s === 429 || s === 408 || inFlight) {
    const after = Number(res.headers.get('Retry-After')) * 1000 || 0;
    await update(it.id, (x) => Object.assign(x, {
      status: 'queued', next_try: Date.now() + Math.max(after, backoff(x.attempts)), message: problemText(res),
    }));
    return 'retry-later';
  }
  // 409 (not allowed now), 412 (the case changed) and every other 4xx: the person decides
  await update(it.id, (x) => Object.assign(x, {
    status: 'needs_attention', message: problemText(res), http_status: s, conflict: s === 409 || s === 412,
  }));
  onSent(null);
  return 'attention';
}

// Sent items stay visible for a day, and as long as an unsent item needs their answer; a sent
// photo keeps its picture while an action that uses it is unsent (a conflict shows it again).
async function prune() {
  const items = await list();
  const needed = new Set();
  for (const it of items) if (it.status !== 'sent') it.depends_on.forEach((d) => needed.add(d));
  const done = items.filter((it) => it.kind === 'photo' && it.status === 'sent' && it.payload.blob && !needed.has(it.id));
  for (const it of done) {
    await update(it.id, (x) => { x.payload = { ...x.payload, size: x.payload.blob?.size, blob: null }; });
  }
  const old = items.filter((it) => it.status === 'sent' && !needed.has(it.id) && Date.now() - (it.sent_at || 0) > KEEP_SENT_MS);
  if (old.length) await remove(old.map((it) => it.id));
}
