// What the views share: the signed-in person, the reference data kept for offline use, and
// an event bus. Everything of a person is stored under "u:<id>:" keys (see db.js).
import { call, setToken } from './api.js';
import { kv } from './db.js';

export const state = { session: null, user: null, categories: [], grids: [], config: { tile_url: null } };
export const bus = new EventTarget();
export const emit = (name, detail) => bus.dispatchEvent(new CustomEvent(name, { detail }));
export const on = (name, fn) => bus.addEventListener(name, (e) => fn(e.detail));
export const ukey = (name) => `u:${state.user.id}:${name}`;
export const hasRole = (...roles) => !!state.user && roles.some((r) => state.user.roles.includes(r));
const WORLD = '-180,-90,180,90';
const GRIDS_MAX_AGE_MS = 12 * 3600 * 1000;

export async function loadSession() {
  const s = await kv.get('session');
  state.session = s || null;
  state.user = s ? s.user : null;
  setToken(s && !s.expired ? s.token : null);
  if (state.user) await loadCached();
  return state.session;
}

export async function saveSession(session) {
  state.session = session;
  state.user = session.user;
  setToken(session.expired ? null : session.token);
  await kv.set('session', session);
}

async function loadCached() {
  state.categories = (await kv.get(ukey('categories'))) || [];
  state.grids = ((await kv.get(ukey('grids'))) || {}).features || [];
  state.config = (await kv.get('config')) || state.config;
  document.body.dataset.referenceCached = String(state.categories.length > 0 && (await kv.get(ukey('grids'))) != null);
}

// Refresh what is kept for offline use; quietly keeps the old copy when the network fails.
export async function refreshReference({ force = false } = {}) {
  if (!state.user || !navigator.onLine) return;
  const uid = state.user.id;
  try {
    const cfg = await fetch('config.json', { cache: 'no-store' });
    if (cfg.ok) { state.config = await cfg.json(); await kv.set('config', state.config); }
  } catch { /* offline: keep the last one */ }
  try {
    const me = await call('/me');
    if (me.ok && state.user?.id === uid) {
      await saveSession({ ...state.session, user: { ...state.user, ...me.data } });
    }
    const cats = await call('/categories');
    if (cats.ok && state.user?.id === uid) {
      state.categories = cats.data.items.filter((c) => c.active);
      state.catalogVersion = cats.data.version;
      await kv.set(ukey('categories'), state.categories);
      await kv.set(ukey('catalog_version'), cats.data.version);
      emit('categories');
    }
    const cached = await kv.get(ukey('grids'));
    if (force || !cached || Date.now() - cached.fetched_at > GRIDS_MAX_AGE_MS) {
      const g = await call(`/grids?bbox=${WORLD}`, { timeout: 60000 });
      if (g.ok && state.user?.id === uid) {
        const data = typeof g.data === 'string' ? JSON.parse(g.data) : g.data;
        state.grids = data.features;
        await kv.set(ukey('grids'), { fetched_at: Date.now(), features: state.grids });
        emit('grids');
      }
    }
    // what a test (or a curious person) can check before going out of coverage
    document.body.dataset.referenceCached = String(state.categories.length > 0 && (await kv.get(ukey('grids'))) != null);
  } catch (e) {
    console.warn('reference data not refreshed', e);
  }
}

export const myGridCodes = () => (state.user && state.user.grid_codes) || [];
