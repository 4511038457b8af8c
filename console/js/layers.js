// The map layers the views share: grid choropleth (or bins when zoomed out) and case points or
// clusters, both vector tiles from the backend under the same filters; colours and legend.
import { qs } from './api.js';
import { t } from './i18n.js';
import { h } from './ui.js';

export const tileUrl = (kind, filters) => {
  const q = qs(filters);
  return { url: (z, x, y) => `/api/v1/tiles/${kind}/${z}/${x}/${y}.mvt${q}`, key: q };
};

// classes of the number of cases in a grid (or, zoomed out, in a bin of grids)
export const BREAKS = [1, 2, 4, 7];
const OPEN_COLOURS = ['#fde9b5', '#f9c46b', '#f08c3a', '#d9502b'];
const OVERDUE_COLOURS = ['#f7c6c7', '#ee8a8d', '#d9434b', '#9d1c26'];
const BIN_BREAKS = [1, 5, 15, 40];

function classOf(n, breaks) {
  let k = -1;
  breaks.forEach((b, i) => { if (n >= b) k = i; });
  return k;
}

// style(feature, layerName) for the grid layer. opts: metric 'cases'|'overdue', selected code,
// coverage Map(code → visited bool) when the coverage of a day is shown
export function gridStyle(opts) {
  return (f, layer) => {
    const p = f.props;
    const colours = opts.metric === 'overdue' ? OVERDUE_COLOURS : OPEN_COLOURS;
    const n = opts.metric === 'overdue' ? p.overdue : p.cases;
    if (layer === 'bins') {
      const k = classOf(n, BIN_BREAKS);
      return { fill: k < 0 ? 'rgba(120,140,170,0.18)' : colours[k], stroke: 'rgba(255,255,255,0.6)', width: 0.5 };
    }
    const k = classOf(n, BREAKS);
    const s = { fill: k < 0 ? 'rgba(255,255,255,0.35)' : colours[k], stroke: 'rgba(70,90,120,0.55)', width: 0.6 };
    if (opts.coverage && opts.coverage.has(p.code)) {
      s.stroke = opts.coverage.get(p.code) ? '#1f9d55' : '#b7791f';
      s.width = 2;
    }
    if (opts.highlight && p.code === opts.highlight) { s.stroke = '#0b5cad'; s.width = 3; s.fill = k < 0 ? 'rgba(11,92,173,0.15)' : s.fill; }
    if (opts.selected && p.code === opts.selected) { s.stroke = '#111'; s.width = 2.5; }
    return s;
  };
}

export function casePoint(f) {
  const p = f.props;
  if (p.count != null && p.count > 1) {
    const r = Math.min(20, 8 + Math.log2(p.count) * 2.2);
    return { radius: r, fill: p.overdue > 0 ? 'rgba(200,40,50,0.78)' : 'rgba(11,92,173,0.78)', stroke: '#fff', width: 1.5, label: p.count,
      fontSize: p.count >= 1000 ? 9 : 11 };
  }
  const overdue = p.overdue === true || p.overdue === 1;
  return { radius: 6, fill: overdue ? '#c8283a' : '#0b5cad', stroke: p.escalated > 0 || p.escalation_level > 0 ? '#7b2cbf' : '#fff', width: p.escalated > 0 || p.escalation_level > 0 ? 3 : 1.5 };
}

export function legend(metric) {
  const colours = metric === 'overdue' ? OVERDUE_COLOURS : OPEN_COLOURS;
  const labels = ['1', '2–3', '4–6', '7+'];
  return h('div', { class: 'legend', testid: 'map-legend' },
    h('b', {}, t(metric === 'overdue' ? 'map.legendOverdue' : 'map.legendCases')),
    h('span', { class: 'sw', dataset: { c: 'none' } }), h('span', {}, '0'),
    ...colours.flatMap((c, i) => [swatch(c), h('span', {}, labels[i])]),
    h('span', { class: 'sep' }),
    h('span', { class: 'dot blue' }), h('span', {}, t('map.legendCase')),
    h('span', { class: 'dot red' }), h('span', {}, t('map.legendOverdueCase')));
}

function swatch(colour) {
  const s = h('span', { class: 'sw' });
  s.style.background = colour;
  return s;
}
