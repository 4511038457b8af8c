// Inspectors: for a period, each inspector's reports, valid report rate, verifications and how
// many were on time, and patrol coverage of their responsibility grids. Every figure drills down:
// the reports side to the cases behind it (GET /cases?kpi=…&group_by=inspector), the verifications
// to the verifications made (#/inspectors/<id>/verifications: one row per verify_pass or verify_fail,
// with its case and the deadline then in force), the grids and coverage to the grid-days visited
// (#/inspectors/<id>/coverage: each responsibility grid, the days a track of theirs crossed it, the
// patrols). The drill pages ask with the same period and `as_of` as the table, so the list is the figure.
import { call, get, qs } from '../api.js';
import { statusChip } from '../caselist.js';
import { t } from '../i18n.js';
import { catLabel } from '../store.js';
import { fmtDate, fmtDateTime, fmtNum, fmtPct, h, isoFromDateInput, option } from '../ui.js';
import { presetRange } from './kpis.js';

let inspectorsEndpoint = true;
const PERIODS = ['30d', 'week', 'month', 'lastMonth', 'quarter', 'year'];
// [figure, number or rate, where it drills: a GET /cases KPI, or a drill page of this view]
const COLS = [
  ['reports', 'n', { kpi: 'reports' }], ['registered', 'n', { kpi: 'registered' }], ['rejected', 'n', { kpi: 'rejected' }],
  ['valid_report_rate', 'r', { kpi: 'registered' }],
  ['verifications', 'n', { page: 'verifications' }], ['verifications_on_time', 'n', { page: 'verifications', on_time: 'true' }],
  ['verification_timely_rate', 'r', { page: 'verifications' }],
  ['responsibility_grids', 'n', { page: 'coverage' }], ['coverage_rate', 'r', { page: 'coverage' }],
];
const PAGES = { verifications: verificationsPage, coverage: coveragePage };

export function mount(root, route) {
  let mode = null;
  let inst = null;
  function open(r) {
    const next = r.parts.length === 2 && PAGES[r.parts[1]] ? r.parts[1] : 'table';
    if (inst && next === mode && next === 'table') { inst.update(r); return; } // drill pages are made anew
    if (inst) inst.unmount();
    root.replaceChildren();
    mode = next;
    inst = (PAGES[next] || tablePage)(root, r);
  }
  open(route);
  return { update: open, unmount() { if (inst) inst.unmount(); } };
}

// ------------------------------------------------------------------ the table

function tablePage(root, route) {
  let period = route.query.get('period') || '30d';
  let alive = true;
  const select = h('select', { testid: 'inspector-period', 'aria-label': t('filter.period') },
    PERIODS.map((p) => option(p, t(`period.${p}`), p === period)));
  const note = h('p', { class: 'muted small', testid: 'inspector-note' });
  const table = h('div', { class: 'table-wrap', testid: 'inspector-table' });
  select.addEventListener('change', () => { location.hash = `#/inspectors${qs({ period: select.value })}`; });
  root.append(h('div', { class: 'page inspectors-page' },
    h('div', { class: 'toolbar' }, h('h1', {}, t('nav.inspectors')), h('label', { class: 'inline' }, t('filter.period'), select)),
    note, table));

  async function load() {
    const [a, b] = presetRange(period);
    const range = { from: isoFromDateInput(a), to: isoFromDateInput(b, true) };
    table.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    let data = null;
    if (inspectorsEndpoint) {
      const res = await call(`/kpis/inspectors${qs(range)}`);
      if (res.ok) data = res.data;
      else if (res.status === 404 || res.status === 405) inspectorsEndpoint = false;
      else throw new Error((res.data && res.data.detail) || res.status);
    }
    if (!data) {
      // a server without GET /kpis/inspectors: the reports side from GET /kpis?group_by=inspector
      data = await get(`/kpis${qs({ group_by: 'inspector', ...range })}`);
      note.textContent = t('inspectors.partial');
    } else {
      note.textContent = t('inspectors.note', { from: fmtDate(data.from), to: fmtDate(new Date(new Date(data.to) - 1).toISOString()),
        days: data.days ?? '—', time: fmtDateTime(data.as_of) });
    }
    if (!alive) return;
    const moment = { ...range, as_of: data.as_of };
    const back = location.hash;
    const href = (where, r) => (where.kpi
      ? `#/cases${qs({ kpi: where.kpi, group_by: 'inspector', key: r.key, ...moment, key_label: r.label, back })}`
      : `#/inspectors/${encodeURIComponent(r.key)}/${where.page}${qs({ ...moment, on_time: where.on_time, label: r.label, back })}`);
    const rows = data.rows.filter((r) => r.key != null);
    table.replaceChildren(rows.length ? h('table', { class: 'kpis' },
      h('thead', {}, h('tr', {}, h('th', { class: 'label-col' }, t('kpi.by.inspector')),
        COLS.map(([k]) => h('th', { class: 'num', title: t(`insp.help.${k}`) }, t(`insp.${k}`))))),
      h('tbody', {}, rows.map((r) => h('tr', { testid: 'inspector-row', dataset: { key: String(r.key) } },
        h('th', { class: 'label-col', scope: 'row' }, r.label || r.key),
        COLS.map(([k, kind, where]) => {
          const v = r[k];
          if (v === undefined) return h('td', { class: 'num muted', dataset: { figure: k } }, '—');
          const text = kind === 'r' ? fmtPct(v) : fmtNum(v);
          return h('td', { class: 'num', dataset: { figure: k } },
            h('a', { href: href(where, r), testid: `inspector-cell-${k}`, title: t('insp.drill', { figure: t(`insp.${k}`) }) }, text));
        })))))
      : h('p', { class: 'empty' }, t('kpi.none')));
  }

  const fail = (err) => { if (alive) table.replaceChildren(h('p', { class: 'error' }, err.message)); };
  load().catch(fail);
  return {
    update(r) { period = r.query.get('period') || '30d'; select.value = period; load().catch(fail); },
    unmount() { alive = false; },
  };
}

// ------------------------------------------------------------------ drill pages

// the frame of a drill page: title, what was drilled and for which period, the way back
function drillFrame(root, route, titleKey) {
  const q = route.query;
  const title = h('h1', {});
  const banner = h('div', { class: 'drill', testid: 'drill-banner' });
  const summary = h('p', { class: 'drill-total' });
  const body = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, t('loading')));
  const toolbar = h('div', { class: 'toolbar', hidden: titleKey !== 'verif.title' });
  root.append(h('div', { class: 'page inspectors-page' }, title, banner, toolbar, summary, body));
  function heading(label) {
    title.textContent = t(titleKey, { name: label || q.get('label') || route.parts[0] });
    const to = q.get('to');
    banner.replaceChildren(h('b', {}, label || q.get('label') || ''), ' · ',
      `${fmtDate(q.get('from'))} – ${fmtDate(to ? new Date(new Date(to) - 1).toISOString() : null)}`,
      q.get('as_of') ? h('span', { class: 'muted' }, ` · ${t('kpi.asOf', { time: fmtDateTime(q.get('as_of')) })}`) : null,
      ' ', h('a', { href: q.get('back') || '#/inspectors', testid: 'drill-back' }, t('insp.back')));
  }
  heading();
  const period = () => ({ from: q.get('from'), to: q.get('to'), as_of: q.get('as_of') });
  return { banner, summary, body, toolbar, heading, period, q };
}

function verificationsPage(root, route) {
  let alive = true;
  const r = route;
  const f = drillFrame(root, r, 'verif.title');
  const filter = h('select', { testid: 'verif-filter', 'aria-label': t('verif.filter') },
    option('', t('verif.all')), option('true', t('verif.onTime')), option('false', t('verif.late')));
  filter.addEventListener('change', () => {
    const q = new URLSearchParams(f.q);
    if (filter.value) q.set('on_time', filter.value); else q.delete('on_time');
    location.hash = `#/inspectors/${r.parts[0]}/verifications?${q}`;
  });
  f.toolbar.append(h('label', { class: 'inline' }, t('verif.filter'), filter));

  async function load() {
    filter.value = f.q.get('on_time') || '';
    f.body.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    const data = await get(`/kpis/inspectors/${encodeURIComponent(r.parts[0])}/verifications${qs({ ...f.period(), on_time: f.q.get('on_time') })}`);
    if (!alive) return;
    f.heading(data.label);
    const onTime = data.items.filter((v) => v.on_time).length;
    f.summary.replaceChildren(h('span', { testid: 'verif-total', dataset: { total: String(data.total), onTime: String(onTime) } },
      t('verif.total', { n: data.total, k: onTime, r: fmtPct(data.total ? onTime / data.total : null) })));
    f.body.replaceChildren(data.items.length ? h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['case', 'category', 'status', 'result', 'handled', 'deadline', 'at', 'timely'].map((k) => h('th', {}, t(`verif.col.${k}`))))),
      h('tbody', {}, data.items.map((v) => h('tr', { testid: 'verification-item', dataset: { caseId: String(v.case_id), onTime: String(v.on_time) } },
        h('td', {}, h('a', { href: `#/case/${v.case_id}`, class: 'mono' }, v.number)),
        h('td', {}, h('span', { class: 'mono' }, v.category_code), ' ', catLabel(v.category_code)),
        h('td', {}, statusChip(v.status)),
        h('td', {}, t(`action.${v.action}`)),
        h('td', {}, fmtDateTime(v.handled_at)), h('td', {}, fmtDateTime(v.deadline)), h('td', {}, fmtDateTime(v.at)),
        h('td', {}, h('span', { class: `chip ${v.on_time ? 'ontime' : 'late'}` }, t(v.on_time ? 'verif.onTime' : 'verif.late')))))))
      : h('p', { class: 'empty', testid: 'verif-empty' }, t('verif.none')));
  }
  const fail = (err) => { if (alive) f.body.replaceChildren(h('p', { class: 'error' }, err.message)); };
  load().catch(fail);
  return { unmount() { alive = false; } };
}

function coveragePage(root, route) {
  let alive = true;
  const f = drillFrame(root, route, 'cov.title');
  async function load() {
    const data = await get(`/kpis/inspectors/${encodeURIComponent(route.parts[0])}/coverage${qs(f.period())}`);
    if (!alive) return;
    f.heading(data.label);
    f.summary.replaceChildren(h('span', { testid: 'coverage-total', dataset: { grids: String(data.responsibility_grids),
      visited: String(data.visited_grid_days), days: String(data.days), rate: data.coverage_rate == null ? '' : String(data.coverage_rate) } },
    t('cov.total', { v: data.visited_grid_days, g: data.responsibility_grids, d: data.days, r: fmtPct(data.coverage_rate) })));
    const mapOf = (day) => `#/map${qs({ layers: 'grids,tracks,coverage', day })}`;
    f.body.replaceChildren(data.grids.length ? h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['grid', 'code', 'visited', 'days', 'patrols'].map((k) => h('th', {}, t(`cov.col.${k}`))))),
      h('tbody', {}, data.grids.map((g) => h('tr', { testid: 'coverage-grid', dataset: { grid: g.code, visitedDays: String(g.visited_days.length) },
        class: g.visited_days.length ? '' : 'unvisited' },
        h('td', {}, g.name || '—'), h('td', { class: 'mono small' }, g.code),
        h('td', { class: 'num' }, `${g.visited_days.length} / ${data.days}`),
        h('td', { class: 'small' }, g.visited_days.length
          ? g.visited_days.map((d, i) => [i ? ' ' : null, h('a', { href: mapOf(d), title: t('cov.onMap') }, d.slice(5))])
          : h('span', { class: 'muted' }, t('cov.never'))),
        h('td', { class: 'num' }, String(g.patrol_ids.length))))))
      : h('p', { class: 'empty', testid: 'coverage-empty' }, t('cov.none')));
  }
  const fail = (err) => { if (alive) f.body.replaceChildren(h('p', { class: 'error' }, err.message)); };
  load().catch(fail);
  return { unmount() { alive = false; } };
}
