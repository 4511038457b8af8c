// The case search, and the list behind a KPI figure (drill-down: ?kpi=&group_by=&key=&from=&to=&as_of=).
// The filters live in the URL, so a list can be bookmarked, shared, or reloaded as it was.
import { download, get, qs } from '../api.js';
import { STATES, caseTable, rowKeys } from '../caselist.js';
import { t } from '../i18n.js';
import { catName, refs, streets, areaName } from '../store.js';
import { debounce, fmtDate, h, option, toast } from '../ui.js';

const PER_PAGE = 50;
const KEYS = ['q', 'status', 'category', 'team', 'street', 'community', 'grid', 'overdue', 'escalated', 'pending_extension', 'reporter',
  'source', 'urgency', 'from', 'to', 'kpi', 'group_by', 'key', 'area', 'as_of', 'sort', 'page'];

export function mount(root, route) {
  let params = paramsOf(route.query);
  let alive = true;
  const list = h('div', { class: 'queue-list', testid: 'cases-list' });
  const summary = h('p', { class: 'muted', testid: 'cases-total' });
  const pager = h('div', { class: 'pager' });
  const banner = h('div', { class: 'drill', testid: 'drill-banner' });

  const q = h('input', { type: 'search', class: 'search', placeholder: t('queue.search'), testid: 'cases-search', value: params.q || '' });
  const status = h('select', { testid: 'cases-status', 'aria-label': t('col.status') }, option('', t('filter.allStatuses')),
    option('open', t('filter.open')), STATES.map((s) => option(s, t(`status.${s}`))));
  const category = h('select', { testid: 'cases-category', 'aria-label': t('col.category') }, option('', t('filter.allCategories')),
    refs.categories.map((c) => option(c.code, `${c.code} ${catName(c)}`)));
  const team = h('select', { testid: 'cases-team', 'aria-label': t('col.team') }, option('', t('filter.allTeams')),
    refs.teams.map((x) => option(x.id, x.name)));
  const street = h('select', { testid: 'cases-street', 'aria-label': t('kpi.by.street') }, option('', t('filter.allStreets')),
    streets().map((s) => option(s.code, areaName(s.code))));
  const overdue = h('label', { class: 'check' }, h('input', { type: 'checkbox', testid: 'cases-overdue' }), t('queue.overdue'));
  const setFromInputs = () => {
    const next = { ...params, q: q.value.trim(), category: category.value, team: team.value, street: street.value,
      overdue: overdue.querySelector('input').checked ? 'true' : '', page: '' };
    next.status = status.value === 'open' ? 'reported,registered,dispatched,in_progress,handled,returned,suspended' : status.value;
    go(next);
  };
  q.addEventListener('input', debounce(setFromInputs, 350));
  for (const el of [status, category, team, street, overdue]) el.addEventListener('change', setFromInputs);

  // the same filters as the list, every case they find (no paging), streamed by the server
  const exportAs = async (kind) => {
    const query = Object.fromEntries(KEYS.filter((k) => params[k] && k !== 'page').map((k) => [k, params[k]]));
    try {
      toast(t('cases.exported', { name: await download(`/exports/cases.${kind}${qs(query)}`) }), 'ok');
    } catch (err) { toast(err.message, 'error', 8000); }
  };
  const exportCsv = h('button', { type: 'button', testid: 'cases-export-csv', onclick: () => exportAs('csv') }, t('cases.exportCsv'));
  const exportGeojson = h('button', { type: 'button', testid: 'cases-export-geojson', onclick: () => exportAs('geojson') }, t('cases.exportGeojson'));

  root.append(h('div', { class: 'page cases-page' },
    h('h1', {}, t('nav.cases')), banner,
    h('div', { class: 'toolbar' }, q, status, category, team, street, overdue, exportCsv, exportGeojson),
    summary, list, pager));

  function go(next) {
    location.hash = `#/cases${qs(Object.fromEntries(Object.entries(next).filter(([, v]) => v)))}`;
  }

  function syncInputs() {
    q.value = params.q || '';
    status.value = params.status && params.status.includes(',') ? 'open' : params.status || '';
    category.value = params.category || '';
    team.value = params.team || '';
    street.value = params.street || '';
    overdue.querySelector('input').checked = params.overdue === 'true';
  }

  function drawBanner() {
    if (!params.kpi) { banner.hidden = true; return; }
    banner.hidden = false;
    const group = [params.group_by ? `${t(`kpi.by.${params.group_by}`)} ${params.key_label || params.key || ''}` : '',
      params.area ? areaName(params.area) : ''].filter(Boolean).join(' · ');
    banner.replaceChildren(h('b', {}, t('drill.title', { figure: t(`kpi.${params.kpi}`) })), ' ', group, ' · ',
      `${fmtDate(params.from)} – ${fmtDate(params.to || params.as_of)}`,
      ' ', h('a', { href: params.back || '#/kpis', testid: 'drill-back' }, t('drill.back')));
  }

  const rows = () => [...list.querySelectorAll('[data-testid="queue-item"]')];
  const select = (r) => { rows().forEach((x) => x.classList.remove('selected')); r.classList.add('selected'); r.focus(); };
  const keys = rowKeys(rows, select, (r) => { location.hash = `#/case/${r.dataset.caseId}`; });
  const onKey = (e) => {
    if (document.querySelector('dialog[open]') || /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    if (keys(e)) e.preventDefault();
  };
  document.addEventListener('keydown', onKey);

  async function load() {
    syncInputs();
    drawBanner();
    list.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    const page = Number(params.page || 1);
    const query = Object.fromEntries(KEYS.filter((k) => params[k]).map((k) => [k, params[k]]));
    query.per_page = PER_PAGE;
    try {
      const data = await get(`/cases${qs(query)}`);
      if (!alive) return;
      summary.textContent = t('cases.total', { n: data.total });
      summary.dataset.total = String(data.total);
      sessionStorage.removeItem('gridpatrol.console.queue');
      list.replaceChildren(data.items.length ? caseTable(data.items, { onOpen: (c) => { location.hash = `#/case/${c.id}`; } })
        : h('p', { class: 'empty', testid: 'cases-empty' }, t('cases.none')));
      const pages = Math.max(1, Math.ceil(data.total / PER_PAGE));
      pager.replaceChildren(
        h('button', { type: 'button', disabled: page <= 1, onclick: () => go({ ...params, page: String(page - 1) }) }, t('pager.prev')),
        h('span', {}, t('pager.page', { page, pages })),
        h('button', { type: 'button', disabled: page >= pages, onclick: () => go({ ...params, page: String(page + 1) }) }, t('pager.next')));
    } catch (err) {
      if (alive) list.replaceChildren(h('p', { class: 'error' }, err.message));
    }
  }

  load();
  return {
    update(r) { params = paramsOf(r.query); load(); },
    unmount() { alive = false; document.removeEventListener('keydown', onKey); },
  };
}

function paramsOf(query) {
  return Object.fromEntries([...query.entries()]);
}
