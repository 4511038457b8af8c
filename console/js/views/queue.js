// The dispatcher's queue: tabs for the work waiting (reports to register, cases to dispatch,
// returned cases, extension requests, overdue and escalated), counts on each tab, new work shown
// without reloading (polled), and the keyboard: 1–6 tabs, ↑/↓ or j/k rows, Enter opens,
// / searches, n makes a hotline report, r refreshes.
import { call, get, qs } from '../api.js';
import { OPEN, caseTable, rowKeys } from '../caselist.js';
import { t } from '../i18n.js';
import { hasRole, refs, catName } from '../store.js';
import { debounce, h, option } from '../ui.js';
import { hotlineReport } from './hotline.js';

export const TABS = [
  { name: 'register', query: { status: 'reported', sort: 'oldest' } },
  { name: 'dispatch', query: { status: 'registered', sort: 'oldest' } },
  { name: 'returned', query: { status: 'returned', sort: 'oldest' } },
  { name: 'extensions', query: { pending_extension: 'true', sort: 'oldest' } },
  { name: 'overdue', query: { overdue: 'true', sort: 'oldest' } },
  { name: 'escalated', query: { escalated: 'true', status: OPEN, sort: 'oldest' } },
];
const POLL_MS = 5000;
const PAGE = 100;
let countsEndpoint = true; // GET /cases/queue-counts, until it answers 404

export function mount(root, route) {
  let tab = TABS.find((x) => x.name === route.parts[0]) || TABS[0];
  let items = [];
  let total = 0;
  let perPage = PAGE;
  let selectedId = null;
  let seen = null; // ids shown before, per tab: what is new since
  let timer = null;
  let alive = true;
  let filters = { q: '', category: '' };

  const tabButtons = TABS.map((x, i) => h('button', {
    type: 'button', role: 'tab', class: 'tab', testid: `queue-tab-${x.name}`, dataset: { tab: x.name },
    title: `${t(`queue.${x.name}`)} (${i + 1})`, onclick: () => { location.hash = `#/queue/${x.name}`; },
  }, h('span', { text: t(`queue.${x.name}`) }), h('b', { class: 'count', testid: `queue-count-${x.name}`, text: '·' })));
  const search = h('input', { type: 'search', class: 'search', testid: 'queue-search', placeholder: t('queue.search'),
    oninput: debounce(() => { filters.q = search.value.trim(); reload(true); }, 300) });
  const catSelect = h('select', { testid: 'queue-category', 'aria-label': t('col.category'),
    onchange: () => { filters.category = catSelect.value; reload(true); } },
  option('', t('filter.allCategories')), refs.categories.filter((c) => c.active).map((c) => option(c.code, `${c.code} ${catName(c)}`)));
  const updated = h('span', { class: 'muted small', testid: 'queue-updated' });
  const list = h('div', { class: 'queue-list', testid: 'queue-list' });
  const more = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => { perPage += PAGE; reload(false); } }, t('queue.more'));
  const newReport = hasRole('dispatcher') && h('button', { type: 'button', class: 'primary', testid: 'hotline-new',
    onclick: () => hotlineReport((c) => { location.hash = `#/case/${c.id}`; }) }, t('hotline.new'));

  root.append(h('div', { class: 'page queue-page' },
    h('div', { class: 'tabs', role: 'tablist', testid: 'queue-tabs' }, tabButtons),
    h('div', { class: 'toolbar' }, search, catSelect, h('span', { class: 'spacer' }), updated,
      h('button', { type: 'button', testid: 'queue-refresh', onclick: () => reload(false) }, t('refresh')), newReport),
    list, more,
    h('p', { class: 'muted small keys' }, t('queue.keys'))));

  function markTab() {
    for (const b of tabButtons) {
      const on = b.dataset.tab === tab.name;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', String(on));
    }
  }

  async function loadCounts() {
    let counts = null;
    if (countsEndpoint) {
      const res = await call('/cases/queue-counts');
      if (res.ok) counts = res.data;
      else if (res.status === 404 || res.status === 405) countsEndpoint = false;
    }
    if (!counts) {
      // until GET /cases/queue-counts exists: each tab's total from its own list
      const totals = await Promise.all(TABS.map((x) => get(`/cases${qs({ ...x.query, per_page: 1 })}`).then((r) => r.total)));
      counts = Object.fromEntries(TABS.map((x, i) => [x.name, totals[i]]));
    }
    for (const b of tabButtons) {
      const n = counts[b.dataset.tab];
      const el = b.querySelector('.count');
      el.textContent = n == null ? '·' : String(n);
      el.dataset.count = String(n ?? '');
      b.classList.toggle('has-work', n > 0);
    }
  }

  function rows() { return [...list.querySelectorAll('[data-testid="queue-item"]')]; }

  function selectRow(row, focus = true) {
    for (const r of rows()) { r.classList.remove('selected'); r.tabIndex = -1; r.setAttribute('aria-selected', 'false'); }
    row.classList.add('selected');
    row.tabIndex = 0;
    row.setAttribute('aria-selected', 'true');
    selectedId = Number(row.dataset.caseId);
    if (focus) row.focus();
  }

  function open(row) {
    sessionStorage.setItem('gridpatrol.console.queue', JSON.stringify({ tab: tab.name, ids: items.map((c) => c.id) }));
    location.hash = `#/case/${row.dataset.caseId}`;
  }

  function draw(newIds) {
    if (!items.length) {
      list.replaceChildren(h('p', { class: 'empty', testid: 'queue-empty' }, t(filters.q || filters.category ? 'queue.noneFiltered' : `queue.empty.${tab.name}`)));
    } else {
      const hadFocus = list.contains(document.activeElement);
      list.replaceChildren(caseTable(items, {
        selectedId, newIds, onOpen: (c) => open({ dataset: { caseId: c.id } }),
        onSelect: (c, row) => { if (!row.classList.contains('selected')) selectRow(row, false); },
      }));
      if (hadFocus) { const sel = list.querySelector('tr.selected'); if (sel) sel.focus(); }
    }
    more.hidden = items.length >= total;
  }

  let loading = null;
  let lastSignature = null;
  let lastDraw = 0;
  async function reload(resetSelection) {
    if (loading) return loading;
    loading = (async () => {
      try {
        const query = { ...tab.query, per_page: perPage, q: filters.q || undefined, category: filters.category || undefined };
        const [data] = await Promise.all([get(`/cases${qs(query)}`), loadCounts()]);
        if (!alive) return;
        const ids = new Set(data.items.map((c) => c.id));
        const newIds = seen ? new Set([...ids].filter((id) => !seen.has(id))) : new Set();
        seen = new Set([...(seen || []), ...ids]);
        const signature = JSON.stringify([tab.name, data.total, data.items.map((c) => [c.id, c.version, c.timer])]);
        items = data.items;
        total = data.total;
        if (resetSelection || !ids.has(selectedId)) selectedId = items.length ? items[0].id : null;
        // an unchanged list is drawn again only once a minute (for the ages); the rows keep focus and scroll
        if (resetSelection || newIds.size || signature !== lastSignature || Date.now() - lastDraw > 60000) {
          draw(newIds);
          lastSignature = signature;
          lastDraw = Date.now();
        }
        updated.textContent = t('queue.updated', { time: new Date().toLocaleTimeString() });
        updated.dataset.at = String(Date.now());
      } catch (err) {
        if (alive) updated.textContent = `${t('queue.failed')}: ${err.message}`;
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  const keys = rowKeys(rows, (r) => selectRow(r), open);
  function onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
    if (typing) {
      if (e.key === 'Escape' || (e.key === 'ArrowDown' && e.target === search)) {
        const r = list.querySelector('tr.selected') || rows()[0];
        if (r) { e.preventDefault(); selectRow(r); }
      }
      return;
    }
    if (/^[1-6]$/.test(e.key)) { location.hash = `#/queue/${TABS[Number(e.key) - 1].name}`; e.preventDefault(); return; }
    if (e.key === '/') { e.preventDefault(); search.focus(); return; }
    if (e.key === 'r') { reload(false); return; }
    if (e.key === 'n' && newReport) { e.preventDefault(); newReport.click(); return; }
    if (e.target.closest && e.target.closest('.mapview')) return;
    if (keys(e)) e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden) await reload(false);
      if (alive) poll();
    }, POLL_MS);
  }
  const onVisible = () => { if (!document.hidden) reload(false); };
  document.addEventListener('visibilitychange', onVisible);

  markTab();
  reload(true).then(() => { const r = list.querySelector('tr.selected'); if (r && !document.activeElement.closest('input,select,textarea')) r.focus(); });
  poll();

  return {
    update(r) {
      const next = TABS.find((x) => x.name === r.parts[0]) || TABS[0];
      if (next.name === tab.name) return;
      tab = next;
      items = [];
      seen = null;
      perPage = PAGE;
      markTab();
      list.replaceChildren(h('p', { class: 'muted' }, t('loading')));
      reload(true).then(() => { const row = list.querySelector('tr.selected'); if (row) row.focus(); });
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
