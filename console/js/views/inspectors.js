// Inspectors: for a period, each inspector's reports, valid report rate, verifications and how
// many were on time, and patrol coverage of their responsibility grids. Figures link to cases.
import { call, get, qs } from '../api.js';
import { t } from '../i18n.js';
import { fmtNum, fmtPct, h, isoFromDateInput, option } from '../ui.js';
import { presetRange } from './kpis.js';

let inspectorsEndpoint = true;
const COLS = [
  ['reports', 'n', 'reports'], ['registered', 'n', 'registered'], ['rejected', 'n', 'rejected'], ['valid_report_rate', 'r', 'registered'],
  ['verifications', 'n', null], ['verifications_on_time', 'n', null], ['verification_timely_rate', 'r', null],
  ['responsibility_grids', 'n', null], ['coverage_rate', 'r', null],
];

export function mount(root, route) {
  let period = route.query.get('period') || '30d';
  let alive = true;
  const select = h('select', { testid: 'inspector-period', 'aria-label': t('filter.period') },
    ['30d', 'week', 'month', 'lastMonth', 'quarter', 'year'].map((p) => option(p, t(`period.${p}`), p === period)));
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
    let rows = null;
    let asOf = null;
    if (inspectorsEndpoint) {
      const res = await call(`/kpis/inspectors${qs(range)}`);
      if (res.ok) rows = res.data.rows;
      else if (res.status === 404 || res.status === 405) inspectorsEndpoint = false;
    }
    if (!rows) {
      // until GET /kpis/inspectors exists: the reports side from GET /kpis?group_by=inspector
      const data = await get(`/kpis${qs({ group_by: 'inspector', ...range })}`);
      rows = data.rows;
      asOf = data.as_of;
      note.textContent = t('inspectors.partial');
    } else {
      note.textContent = '';
    }
    if (!alive) return;
    const link = (figure, r, text) => (figure ? h('a', { href: `#/cases${qs({ kpi: figure, group_by: 'inspector', key: r.key, ...range, as_of: asOf,
      key_label: r.label, back: location.hash })}` }, text) : text);
    table.replaceChildren(rows.length ? h('table', { class: 'kpis' },
      h('thead', {}, h('tr', {}, h('th', { class: 'label-col' }, t('kpi.by.inspector')), COLS.map(([k]) => h('th', { class: 'num' }, t(`insp.${k}`))))),
      h('tbody', {}, rows.map((r) => h('tr', { testid: 'inspector-row', dataset: { key: String(r.key) } },
        h('th', { class: 'label-col', scope: 'row' }, r.label || r.key),
        COLS.map(([k, kind, figure]) => {
          const v = r[k];
          const text = kind === 'r' ? fmtPct(v) : fmtNum(v);
          return h('td', { class: 'num', dataset: { figure: k } }, v === undefined ? '—' : link(figure, r, text));
        })))))
      : h('p', { class: 'empty' }, t('kpi.none')));
  }

  load().catch((err) => { if (alive) table.replaceChildren(h('p', { class: 'error' }, err.message)); });
  return {
    update(r) { period = r.query.get('period') || '30d'; select.value = period; load().catch((err) => table.replaceChildren(h('p', { class: 'error' }, err.message))); },
    unmount() { alive = false; },
  };
}
