// The case page: the case on a map with its grid, the before / after / verification photos side by
// side, the event timeline (who, when, what), the buttons the state table allows this person, the
// dispatch dialog with ranked suggestions, and duplicates nearby to merge with.
import { call, get, qs } from '../api.js';
import { registerFields, startAction } from '../actions.js';
import { OPEN, badges, deadlineText, statusChip, timerDot } from '../caselist.js';
import { t } from '../i18n.js';
import { casePoint, gridStyle, tileUrl } from '../layers.js';
import { createMap } from '../mapview.js';
import { areaName, catLabel, gridName, hasRole, loadGridNames, refs, teamName } from '../store.js';
import { dialog, fmtAge, fmtDateTime, h, isoLocal, option, toast } from '../ui.js';

const POLL_MS = 10000;
const STAGE_OF = { reported: 'register', registered: 'dispatch', returned: 'dispatch', dispatched: 'handle', in_progress: 'handle', handled: 'verify' };
const DUP_RADII = [100, 200, 500, 1000];
const DUP_HOURS = [24, 72, 168, 720];
let duplicatesEndpoint = true;

export function mount(root, route) {
  let id = Number(route.parts[0]);
  let c = null;
  let alive = true;
  let timer = null;
  let map = null;
  let urls = [];
  let duplicates = [];
  let dupOpts = { radius: 200, hours: 72 };
  const page = h('div', { class: 'page case-page', testid: 'case-page' });
  root.append(page);

  function release() { urls.forEach((u) => URL.revokeObjectURL(u)); urls = []; }

  async function load(notice) {
    try {
      const res = await call(`/cases/${id}`);
      if (!alive) return;
      if (res.status === 404) { page.replaceChildren(h('p', { class: 'error', testid: 'case-missing' }, t('case.missing', { id }))); return; }
      if (!res.ok) throw new Error(res.data && res.data.detail);
      c = res.data;
      await render();
      if (notice) toast(notice);
    } catch (err) {
      if (alive) page.replaceChildren(h('p', { class: 'error' }, err.message || t('case.failed')));
    }
  }

  function afterAction(updated) {
    const before = c.status;
    c = updated;
    toast(t('action.done', { action: t(`action.${lastAction}`), status: t(`status.${updated.status}`) }), 'ok');
    render();
    if (before !== updated.status) page.dataset.lastAction = lastAction;
  }
  let lastAction = null;

  async function render() {
    if (c.grid_code && !gridName(c.grid_code)) await loadGridNames([c.grid_code]);
    if (!alive) return;
    release();
    if (map) { map.destroy(); map = null; }
    const reg = c.allowed_actions.includes('register') ? registerFields(c) : null;
    const buttons = c.allowed_actions.map((a) => h('button', {
      type: 'button', class: ['dispatch', 'register', 'decide_extension'].includes(a) ? 'primary' : a === 'reject' ? 'danger' : '',
      testid: `case-action-${a}`, dataset: { action: a },
      onclick: async (e) => {
        const b = e.currentTarget;
        lastAction = a;
        b.disabled = true;
        try {
          await startAction(c, a, { registerBody: reg && reg.body, duplicates, onDone: afterAction });
        } catch (err) {
          toast(err.message, 'error', 8000);
          if (err.status === 412 || err.status === 409) load();
        } finally {
          b.disabled = false;
        }
      },
    }, t(`action.${a}`)));
    const queue = JSON.parse(sessionStorage.getItem('gridpatrol.console.queue') || 'null');
    const next = queue && queue.ids[queue.ids.indexOf(c.id) + 1];
    const stage = STAGE_OF[c.status];

    const header = h('div', { class: 'case-head' },
      h('div', { class: 'crumbs' },
        queue ? h('a', { href: `#/queue/${queue.tab}`, testid: 'case-back' }, `← ${t(`queue.${queue.tab}`)}`) : h('a', { href: '#/cases', testid: 'case-back' }, `← ${t('nav.cases')}`),
        next ? h('a', { href: `#/case/${next}`, testid: 'case-next', class: 'next' }, `${t('case.next')} →`) : null),
      h('div', { class: 'title' },
        timerDot(c),
        h('h1', { testid: 'case-number' }, c.number),
        statusChip(c.status),
        h('span', { class: 'cat', testid: 'case-category' }, h('span', { class: 'code' }, c.category_code), ' ', catLabel(c.category_code)),
        h('span', { class: `urg urg-${c.urgency}`, title: t(`urgency.${c.urgency}`) }, c.urgency),
        stage ? h('span', { class: `stage timer-text-${c.timer || 'none'}`, testid: 'case-timer', dataset: { timer: c.timer || 'none' } },
          `${t(`stage.${stage}`)} · ${deadlineText(c)}`) : null,
        ...badges(c)),
      h('div', { class: 'actions', testid: 'case-actions' },
        reg ? h('span', { class: 'register-fields' }, reg.nodes) : null,
        buttons.length ? buttons : h('span', { class: 'muted' }, t(OPEN.includes(c.status) ? 'case.noActions' : 'case.closedNote'))));

    const details = h('section', { class: 'panel details' },
      h('h2', {}, t('case.details')),
      h('p', { class: 'description', testid: 'case-description', text: c.description || t('case.noDescription') }),
      dl([
        [t('case.source'), t(`source.${c.source}`), 'case-source'],
        [t('case.reportedAt'), `${fmtDateTime(c.reported_at)} (${fmtAge(c.reported_at)})`],
        [t('case.observedAt'), fmtDateTime(c.observed_at)],
        [t('case.address'), c.address || '—'],
        [t('case.grid'), c.grid_code ? `${gridName(c.grid_code) || ''} ${c.grid_code}`.trim() : t('case.noGrid'), 'case-grid'],
        [t('case.area'), [areaName(c.street_code), areaName(c.community_code)].filter((x) => x && x !== '—').join(' / ') || '—'],
        [t('case.location'), `${c.location.lon.toFixed(6)}, ${c.location.lat.toFixed(6)}${c.location.accuracy_m != null ? ` ±${Math.round(c.location.accuracy_m)} m` : ''}`],
        [t('case.leadTeam'), c.lead_team_id ? teamName(c.lead_team_id) : '—'],
        c.assisting_team_ids && c.assisting_team_ids.length ? [t('case.assisting'), c.assisting_team_ids.map(teamName).join('、')] : null,
        c.parent_id ? [t('case.parent'), parentLink(c.parent_id)] : null,
        c.rework_count ? [t('case.rework'), String(c.rework_count)] : null,
        c.extension_hours ? [t('case.extensionHours'), String(c.extension_hours)] : null,
        c.pending_extension ? [t('case.pendingExtension'), `${c.pending_extension.hours} h · ${c.pending_extension.reason || ''}`] : null,
        c.escalation_level ? [t('case.escalation'), `${t(`escalate.level${c.escalation_level}`)} · ${c.escalation_note || ''}`] : null,
        c.contact ? [t('case.contact'), [c.contact.name, c.contact.phone, c.contact.email].filter(Boolean).join(' · '), 'case-contact'] : null,
      ]),
      h('h3', {}, t('case.deadlines')),
      dl(['register', 'dispatch', 'handle', 'verify'].map((s) => [
        t(`stage.${s}`), h('span', { class: s === stage ? `now timer-text-${c.timer || 'none'}` : '' }, fmtDateTime(c.deadlines[s])),
      ])));

    const mapBox = h('div', { class: 'case-map', testid: 'case-map' });
    const photos = h('section', { class: 'panel photos', testid: 'case-photos' }, h('h2', {}, t('case.photos')),
      h('div', { class: 'photo-cols' }, ['before', 'after', 'verification'].map((k) =>
        h('div', { class: 'photo-col', testid: `photos-${k}` }, h('h3', {}, t(`photo.${k}`)), h('div', { class: 'thumbs' }, h('span', { class: 'muted' }, '…'))))));
    const timeline = h('section', { class: 'panel timeline' }, h('h2', {}, t('case.timeline')),
      h('ol', { class: 'events', testid: 'case-timeline' }, h('li', { class: 'muted' }, t('loading'))));
    const dupPanel = c.status in STAGE_OF && hasRole('dispatcher') ? h('section', { class: 'panel dups', testid: 'case-duplicates' }) : null;

    page.replaceChildren(header, h('div', { class: 'case-grid' },
      h('div', { class: 'col-left' }, details, dupPanel),
      h('div', { class: 'col-mid' }, h('section', { class: 'panel map-panel' }, mapBox), photos),
      h('div', { class: 'col-right' }, timeline)));
    page.dataset.status = c.status;
    page.dataset.version = String(c.version);

    drawMap(mapBox);
    await Promise.all([loadEvents(timeline.querySelector('ol')), loadPhotos(photos), dupPanel ? loadDuplicates(dupPanel) : null]);
  }

  function drawMap(box) {
    map = createMap(box, { testid: 'case-map-canvas', minZoom: 10, label: t('case.map') });
    const filters = { status: OPEN };
    const g = tileUrl('grids', filters);
    map.addTileLayer({ id: 'grids', kind: 'fill', url: g.url, key: g.key, minTileZoom: 12, maxTileZoom: 16, style: gridStyle({ metric: 'cases', highlight: c.grid_code }) });
    const k = tileUrl('cases', filters);
    map.addTileLayer({ id: 'cases', kind: 'point', url: k.url, key: k.key, minTileZoom: 10, maxTileZoom: 17, point: casePoint });
    if (refs.config.tile_url) map.setBaseTiles(refs.config.tile_url);
    map.setOverlay('case', [{ geometry: { type: 'Point', coordinates: [c.location.lon, c.location.lat] } }], () => ({ pin: true, fill: '#d62828' }));
    map.center(c.location.lon, c.location.lat, 17);
    map.setHome([c.location.lon - 0.003, c.location.lat - 0.002, c.location.lon + 0.003, c.location.lat + 0.002]);
  }

  async function loadEvents(ol) {
    try {
      const { items } = await get(`/cases/${c.id}/events`);
      if (!alive) return;
      ol.replaceChildren(...items.map(eventItem));
    } catch (err) {
      ol.replaceChildren(h('li', { class: 'error' }, err.message));
    }
  }

  async function loadPhotos(section) {
    let items = [];
    try {
      items = (await get(`/cases/${c.id}/photos`)).items;
    } catch (err) {
      section.append(h('p', { class: 'error' }, err.message));
    }
    if (!alive) return;
    for (const kind of ['before', 'after', 'verification']) {
      const box = section.querySelector(`[data-testid="photos-${kind}"] .thumbs`);
      const mine = items.filter((p) => p.kind === kind);
      if (!mine.length) { box.replaceChildren(h('span', { class: 'muted' }, t('photo.none'))); continue; }
      box.replaceChildren(...mine.map((p) => {
        const img = h('img', { alt: `${t(`photo.${kind}`)} ${fmtDateTime(p.taken_at)}`, class: 'thumb', testid: 'case-photo', dataset: { photoId: String(p.id) } });
        const fig = h('figure', { tabindex: '0', onclick: () => showPhoto(p), onkeydown: (e) => { if (e.key === 'Enter') showPhoto(p); } },
          img, h('figcaption', {}, fmtDateTime(p.taken_at), ...(p.flags || []).map((f) => h('span', { class: 'badge warn' }, t(`pflag.${f}`, {}) || f))));
        call(`/photos/${p.id}?size=thumb`, { as: 'blob' }).then((res) => {
          if (!res.ok || !alive) return;
          const u = URL.createObjectURL(res.data);
          urls.push(u);
          img.src = u;
        });
        return fig;
      }));
    }
  }

  async function showPhoto(p) {
    const img = h('img', { class: 'full', alt: t(`photo.${p.kind}`) });
    dialog({ title: `${t(`photo.${p.kind}`)} · ${fmtDateTime(p.taken_at)}`, body: img, wide: true, actions: [{ label: t('close') }], testid: 'photo-dialog' });
    const res = await call(`/photos/${p.id}`, { as: 'blob' });
    if (res.ok) { const u = URL.createObjectURL(res.data); urls.push(u); img.src = u; }
  }

  async function loadDuplicates(panel) {
    const radius = h('select', { 'aria-label': t('dup.radius'), testid: 'dup-radius', onchange: () => { dupOpts.radius = Number(radius.value); loadDuplicates(panel); } },
      DUP_RADII.map((r) => option(r, `${r} m`, r === dupOpts.radius)));
    const hours = h('select', { 'aria-label': t('dup.window'), testid: 'dup-hours', onchange: () => { dupOpts.hours = Number(hours.value); loadDuplicates(panel); } },
      DUP_HOURS.map((x) => option(x, t('dup.hours', { n: x }), x === dupOpts.hours)));
    const list = h('ul', { class: 'dup-list' }, h('li', { class: 'muted' }, t('loading')));
    panel.replaceChildren(h('h2', {}, t('dup.title')), h('div', { class: 'toolbar small' }, t('dup.within'), radius, hours), list);
    try {
      duplicates = await findDuplicates(c, dupOpts.radius, dupOpts.hours);
    } catch (err) {
      list.replaceChildren(h('li', { class: 'error' }, err.message));
      return;
    }
    if (!alive) return;
    const canMerge = c.allowed_actions.includes('merge');
    list.replaceChildren(...(duplicates.length ? duplicates.map((d) => h('li', { testid: 'duplicate-item', dataset: { caseId: String(d.id) } },
      h('div', { class: 'row' }, h('a', { href: `#/case/${d.id}`, class: 'mono' }, d.number), otherStatus(d.status),
        h('span', { class: 'muted' }, t('dup.distance', { m: Math.round(d.distance_m) })),
        h('span', { class: 'muted' }, fmtAge(d.reported_at))),
      h('p', { class: 'desc', text: d.description || '' }),
      // a merge cannot be undone: the choice opens the merge dialog with this case checked, to confirm
      canMerge ? h('button', { type: 'button', class: 'small', testid: 'merge-into', onclick: () => {
        lastAction = 'merge';
        startAction(c, 'merge', { duplicates, parentId: d.id, onDone: afterAction });
      } }, t('dup.mergeInto', { n: d.number })) : null))
      : [h('li', { class: 'muted', testid: 'duplicates-none' }, t('dup.none'))]));
    if (map) {
      map.setOverlay('dups', duplicates.map((d) => ({ geometry: { type: 'Point', coordinates: [d.location.lon, d.location.lat] } })),
        () => ({ radius: 7, fill: '#f08c3a', stroke: '#fff', width: 2 }));
    }
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden && c && !document.querySelector('dialog[open]')) {
        const res = await call(`/cases/${id}`).catch(() => null);
        if (res && res.ok && res.data.version !== c.version && alive) {
          c = res.data;
          await render();
          toast(t('case.changed'));
        }
      }
      if (alive) poll();
    }, POLL_MS);
  }

  load();
  poll();
  return {
    update(r) {
      const next = Number(r.parts[0]);
      if (next === id) return;
      id = next;
      duplicates = [];
      page.replaceChildren(h('p', { class: 'muted' }, t('loading')));
      load();
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      release();
      if (map) map.destroy();
    },
  };
}

// the status of another case (the page's own chip is the one named case-status)
function otherStatus(status) {
  const chip = statusChip(status);
  chip.dataset.testid = 'other-status';
  return chip;
}

// the case merged into, by its number once known
function parentLink(id) {
  const a = h('a', { href: `#/case/${id}`, testid: 'case-parent', dataset: { caseId: String(id) } }, `#${id}`);
  call(`/cases/${id}`).then((res) => { if (res.ok) a.textContent = res.data.number; }).catch(() => {});
  return a;
}

function dl(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, v, testid]) => [h('dt', {}, k), h('dd', { testid }, v == null ? '—' : v)]));
}

// Open cases of the same category near the case and close in time. The lead engineer's
// GET /cases/{id}/duplicates answers this; until it exists, the case list with a bounding box
// and a period, filtered by distance here.
export async function findDuplicates(c, radiusM, hours) {
  if (duplicatesEndpoint) {
    const res = await call(`/cases/${c.id}/duplicates${qs({ radius_m: radiusM, hours })}`);
    if (res.ok) return res.data.items.map((d) => ({ ...d, distance_m: d.distance_m ?? distance(c.location, d.location) }))
      .sort((a, b) => a.distance_m - b.distance_m);
    if (res.status !== 404 && res.status !== 405) throw new Error(res.data && res.data.detail);
    duplicatesEndpoint = false;
  }
  const { lon, lat } = c.location;
  const dLat = radiusM / 111320;
  const dLon = radiusM / (111320 * Math.cos((lat * Math.PI) / 180));
  const at = new Date(c.reported_at).getTime();
  const data = await get(`/cases${qs({
    category: c.category_code, status: OPEN, per_page: 100,
    bbox: [lon - dLon, lat - dLat, lon + dLon, lat + dLat].map((v) => v.toFixed(6)),
    from: isoLocal(new Date(at - hours * 3600e3)), to: isoLocal(new Date(at + hours * 3600e3)),
  })}`);
  return data.items.filter((d) => d.id !== c.id)
    .map((d) => ({ ...d, distance_m: distance(c.location, d.location) }))
    .filter((d) => d.distance_m <= radiusM)
    .sort((a, b) => a.distance_m - b.distance_m);
}

function distance(a, b) {
  const r = Math.PI / 180;
  const dp = (b.lat - a.lat) * r;
  const dl = (b.lon - a.lon) * r;
  const x = Math.sin(dp / 2) ** 2 + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dl / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(x)));
}

const PAYLOAD_SHOWN = ['reason_code', 'reason', 'note', 'team_name', 'hours', 'approve', 'requested_reason', 'level', 'parent_number',
  'category_code', 'urgency', 'description', 'address', 'distance_m', 'paused_hours', 'resumed_to', 'photo_ids', 'assisting_team_ids'];

function eventItem(e) {
  const p = e.payload || {};
  const who = e.actor_name || (e.actor_id != null ? t('case.user', { id: e.actor_id }) : t('case.system'));
  const team = e.team_name || (e.team_id != null ? teamName(e.team_id) : null);
  const details = PAYLOAD_SHOWN.filter((k) => p[k] != null && p[k] !== '' && !(Array.isArray(p[k]) && !p[k].length)).map((k) => {
    let v = p[k];
    if (k === 'reason_code') v = t(`reason.${v}`);
    else if (k === 'approve') v = v ? t('ext.approved') : t('ext.denied');
    else if (k === 'category_code') v = `${v} ${catLabel(v)}`;
    else if (k === 'level') v = t(`escalate.level${v}`);
    else if (k === 'resumed_to') v = t(`status.${v}`);
    else if (k === 'photo_ids') v = t('event.photos', { n: v.length });
    else if (k === 'assisting_team_ids') v = v.map(teamName).join('、');
    else if (k === 'distance_m') v = `${v} m`;
    return h('div', { class: 'pl' }, h('span', { class: 'k' }, t(`payload.${k}`)), h('span', { class: 'v', text: String(v) }));
  });
  if (e.action === 'dispatch' && p.team_id != null && p.team_name == null) {
    details.unshift(h('div', { class: 'pl' }, h('span', { class: 'k' }, t('payload.team_name')), h('span', { class: 'v', text: teamName(p.team_id) })));
  }
  return h('li', { class: `ev ev-${e.action}`, testid: 'timeline-event', dataset: { action: e.action } },
    h('div', { class: 'when' }, h('time', { datetime: e.at }, fmtDateTime(e.at, { seconds: true }))),
    h('div', { class: 'what' }, h('b', {}, t(`action.${e.action}`)),
      e.from_status ? h('span', { class: 'muted' }, ` ${t(`status.${e.from_status}`)} → ${t(`status.${e.to_status}`)}`) : h('span', { class: 'muted' }, ` → ${t(`status.${e.to_status}`)}`)),
    h('div', { class: 'who' }, who, team ? h('span', { class: 'muted' }, ` · ${team}`) : null),
    details.length ? h('div', { class: 'payload' }, details) : null);
}
