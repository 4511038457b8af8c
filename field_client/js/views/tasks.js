// Tasks: cases to verify on site (inspector) and cases dispatched to my team (handler). The
// buttons are exactly the case's `allowed_actions` from the server. An action goes through the
// outbox with the case version it was based on; when the case changed meanwhile the person sees
// the conflict with their note and photos kept, and can apply it again or discard it.
import { call } from '../api.js';
import { kv } from '../db.js';
import * as geo from '../geo.js';
import { catName, t } from '../i18n.js';
import * as outbox from '../outbox.js';
import { prepare } from '../photos.js';
import { hasRole, on, state, ukey } from '../state.js';
import { $, confirmBox, h, previewUrls, toast } from '../ui.js';

// what each action asks for, and the kind of photo it takes
const FORMS = {
  accept: { note: 'optional' },
  return: { note: 'required', reason_code: true },
  request_extension: { note: 'required', hours: true },
  handle: { note: 'required', photos: 'after', photosRequired: true },
  verify_pass: { note: 'optional', photos: 'verification', photosRequired: true, position: true },
  verify_fail: { note: 'required', photos: 'verification' },
};
const RETURN_REASONS = ['not_competent', 'outside_area', 'wrong_category', 'duplicate', 'cannot_locate', 'other'];

let cases = [];
let items = []; // outbox items, to show pending actions and conflicts
let openId = null;
let form = null; // {caseId, action, note, reason_code, hours, photos: [{blob, name, taken_at}]}
let fix = null;
let panelSig = null;
let geoError = null;
let stopWatch = null;
const previews = previewUrls();

export function init() {
  $('tasks-refresh').addEventListener('click', () => refresh(true));
  outbox.onChange(async () => { if (!$('view-tasks').hidden) { items = await outbox.list(); render(); } });
  on('sent', async (it) => {
    if (it && it.kind === 'action' && it.response) await storeCase(it.response);
  });
  on('lang', () => render());
  on('signedout', () => { cases = []; items = []; openId = null; form = null; previews.release(); });
}

export async function show() {
  const cached = state.user ? await kv.get(ukey('tasks')) : null;
  cases = cached ? cached.items : [];
  items = await outbox.list();
  render();
  stopWatch = geo.watch((f) => { fix = f; geoError = null; renderPosition(); }, (e) => { geoError = e; renderPosition(); });
  refresh(false);
}

export function hide() {
  if (stopWatch) stopWatch();
  stopWatch = null;
}

async function refresh(manual) {
  const status = $('tasks-status');
  if (!navigator.onLine) {
    status.textContent = t('tasks.offline');
    return;
  }
  status.textContent = t('tasks.loading');
  try {
    const found = [];
    if (hasRole('inspector')) {
      const r = await call('/cases?status=handled&per_page=200&sort=oldest');
      if (!r.ok) throw new Error(r.status);
      found.push(...r.data.items);
    }
    if (hasRole('handler') && state.user.team_ids?.length) {
      const r = await call(`/cases?team=${state.user.team_ids.join(',')}&status=dispatched,in_progress&per_page=200&sort=oldest`);
      if (!r.ok) throw new Error(r.status);
      found.push(...r.data.items);
    }
    items = await outbox.list();
    const pendingIds = new Set(items.filter((it) => it.kind === 'action' && outbox.UNSENT.has(it.status)).map((it) => it.payload.case_id));
    const byId = new Map(found.map((c) => [c.id, c]));
    for (const c of cases) if (pendingIds.has(c.id) && !byId.has(c.id)) byId.set(c.id, c);
    const mine = new Set(state.user.grid_codes || []);
    cases = [...byId.values()].sort((a, b) => (mine.has(b.grid_code) - mine.has(a.grid_code)) || a.id - b.id);
    await kv.set(ukey('tasks'), { fetched_at: Date.now(), items: cases });
    status.textContent = t('tasks.updated', { time: new Date().toLocaleTimeString() });
  } catch (e) {
    status.textContent = t('tasks.failed');
  }
  render();
  if (manual) toast(t('tasks.refreshed'));
}

async function storeCase(c) {
  const cached = (await kv.get(ukey('tasks'))) || { items: [] };
  const list = cached.items.some((x) => x.id === c.id) ? cached.items.map((x) => (x.id === c.id ? c : x)) : [...cached.items, c];
  await kv.set(ukey('tasks'), { ...cached, items: list });
  cases = list;
  if (!$('view-tasks').hidden) render();
}

// The unsent action on a case, as the person should see it: it needs attention when it, or a
// photo it waits for, was refused (a photo gets 409 when the case moved on meanwhile).
function actionItemFor(caseId) {
  const mine = items.filter((it) => it.kind === 'action' && it.payload.case_id === caseId && outbox.UNSENT.has(it.status));
  const it = mine[mine.length - 1];
  if (!it || it.status === 'needs_attention') return it || null;
  const refused = (it.payload.photo_items || []).map((id) => items.find((x) => x.id === id)).find((x) => x && x.status === 'needs_attention');
  return refused ? { ...it, status: 'needs_attention', message: refused.message, conflict: refused.conflict } : it;
}

function render() {
  const list = $('tasks-list');
  if (!state.user) return;
  if (!cases.length) {
    list.replaceChildren(h('li', { class: 'muted', text: t('tasks.none') }));
  } else {
    list.replaceChildren(...cases.map((c) => {
      const pending = actionItemFor(c.id);
      const cat = state.categories.find((x) => x.code === c.category_code);
      return h('li', {
        class: `task ${c.id === openId ? 'open' : ''}`, testid: 'task-item', dataset: { caseId: String(c.id), status: c.status },
        onclick: () => open(c.id),
      },
      h('div', { class: 'row' }, h('b', { text: c.number }), h('span', { class: `badge ${c.timer || ''}`, text: t(`status.${c.status}`) })),
      h('div', { text: `${c.category_code} ${cat ? catName(cat) : ''}` }),
      h('div', { class: 'muted', text: `${c.grid_code || t('loc.noGrid')} · ${(c.description || '').slice(0, 60)}` }),
      pending ? h('div', { class: pending.status === 'needs_attention' ? 'error' : 'muted', text: pendingText(pending) }) : null);
    }));
  }
  renderPanel();
}

function pendingText(it) {
  const what = t(`action.${it.payload.action}`);
  return it.status === 'needs_attention' ? `${what}: ${t('tasks.conflict')}` : `${what}: ${t(`ostatus.${it.status}`)}`;
}

function open(id) {
  if (openId !== id) form = null;
  openId = id;
  render();
  renderPanel(true);
  $('case-panel').scrollIntoView({ block: 'nearest' });
}

// Redraw the open case only when what it shows changed (or when asked): the person may be typing.
function renderPanel(force = false) {
  const panel = $('case-panel');
  const c = cases.find((x) => x.id === openId);
  const pend = c && actionItemFor(c.id);
  const sig = JSON.stringify([openId, c?.version, c?.status, pend?.id, pend?.status, state.user?.id, document.documentElement.lang]);
  if (!force && sig === panelSig && !panel.hidden === !!c) return;
  panelSig = sig;
  previews.release();
  if (!c) { panel.hidden = true; panel.replaceChildren(); return; }
  panel.hidden = false;
  panel.dataset.caseId = String(c.id);
  const cat = state.categories.find((x) => x.code === c.category_code);
  const deadline = c.stage_deadline ? new Date(c.stage_deadline).toLocaleString() : '—';
  const parts = [
    h('div', { class: 'row' }, h('h2', { text: c.number }), h('button', { type: 'button', class: 'link', testid: 'case-close', text: t('close'), onclick: (e) => { e.stopPropagation(); openId = null; form = null; render(); } })),
    h('p', {}, h('span', { class: `badge ${c.timer || ''}`, testid: 'case-status', text: t(`status.${c.status}`) }), ` ${c.category_code} ${cat ? catName(cat) : ''} · ${c.urgency}`),
    h('p', { text: c.description || '' }),
    h('p', { class: 'muted', text: `${t('report.grid')}: ${c.grid_code || t('loc.noGrid')} · ${c.location.lat.toFixed(6)}, ${c.location.lon.toFixed(6)}` }),
    h('p', { class: 'muted', text: `${t('case.deadline')}: ${deadline}${c.rework_count ? ` · ${t('case.rework', { n: c.rework_count })}` : ''}` }),
  ];
  const pending = actionItemFor(c.id);
  if (pending && pending.status === 'needs_attention') {
    if (!form || form.itemId !== pending.id) form = formFromItem(pending);
    parts.push(h('div', { class: 'conflict', testid: 'task-conflict' },
      h('b', { text: pending.conflict ? t('tasks.conflictTitle') : t('tasks.attentionTitle') }),
      h('p', { testid: 'task-conflict-message', text: pending.message || '' }),
      h('p', { class: 'muted', text: t('tasks.kept') })));
    parts.push(actionForm(c, form, true));
  } else if (pending) {
    parts.push(h('p', { class: 'notice', testid: 'task-pending', text: pendingText(pending) }));
  } else {
    const buttons = (c.allowed_actions || []).map((a) => h('button', {
      type: 'button', testid: `action-${a}`, class: form && form.action === a ? 'primary' : '', text: t(`action.${a}`),
      onclick: () => { form = { caseId: c.id, action: a, note: '', reason_code: 'other', hours: 8, photos: [] }; renderPanel(true); },
    }));
    parts.push(buttons.length ? h('div', { class: 'actions' }, buttons) : h('p', { class: 'muted', testid: 'task-no-actions', text: t('tasks.noActions') }));
    if (form && form.caseId === c.id && (c.allowed_actions || []).includes(form.action)) parts.push(actionForm(c, form, false));
  }
  panel.replaceChildren(...parts);
  renderPosition();
}

function formFromItem(it) {
  const p = it.payload;
  const photos = (p.photo_items || []).map((id) => items.find((x) => x.id === id)).filter(Boolean)
    .map((x) => ({ blob: x.payload.blob, name: x.payload.name, taken_at: x.payload.taken_at, itemId: x.id }));
  return {
    caseId: p.case_id, action: p.action, itemId: it.id, note: p.body.note ?? p.body.reason ?? '',
    reason_code: p.body.reason_code || 'other', hours: p.body.hours || 8, photos,
  };
}

function actionForm(c, f, conflict) {
  const spec = FORMS[f.action] || {};
  const fields = [h('h3', { text: t(`action.${f.action}`) })];
  if (spec.reason_code) {
    const sel = h('select', { testid: 'action-reason', onchange: (e) => { f.reason_code = e.target.value; } },
      RETURN_REASONS.map((r) => h('option', { value: r, text: t(`reason.${r}`) })));
    sel.value = f.reason_code;
    fields.push(h('label', {}, t('form.reasonCode'), sel));
  }
  if (spec.hours) {
    fields.push(h('label', {}, t('form.hours'), h('input', {
      type: 'number', min: '0.5', max: '1440', step: '0.5', value: String(f.hours), testid: 'action-hours',
      oninput: (e) => { f.hours = Number(e.target.value); },
    })));
  }
  if (spec.note) {
    const label = f.action === 'verify_fail' || f.action === 'request_extension' ? t('form.reason') : t('form.note');
    fields.push(h('label', {}, `${label}${spec.note === 'optional' ? ` (${t('optional')})` : ''}`,
      h('textarea', { rows: '3', maxlength: '2000', testid: 'action-note', value: f.note, oninput: (e) => { f.note = e.target.value; updateSubmit(); } })));
  }
  if (spec.photos) {
    const list = h('div', { class: 'photos' }, f.photos.map((p, i) => h('figure', { class: 'thumb', testid: 'action-photo-item' },
      p.blob ? h('img', { src: previews.url(p.blob), alt: `${t('report.photo')} ${i + 1}` }) : h('span', { text: '✓' }),
      conflict ? null : h('button', { type: 'button', class: 'remove', text: '×', 'aria-label': t('remove'), onclick: () => { f.photos.splice(i, 1); renderPanel(true); } }))));
    fields.push(h('div', { class: 'field' }, h('span', { text: `${t('report.photos')}${spec.photosRequired ? '' : ` (${t('optional')})`}` }), list,
      conflict ? null : h('label', { class: 'button file' }, t('report.addPhoto'), h('input', {
        type: 'file', accept: 'image/*', capture: 'environment', multiple: true, testid: 'action-photo',
        onchange: (e) => addPhotos(e, f),
      }))));
  }
  if (spec.position) fields.push(h('p', { class: 'location', id: 'action-location', testid: 'action-location' }));
  fields.push(h('p', { class: 'error', id: 'action-error', testid: 'action-error', hidden: true }));
  if (conflict) {
    fields.push(h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', testid: 'conflict-retry', text: t('tasks.applyAgain'), onclick: () => applyAgain(c, f) }),
      h('button', { type: 'button', class: 'danger', testid: 'conflict-discard', text: t('tasks.discard'), onclick: () => discard(f) })));
  } else {
    fields.push(h('button', { type: 'button', class: 'primary', testid: 'action-submit', id: 'action-submit', text: t('form.submit'), onclick: () => submit(c, f) }));
  }
  const box = h('div', { class: 'action-form', testid: 'action-form', dataset: { action: f.action } }, fields);
  queueMicrotask(updateSubmit);
  return box;
}

async function addPhotos(e, f) {
  const files = [...e.target.files];
  e.target.value = '';
  f.processing = (f.processing || 0) + files.length;
  updateSubmit();
  for (const file of files) {
    try {
      f.photos.push(await prepare(file));
    } catch {
      toast(t('photo.bad'));
    } finally {
      f.processing--;
    }
  }
  renderPanel(true);
}

function renderPosition() {
  const el = $('action-location');
  if (!el) return;
  el.textContent = fix ? `${geo.formatFix(fix)} ±${fix.accuracy_m} m` : geoError ? t(`geo.${geoError.reason}`) : t('loc.waiting');
  updateSubmit();
}

function formProblem(f) {
  const spec = FORMS[f.action] || {};
  if (f.processing) return t('photo.processing');
  if (spec.note === 'required' && !f.note.trim()) return t('missing.note');
  if (spec.photosRequired && !f.photos.length) return t('missing.photo');
  if (spec.hours && !(f.hours >= 0.5)) return t('missing.hours');
  if (spec.position && !fix) return t('missing.position');
  return null;
}

function updateSubmit() {
  const b = $('action-submit');
  if (b && form) b.disabled = !!formProblem(form);
}

function bodyOf(f) {
  const note = f.note.trim();
  switch (f.action) {
    case 'return': return { reason_code: f.reason_code, note };
    case 'request_extension': return { hours: f.hours, reason: note };
    case 'handle': return { note };
    case 'verify_pass': return { lon: fix.lon, lat: fix.lat, accuracy_m: fix.accuracy_m, ...(note ? { note } : {}) };
    case 'verify_fail': return { reason: note };
    default: return note ? { note } : {};
  }
}

async function submit(c, f) {
  const problem = formProblem(f);
  if (problem) return;
  const kind = FORMS[f.action].photos;
  const photoItems = f.photos.map((p, i) => outbox.item('photo', {
    case_id: c.id, kind, blob: p.blob, name: p.name, taken_at: p.taken_at, n: i + 1, of: f.photos.length, number: c.number,
  }));
  const action = outbox.item('action', {
    case_id: c.id, number: c.number, action: f.action, version: c.version, body: bodyOf(f), photo_items: photoItems.map((p) => p.id),
  }, { dependsOn: photoItems.map((p) => p.id) });
  try {
    await outbox.enqueue([...photoItems, action]);
    form = null;
    items = await outbox.list();
    render();
    toast(t('tasks.queued'));
  } catch (e) {
    actionError(e && e.name === 'QuotaExceededError' ? t('storage.full') : String(e && e.message));
  }
}

// the panel may have been redrawn meanwhile: always the element shown now
function actionError(text) {
  const err = $('action-error');
  if (!err) return;
  err.textContent = text || '';
  err.hidden = !text;
}

// Read the case again; if the action is still allowed, send it on the current version with the
// note as it reads now (photos already uploaded are reused).
async function applyAgain(c, f) {
  actionError(null);
  if (!navigator.onLine) { actionError(t('tasks.needOnline')); return; }
  const r = await call(`/cases/${c.id}`).catch(() => null);
  if (!r || !r.ok) { actionError(t('tasks.failed')); return; }
  await storeCase(r.data);
  if (!(r.data.allowed_actions || []).includes(f.action)) {
    actionError(t('tasks.noLonger', { status: t(`status.${r.data.status}`) }));
    return;
  }
  const photoIds = f.photos.map((p) => p.itemId).filter(Boolean);
  for (const id of photoIds) {
    const p = items.find((x) => x.id === id);
    if (p && p.status === 'needs_attention') await outbox.retry(id);
  }
  await outbox.update(f.itemId, (it) => {
    const body = { ...it.payload.body };
    if ('note' in body || f.note.trim()) body[f.action === 'verify_fail' || f.action === 'request_extension' ? 'reason' : 'note'] = f.note.trim();
    Object.assign(it, { status: 'queued', conflict: false, message: null, attempts: 0, next_try: 0 });
    it.payload = { ...it.payload, version: r.data.version, body };
  });
  form = null;
  items = await outbox.list();
  render();
  outbox.flush({ force: true });
}

async function discard(f) {
  if (!(await confirmBox(t('tasks.discardConfirm'), t('tasks.discard'), t('cancel')))) return;
  const all = await outbox.list();
  const ids = [f.itemId, ...f.photos.map((p) => p.itemId).filter(Boolean)];
  const unsentIds = ids.filter((id) => outbox.UNSENT.has(all.find((x) => x.id === id)?.status));
  await outbox.remove(unsentIds);
  form = null;
  items = await outbox.list();
  render();
}
