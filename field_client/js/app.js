// The field client: boot, sign-in and sign-out, navigation, network state, the service worker.
import { call, onUnauthorized, setToken } from './api.js';
import { kv, purgeUser } from './db.js';
import { applyLang, initLang, lang, t, toggleLang } from './i18n.js';
import * as outbox from './outbox.js';
import { emit, hasRole, loadSession, on, refreshReference, saveSession, state } from './state.js';
import { $, confirmBox, h, toast } from './ui.js';
import * as home from './views/home.js';
import * as outboxView from './views/outbox.js';
import * as patrol from './views/patrol.js';
import * as report from './views/report.js';
import * as tasks from './views/tasks.js';

const VIEWS = { map: home, report, tasks, patrol, outbox: outboxView };
let current = null;

async function boot() {
  await initLang();
  registerServiceWorker();
  setupNetwork();
  $('lang-toggle').addEventListener('click', async () => { await toggleLang(); emit('lang'); });
  $('signout').addEventListener('click', signOut);
  $('login-form').addEventListener('submit', signIn);
  document.querySelectorAll('[data-nav]').forEach((b) => b.addEventListener('click', () => go(b.dataset.nav)));
  window.addEventListener('hashchange', () => go(location.hash.slice(1), false));
  outbox.configure({ onAuthLost: authLost, onSent: (it) => emit('sent', it) });
  onUnauthorized(authLost);
  outbox.onChange(updateCount);
  Object.values(VIEWS).forEach((v) => v.init());
  on('lang', () => { applyLang(); updateCount(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.user && !state.session.expired) {
      outbox.flush();
      navigator.serviceWorker?.getRegistration().then((r) => r && r.update()).catch(() => {});
    }
  });

  const session = await loadSession();
  if (!session) return showLogin();
  if (session.expired) return showLogin(t('login.expired'));
  startSession();
}

function startSession() {
  $('tabs').hidden = false;
  $('signout').hidden = false;
  for (const b of document.querySelectorAll('nav [data-nav]')) {
    const need = { report: ['inspector', 'dispatcher'], patrol: ['inspector'] }[b.dataset.nav];
    b.hidden = !!need && !hasRole(...need);
  }
  outbox.setUser(state.user.id);
  updateCount();
  emit('session');
  go(location.hash.slice(1) || (hasRole('inspector') ? 'map' : 'tasks'), false);
  refreshReference().then(() => emit('reference'));
  if (navigator.storage?.persist) navigator.storage.persist().catch(() => {});
}

export function go(name, push = true) {
  if (!state.user || state.session?.expired) return;
  if (!VIEWS[name] || document.querySelector(`nav [data-nav="${name}"]`).hidden) name = hasRole('inspector') ? 'map' : 'tasks';
  if (push && location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  if (current && current !== name) VIEWS[current].hide?.();
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${name}`;
  document.querySelectorAll('nav [data-nav]').forEach((b) => b.classList.toggle('active', b.dataset.nav === name));
  if (current !== name) window.scrollTo(0, 0);
  current = name;
  VIEWS[name].show();
}

function showLogin(notice) {
  if (current) VIEWS[current].hide?.();
  current = null;
  $('tabs').hidden = true;
  $('signout').hidden = true;
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-login';
  $('login-notice').hidden = !notice;
  $('login-notice').textContent = notice || '';
  const form = $('login-form');
  form.reset();
  if (state.session?.expired) form.username.value = state.session.user.username;
}

async function signIn(e) {
  e.preventDefault();
  const form = e.target;
  const err = $('login-error');
  err.hidden = true;
  const button = $('login-form').querySelector('[type=submit]');
  button.disabled = true;
  try {
    const res = await call('/auth/token', { method: 'POST', auth: false, json: { username: form.username.value.trim(), password: form.password.value } });
    if (!res.ok) {
      err.textContent = res.status === 401 ? t('login.bad') : `${t('login.failed')} (${res.status})`;
      err.hidden = false;
      return;
    }
    form.password.value = '';
    const previous = state.session;
    await saveSession({ token: res.data.access_token, expires_at: res.data.expires_at, user: res.data.user, expired: false });
    if (previous && previous.user.id !== res.data.user.id) {
      // another person's session had run out on this device: theirs stays theirs
      outbox.setUser(null);
    }
    await loadSession();
    startSession();
  } catch {
    err.textContent = t('login.offline');
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// A 401: the items stay in the outbox; the person signs in again and they go.
async function authLost() {
  if (!state.session || state.session.expired) return;
  await saveSession({ ...state.session, expired: true, token: null });
  outbox.setUser(null);
  const n = await outbox.unsentCount(state.user.id);
  showLogin(n ? t('login.expiredItems', { n }) : t('login.expired'));
}

async function signOut() {
  const n = await outbox.unsentCount();
  if (n && !(await confirmBox(t('signout.warn', { n }), t('signout.confirm'), t('cancel')))) return;
  const uid = state.user.id;
  patrol.stopForSignOut();
  if (navigator.onLine && state.session.token) {
    call('/auth/token', { method: 'DELETE', timeout: 5000 }).catch(() => {});
  }
  outbox.setUser(null);
  setToken(null);
  await purgeUser(uid);
  await kv.del('session');
  state.session = state.user = null;
  state.categories = [];
  state.grids = [];
  history.replaceState(null, '', '#');
  emit('signedout');
  updateCount();
  showLogin(t('signout.done'));
}

let countSeq = 0;
async function updateCount() {
  const seq = ++countSeq;
  const n = state.user && !state.session?.expired ? await outbox.unsentCount() : 0;
  if (seq !== countSeq) return; // a later count is on its way
  $('outbox-count').textContent = String(n);
  $('outbox-badge').classList.toggle('has', n > 0);
}

function setupNetwork() {
  const show = () => {
    const online = navigator.onLine;
    const el = document.querySelector('[data-testid="net-status"]');
    el.dataset.online = String(online);
    el.querySelector('.net-text').textContent = t(online ? 'net.online' : 'net.offline');
    emit('network', online);
  };
  window.addEventListener('online', () => { show(); if (state.user && !state.session.expired) { outbox.flush(); refreshReference().then(() => emit('reference')); } });
  window.addEventListener('offline', show);
  on('lang', show);
  show();
}

// The shell comes from the service worker's versioned cache. A new version installs beside the
// old one, takes over, and the page reloads once: the outbox in IndexedDB is not touched.
function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  const hadController = !!navigator.serviceWorker.controller;
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', async () => {
    if (!hadController || reloading) return;
    reloading = true;
    await report.saveNow();
    location.reload();
  });
  navigator.serviceWorker.register('sw.js', { scope: './' }).then((reg) => {
    setInterval(() => reg.update().catch(() => {}), 30 * 60 * 1000);
  }).catch((e) => console.warn('service worker not registered', e));
}

boot().catch((e) => {
  console.error(e);
  document.body.prepend(h('p', { class: 'error', text: `${t('boot.failed')}: ${e.message}` }));
});
export { lang };
