// The map: grids coloured by their open or overdue cases (vector tiles made by PostGIS, summed into
// bins when zoomed out), case points clustered, filters by status, category, team and period, and a
// day's patrol tracks and grid coverage. The filters are in the URL.
import { call, get, qs } from '../api.js';
import { OPEN, STATES, statusChip } from '../caselist.js';
import { t } from '../i18n.js';
import { casePoint, gridStyle, legend, tileUrl } from '../layers.js';
import { createMap } from '../mapview.js';
import { areaName, catLabel, catName, gridName, loadGridNames, refs } from '../store.js';
import { dateInputValue, fmtDateTime, h, isoFromDateInput, option } from '../ui.js';

const REFRESH_MS = 30000;
let patrolsEndpoint = true;

export function mount(root, route) {
  let f = filtersOf(route.query);
  let alive = true;
  let coverage = null; // Map(code → visited) of the chosen day
  let coverageInfo = null;
  let selected = null;
  const namesAsked = new Set();
  let timer = null;

  const box = h('div', { class: 'map-main' });
  const info = h('div', { class: 'map-info', testid: 'map-info', hidden: true });
  const stats = h('div', { class: 'map-stats muted small', testid: 'map-stats' });
  const patrolInfo = h('div', { class: 'small', testid: 'patrol-info' });
  const legendBox = h('div', {});

  const status = h('select', { testid: 'map-status', 'aria-label': t('col.status') },
    option('open', t('filter.open')), option('overdue', t('filter.overdueOnly')), option('escalated', t('filter.escalatedOnly')),
    STATES.map((s) => option(s, t(`status.${s}`))), option('all', t('filter.allStatuses')));
  const category = h('select', { testid: 'map-category', 'aria-label': t('col.category') }, option('', t('filter.allCategories')),
    refs.categories.map((c) => option(c.code, `${c.code} ${catName(c)}`)));
  const team = h('select', { testid: 'map-team', 'aria-label': t('col.team') }, option('', t('filter.allTeams')),
    refs.teams.filter((x) => x.kind === 'enforcement' || x.kind === 'community').map((x) => option(x.id, x.name)));
  const period = h('select', { testid: 'map-period', 'aria-label': t('filter.period') },
    ['all', 'today', '7d', '30d', '90d', 'custom'].map((p) => option(p, t(`period.${p}`))));
  const from = h('input', { type: 'date', testid: 'map-from', 'aria-label': t('filter.from') });
  const to = h('input', { type: 'date', testid: 'map-to', 'aria-label': t('filter.to') });
  const metric = h('select', { testid: 'map-metric', 'aria-label': t('map.metric') },
    option('cases', t('map.metricCases')), option('overdue', t('map.metricOverdue')));
  const layerBox = (name) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: name, testid: `map-layer-${name}` }), t(`map.layer.${name}`));
  const layers = ['grids', 'cases', 'tracks', 'coverage'].map(layerBox);
  const day = h('input', { type: 'date', testid: 'map-day', 'aria-label': t('map.day') });

  const side = h('aside', { class: 'map-side' },
    h('h2', {}, t('map.filters')),
    field(t('col.status'), status), field(t('col.category'), category), field(t('col.team'), team),
    field(t('filter.period'), period), h('div', { class: 'row dates' }, from, to),
    field(t('map.metric'), metric),
    h('h2', {}, t('map.layers')), h('div', { class: 'checks col' }, layers),
    field(t('map.day'), day), patrolInfo,
    legendBox, stats);
  root.append(h('div', { class: 'page map-page' }, side, h('div', { class: 'map-wrap' }, box, info)));

  const map = createMap(box, {
    testid: 'map', label: t('nav.map'), minZoom: 3, maxZoom: 20,
    onClick: (hit, p, m) => clicked(hit, p, m),
    onHover: (hit) => {
      if (!hit) return '';
      const p = hit.props;
      if (hit.name === 'grids') {
        // names are in the tiles only from z16: below, asked once per grid and shown from the next move
        if (!p.name && !gridName(p.code) && !namesAsked.has(p.code)) { namesAsked.add(p.code); loadGridNames([p.code]); }
        return `${gridName(p.code) || p.name || p.code} · ${t('map.tipCases', { n: p.cases, o: p.overdue })}`;
      }
      if (hit.name === 'bins') return t('map.tipBin', { g: p.grids, n: p.cases, o: p.overdue });
      if (hit.name === 'cases') return p.count > 1 ? t('map.tipCluster', { n: p.count, o: p.overdue }) : `${p.number || ''} ${catLabel(p.category_code)}`;
      return '';
    },
  });
  const style = { metric: f.metric, coverage: null, selected: null };
  const g0 = tileUrl('grids', tileFilters());
  map.addTileLayer({ id: 'grids', kind: 'fill', url: g0.url, key: g0.key, minTileZoom: 0, maxTileZoom: 16, style: gridStyle(style) });
  const c0 = tileUrl('cases', tileFilters());
  map.addTileLayer({ id: 'cases', kind: 'point', url: c0.url, key: c0.key, minTileZoom: 0, maxTileZoom: 17, point: casePoint });
  map.setOverlay('tracks', [], () => ({ stroke: '#6a2cbf', width: 2.5 }));
  if (refs.config.tile_url) map.setBaseTiles(refs.config.tile_url);
  if (refs.extent) { map.setHome(refs.extent); map.fit(refs.extent); }

  function tileFilters() {
    const q = {};
    if (f.status === 'overdue') { q.overdue = 'true'; } else if (f.status === 'escalated') { q.escalated = 'true'; } else if (f.status === 'all') {
      q.status = STATES;
    } else if (f.status && f.status !== 'open') q.status = f.status;
    if (f.category) q.category = f.category;
    if (f.team) q.team = f.team;
    const [a, b] = periodRange(f);
    if (a) q.from = a;
    if (b) q.to = b;
    return q;
  }

  function sync() {
    status.value = f.status;
    category.value = f.category;
    team.value = f.team;
    period.value = f.period;
    from.value = f.from || '';
    to.value = f.to || '';
    from.hidden = to.hidden = f.period !== 'custom';
    metric.value = f.metric;
    day.value = f.day;
    for (const l of layers) l.querySelector('input').checked = f.layers.includes(l.querySelector('input').value);
    legendBox.replaceChildren(legend(f.metric));
  }

  function apply() {
    sync();
    const q = tileFilters();
    const g = tileUrl('grids', q);
    const c = tileUrl('cases', q);
    map.setTileUrl('grids', g.url, g.key);
    map.setTileUrl('cases', c.url, c.key);
    style.metric = f.metric;
    style.coverage = f.layers.includes('coverage') ? coverage : null;
    map.restyle('grids');
    map.setVisible('grids', f.layers.includes('grids') || f.layers.includes('coverage'));
    map.setVisible('cases', f.layers.includes('cases'));
    map.setVisible('tracks', f.layers.includes('tracks'));
    if (f.layers.includes('tracks')) loadTracks();
    if (f.layers.includes('coverage')) loadCoverage();
    if (!f.layers.includes('tracks') && !f.layers.includes('coverage')) patrolInfo.replaceChildren();
  }

  function write() {
    const q = { status: f.status !== 'open' ? f.status : '', category: f.category, team: f.team, period: f.period !== 'all' ? f.period : '',
      from: f.period === 'custom' ? f.from : '', to: f.period === 'custom' ? f.to : '', metric: f.metric !== 'cases' ? f.metric : '',
      layers: f.layers.join(','), day: f.day !== dateInputValue(new Date()) ? f.day : '' };
    history.replaceState(null, '', `#/map${qs(q)}`);
  }

  const changed = () => {
    f = { ...f, status: status.value, category: category.value, team: team.value, period: period.value, from: from.value, to: to.value,
      metric: metric.value, day: day.value || dateInputValue(new Date()),
      layers: layers.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value) };
    write();
    apply();
  };
  for (const el of [status, category, team, period, from, to, metric, day, ...layers]) el.addEventListener('change', changed);

  let tracksDay = null;
  async function loadTracks() {
    if (tracksDay === f.day) return;
    tracksDay = f.day;
    if (!patrolsEndpoint) { patrolInfo.replaceChildren(h('p', { class: 'muted' }, t('map.tracksMissing'))); return; }
    const res = await call(`/patrols${qs({ date: f.day })}`);
    if (!alive) return;
    if (res.status === 404 || res.status === 405) {
      patrolsEndpoint = false;
      patrolInfo.replaceChildren(h('p', { class: 'muted' }, t('map.tracksMissing')));
      return;
    }
    if (!res.ok) { patrolInfo.replaceChildren(h('p', { class: 'error' }, res.data && res.data.detail)); return; }
    const items = res.data.items || [];
    map.setOverlay('tracks', items.filter((p) => p.track).map((p) => ({ geometry: p.track, properties: p })),
      () => ({ stroke: '#6a2cbf', width: 2.5 }));
    drawPatrolInfo(items);
  }

  let coverageDay = null;
  async function loadCoverage() {
    if (coverageDay === f.day && coverage) { style.coverage = coverage; map.restyle('grids'); return; }
    coverageDay = f.day;
    try {
      const data = await get(`/patrols/coverage${qs({ date: f.day })}`);
      if (!alive) return;
      const base = data.grids.filter((g) => g.responsible.length);
      coverage = new Map((base.length ? base : data.grids).map((g) => [g.code, g.visited]));
      coverageInfo = data;
      style.coverage = f.layers.includes('coverage') ? coverage : null;
      map.restyle('grids');
      drawPatrolInfo(null);
    } catch (err) {
      patrolInfo.replaceChildren(h('p', { class: 'error' }, err.message));
    }
  }

  let lastPatrols = null;
  function drawPatrolInfo(items) {
    if (items) lastPatrols = items;
    const parts = [];
    if (f.layers.includes('coverage') && coverageInfo) {
      parts.push(h('p', { testid: 'coverage-summary' }, t('map.coverage', { v: coverageInfo.visited, n: coverageInfo.total,
        r: coverageInfo.coverage_rate == null ? '—' : `${(coverageInfo.coverage_rate * 100).toFixed(1)}%` })),
      h('p', { class: 'legend-line' }, h('span', { class: 'sw visited' }), t('map.visited'), h('span', { class: 'sw unvisited' }), t('map.unvisited')));
    }
    if (f.layers.includes('tracks') && lastPatrols) {
      parts.push(h('p', { class: 'legend-line', testid: 'tracks-summary' }, h('span', { class: 'sw track' }), t('map.tracks', { n: lastPatrols.length,
        km: (lastPatrols.reduce((s, p) => s + (p.length_m || 0), 0) / 1000).toFixed(1) })));
      parts.push(h('ul', { class: 'plain small patrols', testid: 'tracks-list' }, lastPatrols.slice(0, 12).map((p) => h('li', { dataset: { patrolId: String(p.id) } },
        h('span', { class: 'who' }, p.inspector_name || t('case.user', { id: p.inspector_id })),
        h('span', { class: 'muted' }, `${fmtDateTime(p.started_at).slice(-5)}–${p.ended_at ? fmtDateTime(p.ended_at).slice(-5) : '…'} · ${((p.length_m || 0) / 1000).toFixed(1)} km`)))),
      lastPatrols.length > 12 ? h('p', { class: 'muted small' }, t('map.moreTracks', { n: lastPatrols.length - 12 })) : null);
    }
    patrolInfo.replaceChildren(...parts.filter(Boolean));
  }

  function clicked(hit, p, m) {
    if (!hit) { info.hidden = true; style.selected = null; map.restyle('grids'); return; }
    const props = hit.props;
    if (hit.name === 'cases' && props.count > 1) { m.center(p.lon, p.lat, Math.min(20, Math.round(m.zoom) + 2)); return; }
    if (hit.name === 'bins') { m.center(p.lon, p.lat, Math.min(20, Math.max(13, Math.round(m.zoom) + 2))); return; }
    info.hidden = false;
    if (hit.name === 'cases') {
      selected = null;
      info.replaceChildren(h('div', { class: 'card' },
        h('button', { type: 'button', class: 'icon close', 'aria-label': t('close'), onclick: () => { info.hidden = true; } }, '×'),
        h('h3', {}, h('a', { href: `#/case/${props.id}`, testid: 'map-case-link' }, props.number)),
        statusChip(props.status), h('p', {}, `${props.category_code} ${catLabel(props.category_code)}`),
        props.overdue ? h('p', { class: 'timer-text-red' }, t('timer.red')) : null,
        h('a', { href: `#/case/${props.id}`, class: 'button' }, t('map.openCase'))));
      return;
    }
    selected = props.code;
    style.selected = selected;
    map.restyle('grids');
    const name = gridName(props.code) || props.name;
    const cov = coverageInfo && coverageInfo.grids.find((g) => g.code === props.code);
    const card = h('div', { class: 'card', testid: 'map-grid-card', dataset: { grid: props.code } },
      h('button', { type: 'button', class: 'icon close', 'aria-label': t('close'), onclick: () => { info.hidden = true; style.selected = null; map.restyle('grids'); } }, '×'),
      h('h3', { testid: 'map-grid-name' }, name || props.code),
      h('p', { class: 'mono small', testid: 'map-grid-code' }, props.code),
      h('p', { class: 'muted small' }, `${areaName(props.code.slice(0, 9))} / ${areaName(props.code.slice(0, 12))}`),
      h('p', { testid: 'map-grid-counts' }, t('map.tipCases', { n: props.cases, o: props.overdue })),
      cov ? h('p', { class: 'small' }, cov.visited ? t('map.visitedBy', { n: cov.visits.length, at: fmtDateTime(cov.visits[0].first_at) }) : t('map.unvisited')) : null,
      h('a', { class: 'button', testid: 'map-grid-cases', href: gridCasesHref(props.code) }, t('map.gridCases')));
    info.replaceChildren(card);
    if (!name) loadGridNames([props.code]).then(() => { const n = gridName(props.code); if (n) card.querySelector('h3').textContent = n; });
  }

  function gridCasesHref(code) {
    const q = tileFilters();
    return `#/cases${qs({ grid: code, status: [].concat(q.status || OPEN).join(','), overdue: q.overdue, escalated: q.escalated,
      category: q.category, team: q.team, from: q.from, to: q.to })}`;
  }

  // stats of what the map shows, from the renderer's own counts
  const statTimer = setInterval(() => {
    const d = box.dataset;
    stats.textContent = t('map.shown', { g: d.grids || 0, b: d.bins || 0, c: d.cases || 0, z: d.zoom || '' });
  }, 500);

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!document.hidden) map.refresh();
      if (alive) refresh();
    }, REFRESH_MS);
  }

  sync();
  apply();
  refresh();
  return {
    update(r) { f = filtersOf(r.query); apply(); },
    unmount() { alive = false; clearTimeout(timer); clearInterval(statTimer); map.destroy(); },
  };
}

function field(label, input) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), input);
}

function filtersOf(q) {
  const today = dateInputValue(new Date());
  return {
    status: q.get('status') || 'open', category: q.get('category') || '', team: q.get('team') || '',
    period: q.get('period') || 'all', from: q.get('from') || '', to: q.get('to') || '', metric: q.get('metric') || 'cases',
    layers: (q.get('layers') || 'grids,cases').split(',').filter(Boolean), day: q.get('day') || today,
  };
}

function periodRange(f) {
  const now = new Date();
  const daysAgo = (n) => { const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - n); return isoFromDateInput(dateInputValue(d)); };
  switch (f.period) {
    case 'today': return [daysAgo(0), null];
    case '7d': return [daysAgo(6), null];
    case '30d': return [daysAgo(29), null];
    case '90d': return [daysAgo(89), null];
    case 'custom': return [isoFromDateInput(f.from), isoFromDateInput(f.to, true)];
    default: return [null, null];
  }
}
