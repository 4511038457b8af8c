// Boot, sign-in and sign-out, the role-based navigation and the hash router.
import { call, get, getToken, onUnauthorized, problemText, setToken, NetError } from './api.js';
import { applyLang, initLang, t, toggleLang } from './i18n.js';
import { hasRole, loadRefs, session } from './store.js';
import { $, h, toast } from './ui.js';
import * as queue from './views/queue.js';
import * as caseView from './views/case.js';
import * as cases from './views/cases.js';
import * as mapView from './views/map.js';
import * as kpis from './views/kpis.js';
import * as inspectors from './views/inspectors.js';
import * as admin from './views/admin.js';

const DESK_ROLES = ['dispatcher', 'supervisor', 'admin'];
const VIEWS = {
  queue: { module: queue, roles: ['dispatcher', 'supervisor'], nav: 'nav.queue', href: '#/queue' },
  case: { module: caseView, roles: null },
  cases: { module: cases, roles: null, nav: 'nav.cases', href: '#/cases' },
  map: { module: mapView, roles: DESK_ROLES, nav: 'nav.map', href: '#/map' },
  kpis: { module: kpis, roles: ['supervisor', 'dispatcher'], nav: 'nav.kpis', href: '#/kpis' },
  inspectors: { module: inspectors, roles: ['supervisor', 'dispatcher'], nav: 'nav.inspectors', href: '#/inspectors' },
  admin: { module: admin, roles: ['admin'], nav: 'nav.admin', href: '#/admin' },
};

let current = null; // {name, instance}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || '', parts: parts.slice(1), query: new URLSearchParams(query) };
}

function homeView() {
  if (hasRole('dispatcher')) return '#/queue/register';
  if (hasRole('supervisor')) return '#/kpis';
  if (hasRole('admin')) return '#/admin';
  return '#/cases';
}

function allowed(view) {
  return !view.roles || hasRole(...view.roles);
}

function renderNav() {
  const nav = $('nav');
  const { name } = parseHash();
  nav.replaceChildren(...Object.entries(VIEWS).filter(([, v]) => v.nav && allowed(v)).map(([key, v]) =>
    h('a', { href: v.href, class: key === name || (name === 'case' && key === 'queue') ? 'active' : '', testid: `nav-${key}` }, t(v.nav))));
  const me = session.me;
  $('who').textContent = me ? `${me.display_name || me.username} · ${me.roles.map((r) => t(`role.${r}`)).join('、')}` : '';
}

function route() {
  if (!session.me) return;
  const r = parseHash();
  const view = VIEWS[r.name];
  if (!view || !allowed(view)) {
    location.replace(homeView());
    return;
  }
  renderNav();
  const main = $('main');
  if (current && current.name === r.name && current.instance && current.instance.update) {
    current.instance.update(r);
    return;
  }
  if (current && current.instance && current.instance.unmount) current.instance.unmount();
  main.replaceChildren();
  main.dataset.view = r.name;
  current = { name: r.name, instance: view.module.mount(main, r) };
}

function remount() {
  if (current && current.instance && current.instance.unmount) current.instance.unmount();
  current = null;
  route();
}

// ------------------------------------------------------------------ sign-in

function showLogin(message) {
  session.me = null;
  if (current && current.instance && current.instance.unmount) current.instance.unmount();
  current = null;
  $('top').hidden = true;
  $('main').hidden = true;
  $('main').replaceChildren();
  $('view-login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  document.querySelector('[data-testid="login-username"]').focus();
}

async function enter(me) {
  session.me = me;
  if (!me.roles.some((r) => DESK_ROLES.includes(r))) {
    setToken(null);
    showLogin(t('login.notDesk'));
    return;
  }
  await loadRefs();
  $('view-login').hidden = true;
  $('top').hidden = false;
  $('main').hidden = false;
  if (!location.hash || location.hash === '#/' || location.hash === '#') location.replace(homeView());
  route();
}

async function signIn(e) {
  e.preventDefault();
  const form = e.target;
  const button = form.querySelector('[type=submit]');
  button.disabled = true;
  try {
    const res = await call('/auth/token', { method: 'POST', auth: false,
      json: { username: form.username.value.trim(), password: form.password.value } });
    if (res.status === 401) { showLogin(t('login.bad')); return; }
    if (!res.ok) { showLogin(`${t('login.failed')}: ${problemText(res)}`); return; }
    setToken(res.data.access_token);
    form.password.value = '';
    await enter(res.data.user);
  } catch (err) {
    showLogin(err instanceof NetError ? t('login.offline') : `${t('login.failed')}: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try { await call('/auth/token', { method: 'DELETE' }); } catch { /* the token dies with the tab anyway */ }
  setToken(null);
  location.hash = '';
  showLogin();
}

async function boot() {
  initLang();
  applyLang();
  $('login-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  const flip = () => { toggleLang(); applyLang(); if (session.me) { renderNav(); remount(); } };
  $('lang-toggle').addEventListener('click', flip);
  $('login-lang').addEventListener('click', flip);
  window.addEventListener('hashchange', route);
  onUnauthorized(() => { setToken(null); showLogin(t('login.expired')); });
  if (!getToken()) { showLogin(); return; }
  try {
    await enter(await get('/me'));
  } catch (err) {
    setToken(null);
    showLogin(err.status === 401 ? '' : err.message);
  }
}

window.addEventListener('unhandledrejection', (e) => {
  // an action failed without its own message: say so rather than fail silently
  if (e.reason && e.reason.message) toast(e.reason.message, 'error');
});

boot().catch((err) => toast(`${t('boot.failed')}: ${err.message}`, 'error', 10000));
