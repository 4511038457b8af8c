// Supervision: the KPIs of domain.md grouped by team, grid, street, community, category or
// inspector for a period, every figure a link to the cases behind it, CSV and XLSX export, and a
// trend per team. The choices are in the URL; the table refreshes itself while it is shown.
import { call, download, get, qs } from '../api.js';
import { trendChart } from '../chart.js';
import { t } from '../i18n.js';
import { areaName, hasRole, refs, teamName } from '../store.js';
import { dateInputValue, fmtNum, fmtPct, h, isoFromDateInput, option, toast } from '../ui.js';

export const GROUPS = ['team', 'grid', 'street', 'community', 'category', 'inspector'];
// columns: [field, kind, the figure a click drills into]
export const COLUMNS = [
  ['reports', 'n', 'reports'], ['registered', 'n', 'registered'], ['rejected', 'n', 'rejected'], ['valid_report_rate', 'r', 'registered'],
  ['dispatched', 'n', 'dispatched'], ['returned', 'n', 'returned'], ['accurate_dispatch_rate', 'r', 'returned'],
  ['handled', 'n', 'handled'], ['reworked', 'n', 'reworked'], ['rework_rate', 'r', 'reworked'],
  ['closed', 'n', 'closed'], ['closure_rate', 'r', 'closed'], ['closed_on_time', 'n', 'closed_on_time'], ['on_time_rate', 'r', 'closed_on_time'],
  ['open_overdue', 'n', 'open_overdue'], ['handling_hours_p50', 'h', 'handled'], ['handling_hours_p90', 'h', 'handled'],
];
const SUMMARY = ['reports', 'registered', 'closed', 'closure_rate', 'on_time_rate', 'open_overdue'];
const REFRESH_MS = 15000;
let trendEndpoint = true;

export function mount(root, route) {
  let s = stateOf(route.query);
  let alive = true;
  let timer = null;
  let result = null;
  // a newer load (another grouping, area or period) supersedes an older one still under way
  let loads = 0;
  let trends = 0;
  let sort = { key: null, dir: -1 };

  const groupBy = h('select', { testid: 'kpi-group-by', 'aria-label': t('kpi.groupBy') }, GROUPS.map((g) => option(g, t(`kpi.by.${g}`))));
  // the part of the caller's scope the figures cover: all of it, or one district, street or community
  const area = h('select', { testid: 'kpi-area', 'aria-label': t('kpi.area') }, option('', t('kpi.allAreas')),
    refs.areas.filter((a) => a.level !== 'grid').map((a) => option(a.code,
      `${a.level === 'community' ? '\u00a0\u00a0\u00a0\u00a0' : a.level === 'street' ? '\u00a0\u00a0' : ''}${areaName(a.code)}`)));
  const period = h('select', { testid: 'kpi-period', 'aria-label': t('filter.period') },
    ['30d', 'week', 'month', 'lastMonth', 'quarter', 'year', 'custom'].map((p) => option(p, t(`period.${p}`))));
  const from = h('input', { type: 'date', testid: 'kpi-from', 'aria-label': t('filter.from') });
  const to = h('input', { type: 'date', testid: 'kpi-to', 'aria-label': t('filter.to') });
  const refresh = h('button', { type: 'button', testid: 'kpi-refresh', onclick: () => load() }, t('refresh'));
  const csv = h('button', { type: 'button', testid: 'kpi-export-csv', onclick: () => exportAs('csv') }, t('kpi.exportCsv'));
  const xlsx = h('button', { type: 'button', testid: 'kpi-export-xlsx', onclick: () => exportAs('xlsx'),
    disabled: !hasRole('supervisor'), title: hasRole('supervisor') ? '' : t('kpi.xlsxSupervisor') }, t('kpi.exportXlsx'));
  const asOf = h('span', { class: 'muted small', testid: 'kpi-as-of' });
  const cards = h('div', { class: 'cards', testid: 'kpi-summary' });
  const recounting = h('p', { class: 'notice small', testid: 'kpi-hours-recounting', role: 'status', hidden: true }, t('kpi.hoursRecounting'));
  const table = h('div', { class: 'table-wrap', testid: 'kpi-table' });
  const trend = h('section', { class: 'panel trends', testid: 'kpi-trends' });

  root.append(h('div', { class: 'page kpi-page' },
    h('div', { class: 'toolbar' }, h('h1', {}, t('nav.kpis')),
      h('label', { class: 'inline' }, t('kpi.groupBy'), groupBy), h('label', { class: 'inline' }, t('kpi.area'), area),
      h('label', { class: 'inline' }, t('filter.period'), period), from, to,
      refresh, h('span', { class: 'spacer' }), asOf, csv, xlsx),
    cards, recounting, table, trend));

  const changed = () => {
    s = { ...s, group_by: groupBy.value, area: area.value, period: period.value, from: from.value, to: to.value };
    if (s.period !== 'custom') { const [a, b] = presetRange(s.period); s.from = a; s.to = b; }
    location.hash = `#/kpis${qs({ group_by: s.group_by, area: s.area, period: s.period, from: s.period === 'custom' ? s.from : '', to: s.period === 'custom' ? s.to : '' })}`;
  };
  for (const el of [groupBy, area, period, from, to]) el.addEventListener('change', changed);

  function sync() {
    groupBy.value = s.group_by;
    area.value = s.area;
    period.value = s.period;
    from.value = s.from;
    to.value = s.to;
    from.disabled = to.disabled = s.period !== 'custom';
  }

  // the period (and the area) as the API takes them: from the first day's start to the day after the last
  function apiPeriod() {
    return { from: isoFromDateInput(s.from), to: isoFromDateInput(s.to, true), area: s.area };
  }

  async function load(quiet = false) {
    sync();
    if (!quiet) table.classList.add('loading');
    const mine = ++loads;
    try {
      const data = await get(`/kpis${qs({ group_by: s.group_by, ...apiPeriod() })}`);
      if (!alive || mine !== loads) return;
      const same = quiet && result && JSON.stringify(result.rows) === JSON.stringify(data.rows);
      result = data;
      if (!same) {
        drawTable();
        drawCards();
      }
      asOf.textContent = t('kpi.asOf', { time: new Date(data.as_of).toLocaleString() });
      asOf.dataset.asOf = data.as_of;
      recounting.hidden = !data.hours_recounting;
    } catch (err) {
      if (alive && !quiet && mine === loads) table.replaceChildren(h('p', { class: 'error' }, err.message));
    } finally {
      if (mine === loads) table.classList.remove('loading');
    }
  }

  function drillHref(figure, key, label, range) {
    const r = range || { from: result.from, to: result.to, as_of: result.as_of };
    return `#/cases${qs({ kpi: figure, group_by: s.group_by, key: key == null ? 'null' : key, area: s.area, from: r.from, to: r.to, as_of: r.as_of,
      key_label: label, back: location.hash })}`;
  }

  function drawCards() {
    const rows = result.rows;
    const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
    const tot = { reports: sum('reports'), registered: sum('registered'), closed: sum('closed'), open_overdue: sum('open_overdue'),
      closed_on_time: sum('closed_on_time') };
    // under team a case has a row per team it went to; its own outcome counts once (for the team holding it)
    tot.closure_rate = tot.registered ? tot.closed / tot.registered : null;
    tot.on_time_rate = tot.closed + tot.open_overdue ? tot.closed_on_time / (tot.closed + tot.open_overdue) : null;
    cards.replaceChildren(...SUMMARY.map((k) => h('div', { class: 'card stat', testid: `kpi-total-${k}` },
      h('span', { class: 'label' }, t(`kpi.${k}`)), h('b', {}, k.endsWith('_rate') ? fmtPct(tot[k]) : fmtNum(tot[k])))));
  }

  function drawTable() {
    let rows = result.rows.slice();
    if (sort.key) {
      rows.sort((a, b) => ((a[sort.key] ?? -1) - (b[sort.key] ?? -1)) * sort.dir);
    }
    const head = h('tr', {}, h('th', { class: 'label-col' }, t(`kpi.by.${s.group_by}`)), COLUMNS.map(([k]) => h('th', {
      class: `num ${sort.key === k ? (sort.dir > 0 ? 'asc' : 'desc') : ''}`, tabindex: '0', title: t(`kpi.help.${k}`),
      onclick: () => { sort = { key: k, dir: sort.key === k ? -sort.dir : -1 }; drawTable(); },
      onkeydown: (e) => { if (e.key === 'Enter') { sort = { key: k, dir: sort.key === k ? -sort.dir : -1 }; drawTable(); } },
    }, t(`kpi.${k}`))));
    const body = rows.map((r) => h('tr', { testid: 'kpi-row', dataset: { key: r.key == null ? '' : r.key } },
      h('th', { class: 'label-col', scope: 'row', title: r.key || '' }, labelOf(r)),
      COLUMNS.map(([k, kind, figure]) => {
        const v = r[k];
        const text = kind === 'r' ? fmtPct(v) : kind === 'h' ? (v == null ? '—' : fmtNum(v, 1)) : fmtNum(v);
        return h('td', { class: 'num', dataset: { figure: k, value: v == null ? '' : String(v) } },
          h('a', { href: drillHref(figure, r.key, labelOf(r)), testid: `kpi-cell-${k}`, title: t('kpi.drill', { figure: t(`kpi.${figure}`) }) }, text));
      })));
    table.replaceChildren(rows.length
      ? h('table', { class: 'kpis' }, h('thead', {}, head), h('tbody', {}, body))
      : h('p', { class: 'empty', testid: 'kpi-empty' }, t('kpi.none')));
  }

  function labelOf(r) {
    if (r.key == null) return s.group_by === 'team' ? t('kpi.noTeam') : '—';
    if (s.group_by === 'team') return r.label || teamName(Number(r.key));
    if (s.group_by === 'category') return `${r.key} ${r.label || ''}`;
    return r.label || r.key;
  }

  async function exportAs(kind) {
    const q = qs({ group_by: s.group_by, ...apiPeriod(), as_of: result ? result.as_of : undefined });
    const stamp = `${s.from}_${s.to}`;
    try {
      const name = kind === 'csv'
        ? await download(`/kpis${q}`, { accept: 'text/csv', filename: `kpis-${s.group_by}-${stamp}.csv` })
        : await download(`/kpis/export.xlsx${q}`, { filename: `kpis-${s.group_by}-${stamp}.xlsx` });
      toast(t('kpi.exported', { name }), 'ok');
    } catch (err) {
      toast(err.message, 'error', 8000);
    }
  }

  // ------------------------------------------------------------------ trends per team

  async function loadTrend() {
    const mine = ++trends;
    if (s.group_by !== 'team') {
      trend.replaceChildren(h('h2', {}, t('kpi.trends')), h('p', { class: 'muted' }, t('kpi.trendsTeamOnly')),
        h('button', { type: 'button', onclick: () => { groupBy.value = 'team'; changed(); } }, t('kpi.by.team')));
      return;
    }
    trend.replaceChildren(h('h2', {}, t('kpi.trends')), h('p', { class: 'muted' }, t('loading')));
    const range = apiPeriod();
    const days = (new Date(range.to) - new Date(range.from)) / 86400e3;
    const interval = days > 120 ? 'month' : 'week';
    let series = null;
    if (trendEndpoint) {
      const res = await call(`/kpis/trend${qs({ group_by: 'team', interval, ...range })}`);
      if (res.ok) series = res.data.series;
      else if (res.status === 404 || res.status === 405) trendEndpoint = false;
    }
    if (!series) series = await trendByPeriods(range, interval);
    if (!alive || mine !== trends) return;
    const legendRow = h('p', { class: 'legend small' }, h('span', { class: 'sw bar' }), t('kpi.registered'),
      h('span', { class: 'sw line-a' }), t('kpi.closure_rate'), h('span', { class: 'sw line-b' }), t('kpi.on_time_rate'));
    const charts = series.filter((x) => x.key != null && x.points.some((p) => p.registered || p.closed)).map((x) => {
      const points = x.points.map((p, i) => ({ ...p, label: shortDate(p.period_start), end: x.points[i + 1]?.period_start || range.to }));
      // the period's own figures for the team, as in the table above
      const row = (result && result.rows.find((r) => String(r.key) === String(x.key))) || {};
      return h('div', { class: 'card trend-card', testid: 'kpi-trend', dataset: { key: String(x.key) } },
        h('h3', {}, x.label || teamName(Number(x.key))),
        h('p', { class: 'muted small' }, `${t('kpi.registered')} ${fmtNum(row.registered)} · ${t('kpi.closure_rate')} ${fmtPct(row.closure_rate)} · ${t('kpi.on_time_rate')} ${fmtPct(row.on_time_rate)}`),
        trendChart(points, { label: x.label, onBar: (p) => { location.hash = drillHref('registered', x.key, x.label, { from: p.period_start, to: p.end, as_of: result && result.as_of }); } }));
    });
    trend.replaceChildren(h('h2', {}, t('kpi.trends'), ' ', h('small', { class: 'muted' }, t(`kpi.interval.${interval}`))), legendRow,
      charts.length ? h('div', { class: 'trend-grid' }, charts) : h('p', { class: 'muted' }, t('kpi.none')));
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden && !document.querySelector('dialog[open]')) await load(true);
      if (alive) poll();
    }, REFRESH_MS);
  }

  load().then(loadTrend);
  poll();
  return {
    update(r) { s = stateOf(r.query); sort = { key: null, dir: -1 }; load().then(loadTrend); },
    unmount() { alive = false; clearTimeout(timer); },
  };
}

// Until GET /kpis/trend exists: one GET /kpis per period (at most 13)
async function trendByPeriods(range, interval) {
  const starts = [];
  const start = new Date(range.from);
  const end = new Date(range.to);
  let d = new Date(start);
  while (d < end && starts.length < 13) {
    starts.push(new Date(d));
    d = interval === 'month' ? new Date(d.getFullYear(), d.getMonth() + 1, 1) : new Date(d.getFullYear(), d.getMonth(), d.getDate() + 7);
  }
  const answers = await Promise.all(starts.map((a, i) => get(`/kpis${qs({ group_by: 'team', area: range.area, from: isoOf(a), to: isoOf(starts[i + 1] || end) })}`)
    .catch(() => ({ rows: [] }))));
  const byKey = new Map();
  answers.forEach((ans, i) => {
    for (const r of ans.rows) {
      if (!byKey.has(r.key)) byKey.set(r.key, { key: r.key, label: r.label, points: starts.map((a) => ({ period_start: isoOf(a) })) });
      Object.assign(byKey.get(r.key).points[i], { registered: r.registered, closed: r.closed, closure_rate: r.closure_rate,
        on_time_rate: r.on_time_rate, rework_rate: r.rework_rate });
    }
  });
  return [...byKey.values()];
}

const isoOf = (d) => isoFromDateInput(dateInputValue(d));
const shortDate = (iso) => { const d = new Date(iso); return `${d.getMonth() + 1}/${d.getDate()}`; };

export function presetRange(p) {
  const now = new Date();
  const y = now.getFullYear();
  const m = now.getMonth();
  const d = now.getDate();
  const v = (a) => dateInputValue(a);
  switch (p) {
    case 'week': { const dow = (now.getDay() + 6) % 7; return [v(new Date(y, m, d - dow)), v(now)]; }
    case 'month': return [v(new Date(y, m, 1)), v(now)];
    case 'lastMonth': return [v(new Date(y, m - 1, 1)), v(new Date(y, m, 0))];
    case 'quarter': return [v(new Date(y, m - (m % 3), 1)), v(now)];
    case 'year': return [v(new Date(y, 0, 1)), v(now)];
    case '30d':
    default: return [v(new Date(y, m, d - 29)), v(now)];
  }
}

function stateOf(q) {
  const group = GROUPS.includes(q.get('group_by')) ? q.get('group_by') : 'team';
  const area = refs.areaByCode.has(q.get('area')) ? q.get('area') : '';
  const period = q.get('period') || '30d';
  let [from, to] = presetRange(period);
  if (period === 'custom') { from = q.get('from') || from; to = q.get('to') || to; }
  return { group_by: group, area, period, from, to };
}
