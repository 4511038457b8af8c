// Workflow actions from the console: one button per action the server lists in the case's
// `allowed_actions` (the state table of cases/states.py decides; the console never guesses), a
// dialog for the actions that need input, and the POST with If-Match on the version shown.
import { ApiError, call, get } from './api.js';
import { t } from './i18n.js';
import { catName, refs, teamName } from './store.js';
import { dialog, h, option, uuid } from './ui.js';

// actions done by one click (their body comes from the page, if any)
const IMMEDIATE = new Set(['register', 'accept', 'resume']);
const RETURN_REASONS = ['not_competent', 'outside_area', 'wrong_category', 'duplicate', 'cannot_locate', 'other'];

export async function act(c, action, body = {}) {
  const res = await call(`/cases/${c.id}/actions/${action}`, { method: 'POST', json: body, headers: { 'If-Match': `"${c.version}"` } });
  if (!res.ok) {
    const err = new ApiError(res);
    if (res.status === 412) err.message = t('action.stale');
    else if (res.status === 409) err.message = `${t('action.conflict')} ${err.message}`;
    throw err;
  }
  return res.data;
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

function textarea(name, required = true, value = '') {
  const el = h('textarea', { name, rows: 3, maxlength: 2000, required, testid: `action-field-${name}` });
  el.value = value;
  return el;
}

function need(value, label) {
  if (value == null || (typeof value === 'string' && !value.trim())) throw new Error(t('form.required', { field: label }));
  return typeof value === 'string' ? value.trim() : value;
}

// A generic dialog for an action: build(body) returns the form's nodes and a collect() → body.
function formDialog(c, action, nodes, collect, onDone, { wide = false, submitLabel } = {}) {
  dialog({
    title: `${t(`action.${action}`)} · ${c.number}`, testid: `action-dialog-${action}`, wide,
    body: h('div', { class: 'form' }, nodes),
    actions: [
      { label: t('cancel') },
      { label: submitLabel || t(`action.${action}`), primary: true, testid: action === 'dispatch' ? 'dispatch-submit' : 'action-submit',
        onClick: async () => { onDone(await act(c, action, await collect())); } },
    ],
  });
}

// Run an action: at once, or through its dialog. ctx: {registerBody(), duplicates, onDone(case)}
export function startAction(c, action, ctx) {
  const done = ctx.onDone;
  if (IMMEDIATE.has(action)) {
    const body = action === 'register' && ctx.registerBody ? ctx.registerBody() : {};
    return act(c, action, body).then(done);
  }
  switch (action) {
    case 'reject': {
      const reason = textarea('reason');
      const quick = h('div', { class: 'quick' }, ['reject.q1', 'reject.q2', 'reject.q3', 'reject.q4'].map((k) =>
        h('button', { type: 'button', class: 'small', onclick: () => { reason.value = t(k); } }, t(k))));
      return formDialog(c, action, [field(t('form.reason'), reason), quick], () => ({ reason: need(reason.value, t('form.reason')) }), done);
    }
    case 'merge': return mergeDialog(c, ctx.duplicates || [], done, ctx.parentId);
    case 'dispatch': return dispatchDialog(c, done);
    case 'return': {
      const code = h('select', { name: 'reason_code', testid: 'action-field-reason_code' }, RETURN_REASONS.map((r) => option(r, t(`reason.${r}`))));
      const note = textarea('note');
      return formDialog(c, action, [field(t('form.reasonCode'), code), field(t('form.note'), note)],
        () => ({ reason_code: code.value, note: need(note.value, t('form.note')) }), done);
    }
    case 'suspend': {
      const reason = textarea('reason');
      return formDialog(c, action, [field(t('form.reason'), reason)], () => ({ reason: need(reason.value, t('form.reason')) }), done);
    }
    case 'request_extension': {
      const hours = h('input', { type: 'number', name: 'hours', min: '0.5', max: '1440', step: '0.5', value: '8', testid: 'action-field-hours' });
      const reason = textarea('reason');
      return formDialog(c, action, [field(t('form.hours'), hours), field(t('form.reason'), reason)],
        () => ({ hours: Number(need(hours.value, t('form.hours'))), reason: need(reason.value, t('form.reason')) }), done);
    }
    case 'decide_extension': return extensionDialog(c, done);
    case 'escalate': {
      const level = h('select', { name: 'level', testid: 'action-field-level' }, [1, 2, 3].map((n) => option(n, t(`escalate.level${n}`), n === Math.min(3, (c.escalation_level || 0) + 1))));
      const note = textarea('note');
      return formDialog(c, action, [field(t('form.level'), level), field(t('form.note'), note)],
        () => ({ level: Number(level.value), note: need(note.value, t('form.note')) }), done);
    }
    case 'verify_fail': {
      const reason = textarea('reason');
      return formDialog(c, action, [field(t('form.reason'), reason)], () => ({ reason: need(reason.value, t('form.reason')) }), done);
    }
    case 'handle': {
      const note = textarea('note');
      const files = h('input', { type: 'file', accept: 'image/jpeg,image/png,image/webp', multiple: true, testid: 'action-field-photos' });
      return formDialog(c, action, [field(t('form.note'), note), field(t('form.afterPhotos'), files)], async () => {
        const text = need(note.value, t('form.note'));
        if (!files.files.length) throw new Error(t('form.required', { field: t('form.afterPhotos') }));
        const ids = [];
        for (const file of files.files) ids.push((await uploadPhoto(c.id, 'after', file)).id);
        return { note: text, photo_ids: ids };
      }, done);
    }
    case 'verify_pass':
    default:
      return dialog({ title: t(`action.${action}`), testid: `action-dialog-${action}`,
        body: h('p', {}, t('action.onSite'), ' ', h('a', { href: '/field/' }, t('action.fieldLink'))), actions: [{ label: t('close') }] });
  }
}

export async function uploadPhoto(caseId, kind, file) {
  const form = new FormData();
  form.append('kind', kind);
  form.append('file', file, file.name);
  const res = await call(`/cases/${caseId}/photos`, { method: 'POST', form, headers: { 'Idempotency-Key': uuid() }, timeout: 120000 });
  if (!res.ok) throw new ApiError(res);
  return res.data;
}

// ------------------------------------------------------------------ dispatch: ranked suggestions

async function dispatchDialog(c, done) {
  const select = h('select', { testid: 'dispatch-team', name: 'team_id', required: true });
  const list = h('ol', { class: 'suggestions', testid: 'dispatch-suggestions' }, h('li', { class: 'muted' }, t('loading')));
  const assisting = h('div', { class: 'checks', testid: 'dispatch-assisting' });
  const note = h('textarea', { name: 'note', rows: 2, maxlength: 2000, testid: 'dispatch-note' });
  const choose = (id) => {
    select.value = String(id);
    for (const li of list.querySelectorAll('li[data-team-id]')) li.classList.toggle('chosen', li.dataset.teamId === String(id));
    for (const box of assisting.querySelectorAll('input')) {
      box.disabled = box.value === String(id);
      if (box.disabled) box.checked = false;
    }
  };
  select.addEventListener('change', () => choose(select.value));
  dialog({
    title: `${t('action.dispatch')} · ${c.number}`, testid: 'action-dialog-dispatch', wide: true,
    body: h('div', { class: 'form dispatch' },
      h('p', { class: 'muted' }, `${c.category_code} ${catName(refs.catByCode.get(c.category_code))} · ${c.grid_code || t('case.noGrid')}`),
      h('h3', {}, t('dispatch.suggested')), list,
      field(t('dispatch.lead'), select),
      h('details', {}, h('summary', {}, t('dispatch.assisting')), assisting),
      field(t('form.noteOptional'), note)),
    actions: [
      { label: t('cancel') },
      { label: t('action.dispatch'), primary: true, testid: 'dispatch-submit', onClick: async () => {
        const teamId = Number(select.value);
        if (!teamId) throw new Error(t('form.required', { field: t('dispatch.lead') }));
        const body = { team_id: teamId };
        const extra = [...assisting.querySelectorAll('input:checked')].map((b) => Number(b.value)).filter((id) => id !== teamId);
        if (extra.length) body.assisting_team_ids = extra;
        if (note.value.trim()) body.note = note.value.trim();
        done(await act(c, 'dispatch', body));
      } },
    ],
  });
  let ranked = [];
  try {
    ranked = await get(`/cases/${c.id}/dispatch-suggestions`);
  } catch (err) {
    list.replaceChildren(h('li', { class: 'error' }, err.message));
  }
  const handling = refs.teams.filter((x) => x.kind === 'enforcement' || x.kind === 'community');
  const ids = [...ranked.map((s) => s.team_id), ...handling.map((x) => x.id).filter((id) => !ranked.some((s) => s.team_id === id))];
  select.replaceChildren(...ids.map((id, i) => {
    const s = ranked.find((x) => x.team_id === id);
    return option(id, `${i + 1}. ${s ? s.name : teamName(id)}${s ? ` (${s.score})` : ''}`);
  }));
  if (ranked.length) {
    list.replaceChildren(...ranked.map((s, i) => h('li', {
      dataset: { teamId: String(s.team_id) }, testid: 'dispatch-suggestion', tabindex: '0',
      class: s.competent && s.covers ? 'fit' : '', onclick: () => choose(s.team_id),
      onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); choose(s.team_id); } },
    },
    h('div', { class: 'row' }, h('b', {}, `${i + 1}. ${s.name}`), h('span', { class: 'chip' }, t(`teamkind.${s.kind}`)),
      h('span', { class: 'score', title: t('dispatch.score') }, String(s.score))),
    h('ul', { class: 'reasons' }, (s.reasons || []).map((r) => h('li', { text: r }))))));
  } else if (!list.querySelector('.error')) {
    list.replaceChildren(h('li', { class: 'muted' }, t('dispatch.none')));
  }
  assisting.replaceChildren(...ids.map((id) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: String(id) }), teamName(id))));
  if (ids.length) choose(ids[0]);
}

// ------------------------------------------------------------------ merge into a duplicate

// candidates: the duplicates found nearby; parentId: the one chosen in the list, checked here to confirm
function mergeDialog(c, candidates, done, parentId) {
  const radios = candidates.map((d) => h('label', { class: 'check cand' },
    h('input', { type: 'radio', name: 'parent', value: String(d.id), testid: 'merge-candidate', dataset: { caseId: String(d.id) } }),
    h('span', { class: 'mono' }, d.number), ' ', h('span', { class: 'chip' }, t(`status.${d.status}`)), ' ',
    d.distance_m != null ? t('dup.distance', { m: Math.round(d.distance_m) }) : '', ' ', h('span', { class: 'muted', text: d.description || '' })));
  const preferred = radios.find((r) => r.querySelector('input').value === String(parentId)) || radios[0];
  if (preferred) preferred.querySelector('input').checked = true;
  const number = h('input', { type: 'text', name: 'parent_number', placeholder: t('merge.byNumber'), testid: 'merge-number' });
  formDialog(c, 'merge', [
    radios.length ? h('div', { class: 'cands' }, radios) : h('p', { class: 'muted' }, t('dup.none')),
    field(t('merge.orNumber'), number),
  ], async () => {
    const typed = number.value.trim();
    if (typed) {
      const found = await get(`/cases?q=${encodeURIComponent(typed)}&per_page=5`);
      const hit = found.items.find((x) => x.number === typed || String(x.id) === typed);
      if (!hit) throw new Error(t('merge.notFound', { n: typed }));
      return { parent_id: hit.id };
    }
    const chosen = radios.map((r) => r.querySelector('input')).find((i) => i.checked);
    if (!chosen) throw new Error(t('form.required', { field: t('merge.parent') }));
    return { parent_id: Number(chosen.value) };
  }, done);
}

// ------------------------------------------------------------------ an extension request

function extensionDialog(c, done) {
  const p = c.pending_extension || {};
  const note = h('textarea', { rows: 2, maxlength: 2000, testid: 'action-field-note' });
  const decide = (approve) => async () => {
    const body = { approve };
    if (note.value.trim()) body.note = note.value.trim();
    done(await act(c, 'decide_extension', body));
  };
  dialog({
    title: `${t('action.decide_extension')} · ${c.number}`, testid: 'action-dialog-decide_extension',
    body: h('div', { class: 'form' },
      h('p', {}, t('ext.request', { n: p.hours ?? '?' })), h('blockquote', { text: p.reason || '' }),
      field(t('form.noteOptional'), note)),
    actions: [
      { label: t('cancel') },
      { label: t('ext.deny'), danger: true, testid: 'extension-deny', onClick: decide(false) },
      { label: t('ext.approve'), primary: true, testid: 'extension-approve', onClick: decide(true) },
    ],
  });
}

// a report made by the dispatcher (hotline) or an edit before registering: the inline fields
export function registerFields(c) {
  const cat = h('select', { testid: 'register-category', 'aria-label': t('col.category') },
    refs.categories.filter((x) => x.active || x.code === c.category_code).map((x) => option(x.code, `${x.code} ${catName(x)}`, x.code === c.category_code)));
  const urg = h('select', { testid: 'register-urgency', 'aria-label': t('col.urgency') },
    ['A', 'B', 'C'].map((u) => option(u, t(`urgency.${u}`), u === c.urgency)));
  return {
    nodes: [cat, urg],
    body() {
      const b = {};
      if (cat.value && cat.value !== c.category_code) b.category_code = cat.value;
      if (urg.value && urg.value !== c.urgency) b.urgency = urg.value;
      return b;
    },
  };
}
