// Administration: users (roles, scope, teams, responsibility grids), teams (kind, agencies,
// areas, categories), the category catalog with its limits, the working calendar, grid import
// with a preview of what would be accepted and rejected, the Open311 keys and the outgoing webhooks.
import { ApiError, call, get, qs, send } from '../api.js';
import { t } from '../i18n.js';
import { areaName, catName, reloadCategories, reloadTeams, refs, session, teamName } from '../store.js';
import { confirmDialog, dialog, fmtDateTime, h, option, toast } from '../ui.js';

const SECTIONS = ['users', 'teams', 'categories', 'calendar', 'grids', 'open311', 'webhooks'];
const ROLES = ['inspector', 'dispatcher', 'handler', 'supervisor', 'admin'];
const TEAM_KINDS = ['patrol', 'enforcement', 'community', 'supervision'];

export function mount(root, route) {
  let section = SECTIONS.includes(route.parts[0]) ? route.parts[0] : 'users';
  const body = h('div', { class: 'admin-body' });
  const tabs = h('nav', { class: 'subnav', testid: 'admin-tabs' }, SECTIONS.map((s) =>
    h('a', { href: `#/admin/${s}`, testid: `admin-tab-${s}`, dataset: { section: s } }, t(`admin.${s}`))));
  root.append(h('div', { class: 'page admin-page' }, tabs, body));

  function show() {
    for (const a of tabs.children) a.classList.toggle('active', a.dataset.section === section);
    body.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    const draw = { users, teams, categories, calendar, grids, open311, webhooks }[section];
    draw(body).catch((err) => body.replaceChildren(h('p', { class: 'error' }, err.message)));
  }
  show();
  return { update(r) { section = SECTIONS.includes(r.parts[0]) ? r.parts[0] : 'users'; show(); } };
}

// ------------------------------------------------------------------ small form helpers

const field = (label, input, hint) => h('label', { class: 'field' }, h('span', { class: 'label' }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
const input = (name, value = '', attrs = {}) => h('input', { name, value: value ?? '', testid: `admin-field-${name}`, ...attrs });
const list = (text) => text.split(/[\s,，;；]+/).map((x) => x.trim()).filter(Boolean);

function checks(name, values, chosen, label = (v) => v) {
  return h('div', { class: 'checks', testid: `admin-field-${name}` }, values.map((v) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: String(v), checked: chosen.includes(v) }), label(v))));
}
const checked = (box) => [...box.querySelectorAll('input:checked')].map((i) => i.value);
const fieldset = (label, node) => h('div', { class: 'field' }, h('span', { class: 'label' }, label), node);

// A long list to choose several from: checkboxes (no Ctrl-click that loses a choice), a filter, the
// count chosen, and all / none for what the filter shows. items: [{value, label, indent}]
function checkList(name, items, chosen) {
  // what is chosen but not offered (outside the caller's areas, a retired category) stays chosen
  const known = new Set(items.map((it) => it.value));
  items = items.concat(chosen.filter((v) => !known.has(v)).map((v) => ({ value: v, label: v })));
  const count = h('span', { class: 'muted small', testid: `admin-count-${name}` });
  const boxes = items.map((it) => h('label', { class: `check${it.indent ? ' indent' : ''}`, dataset: { text: it.label.toLowerCase() } },
    h('input', { type: 'checkbox', value: it.value, checked: chosen.includes(it.value) }), it.label));
  const listBox = h('div', { class: 'checklist', testid: `admin-field-${name}` }, boxes);
  const recount = () => { count.textContent = t('admin.chosen', { n: checked(listBox).length, m: items.length }); };
  const shown = () => boxes.filter((b) => !b.hidden).map((b) => b.querySelector('input'));
  const filter = h('input', { type: 'search', placeholder: t('admin.filter'), testid: `admin-filter-${name}`, oninput: () => {
    const f = filter.value.trim().toLowerCase();
    boxes.forEach((b) => { b.hidden = !!f && !b.dataset.text.includes(f); });
  } });
  const all = h('button', { type: 'button', class: 'small', onclick: () => { shown().forEach((i) => { i.checked = true; }); recount(); } }, t('admin.all'));
  const none = h('button', { type: 'button', class: 'small', onclick: () => { shown().forEach((i) => { i.checked = false; }); recount(); } }, t('admin.none'));
  listBox.addEventListener('change', recount);
  recount();
  return { node: h('div', { class: 'checklist-box' }, h('div', { class: 'row' }, filter, all, none, count), listBox), values: () => checked(listBox) };
}

function missing(what) {
  return h('p', { class: 'notice', testid: 'admin-missing' }, t('admin.missing', { what }));
}

async function saveWith(method, path, json) {
  const res = await call(path, { method, json });
  if (!res.ok) throw new ApiError(res);
  return res.data;
}

// ------------------------------------------------------------------ users

async function users(body) {
  const role = h('select', { testid: 'users-role' }, option('', t('admin.allRoles')), ROLES.map((r) => option(r, t(`role.${r}`))));
  const q = h('input', { type: 'search', placeholder: t('admin.searchUsers'), testid: 'users-search' });
  const table = h('div', { class: 'table-wrap' });
  const add = h('button', { type: 'button', class: 'primary', testid: 'user-new', onclick: () => userForm(null, reload) }, t('admin.newUser'));
  body.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, t('admin.users')), role, q, h('span', { class: 'spacer' }), add), table);
  async function reload() {
    const res = await call(`/users${qs({ role: role.value, q: q.value.trim(), per_page: 200 })}`);
    if (res.status === 404 || res.status === 405) { table.replaceChildren(missing('GET /api/v1/users')); return; }
    if (!res.ok) throw new ApiError(res);
    table.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['username', 'display_name', 'roles', 'scope', 'teams', 'grids', 'active', ''].map((k) => h('th', {}, k ? t(`user.${k}`) : '')))),
      h('tbody', {}, res.data.items.map((u) => h('tr', { testid: 'user-row', dataset: { userId: String(u.id) }, class: u.active === false ? 'inactive' : '' },
        h('td', { class: 'mono' }, u.username), h('td', {}, u.display_name),
        h('td', {}, u.roles.map((r) => t(`role.${r}`)).join('、')), h('td', { class: 'small' }, u.scope.map(areaLabel).join('、')),
        h('td', { class: 'small' }, (u.team_ids || []).map(teamName).join('、')), h('td', {}, String((u.grid_codes || []).length)),
        h('td', {}, u.active === false ? t('admin.inactive') : t('admin.active')),
        h('td', {}, h('button', { type: 'button', class: 'small', testid: 'user-edit', onclick: () => userForm(u, reload) }, t('edit'))))))));
  }
  role.addEventListener('change', () => reload().catch((e) => toast(e.message, 'error')));
  q.addEventListener('change', () => reload().catch((e) => toast(e.message, 'error')));
  await reload();
}

const areaLabel = (code) => (code === '*' ? t('admin.everywhere') : `${areaName(code)}${areaName(code) !== code ? ` (${code})` : ''}`);

function userForm(u, done) {
  const username = input('username', u && u.username, { disabled: !!u, autocomplete: 'off' });
  const name = input('display_name', u && u.display_name);
  const password = input('password', '', { type: 'password', autocomplete: 'new-password', placeholder: u ? t('admin.passwordKeep') : '' });
  const roles = checks('roles', ROLES, u ? u.roles : [], (r) => t(`role.${r}`));
  const scope = input('scope', u ? u.scope.join(', ') : (session.me.scope || []).join(', '));
  const teams = checks('team_ids', refs.teams.map((x) => x.id), u ? u.team_ids || [] : [], teamName);
  const grids = h('textarea', { name: 'grid_codes', rows: 3, testid: 'admin-field-grid_codes' });
  grids.value = u ? (u.grid_codes || []).join(' ') : '';
  const active = h('input', { type: 'checkbox', checked: !u || u.active !== false, testid: 'admin-field-active' });
  dialog({
    title: u ? `${t('edit')} · ${u.username}` : t('admin.newUser'), testid: 'user-dialog', wide: true,
    body: h('div', { class: 'form two' },
      h('div', {}, field(t('user.username'), username), field(t('user.display_name'), name), field(t('user.password'), password, t('admin.passwordRule')),
        field(t('user.scope'), scope, t('admin.scopeHint')), u ? h('label', { class: 'check' }, active, t('admin.active')) : null),
      h('div', {}, field(t('user.roles'), roles), field(t('user.teams'), teams), field(t('user.grids'), grids, t('admin.gridsHint')))),
    actions: [{ label: t('cancel') }, { label: t('save'), primary: true, testid: 'user-save', onClick: async () => {
      const bodyJson = { display_name: name.value.trim(), roles: checked(roles), scope: list(scope.value),
        team_ids: checked(teams).map(Number), grid_codes: list(grids.value) };
      if (password.value) bodyJson.password = password.value;
      if (u) {
        bodyJson.active = active.checked;
        await saveWith('PATCH', `/users/${u.id}`, bodyJson);
      } else {
        bodyJson.username = username.value.trim();
        await saveWith('POST', '/users', bodyJson);
      }
      toast(t('saved'), 'ok');
      await done();
    } }],
  });
}

// ------------------------------------------------------------------ teams

async function teams(body) {
  // every team, retired ones too (the shared list holds the active ones the other views offer)
  let all = (await get('/teams?per_page=500&include_inactive=true')).items;
  const add = h('button', { type: 'button', class: 'primary', testid: 'team-new' }, t('admin.newTeam'));
  const again = async () => { all = (await get('/teams?per_page=500&include_inactive=true')).items; redraw(); };
  const table = h('div', { class: 'table-wrap' });
  body.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, t('admin.teams')), h('span', { class: 'spacer' }), add), table);
  function redraw() {
    table.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['name', 'kind', 'agencies', 'areas', 'grids', 'categories', ''].map((k) => h('th', {}, k ? t(`team.${k}`) : '')))),
      h('tbody', {}, all.map((x) => h('tr', { testid: 'team-row', dataset: { teamId: String(x.id) }, class: x.active === false ? 'inactive' : '' },
        h('td', {}, x.name, x.active === false ? h('span', { class: 'badge' }, t('admin.inactive')) : null), h('td', {}, t(`teamkind.${x.kind}`)), h('td', { class: 'small' }, x.agencies.join('、')),
        h('td', { class: 'small' }, x.area_codes.map(areaName).join('、')), h('td', {}, String(x.grid_codes.length)),
        h('td', { class: 'small', title: x.category_codes.join(' ') }, String(x.category_codes.length)),
        h('td', {}, h('button', { type: 'button', class: 'small', testid: 'team-edit', onclick: () => teamForm(x, again) }, t('edit'))))))));
  }
  add.onclick = () => teamForm(null, again);
  redraw();
}

function teamForm(x, done) {
  const name = input('name', x && x.name);
  const kind = h('select', { testid: 'admin-field-kind' }, TEAM_KINDS.map((k) => option(k, t(`teamkind.${k}`), x && x.kind === k)));
  const agencies = input('agencies', x ? x.agencies.join('、') : '');
  const areaBox = checkList('area_codes', refs.areas.map((a) => ({ value: a.code, label: `${areaName(a.code)} ${a.code}`, indent: a.level === 'community' })),
    x ? x.area_codes : []);
  const grids = h('textarea', { rows: 2, testid: 'admin-field-grid_codes' });
  grids.value = x ? x.grid_codes.join(' ') : '';
  const cats = checkList('category_codes', refs.categories.filter((c) => c.active).map((c) => ({ value: c.code, label: `${c.code} ${catName(c)}` })),
    x ? x.category_codes : []);
  const active = h('input', { type: 'checkbox', checked: !x || x.active !== false, testid: 'admin-field-active' });
  dialog({
    title: x ? `${t('edit')} · ${x.name}` : t('admin.newTeam'), testid: 'team-dialog', wide: true,
    body: h('div', { class: 'form two' },
      h('div', {}, field(t('team.name'), name), field(t('team.kind'), kind), field(t('team.agencies'), agencies, t('admin.listHint')),
        field(t('team.grids'), grids, t('admin.gridsHint')),
        x ? h('label', { class: 'check' }, active, t('admin.active')) : null, fieldset(t('team.areas'), areaBox.node)),
      h('div', {}, fieldset(t('team.categories'), cats.node))),
    actions: [{ label: t('cancel') }, { label: t('save'), primary: true, testid: 'team-save', onClick: async () => {
      const b = { name: name.value.trim(), kind: kind.value, agencies: list(agencies.value.replace(/、/g, ',')),
        area_codes: areaBox.values(), grid_codes: list(grids.value), category_codes: cats.values() };
      if (x) {
        b.active = active.checked;
        const res = await call(`/teams/${x.id}`, { method: 'PATCH', json: b });
        if (res.status === 404 || res.status === 405) throw new Error(t('admin.missing', { what: 'PATCH /api/v1/teams/{id}' }));
        if (!res.ok) throw new ApiError(res);
      } else {
        await saveWith('POST', '/teams', b);
      }
      await reloadTeams();
      toast(t('saved'), 'ok');
      await done();
    } }],
  });
}

// ------------------------------------------------------------------ categories

async function categories(body) {
  await reloadCategories();
  const filter = h('input', { type: 'search', placeholder: t('admin.searchCategories'), testid: 'categories-search' });
  const add = h('button', { type: 'button', class: 'primary', testid: 'category-new', onclick: () => categoryForm(null, redraw) }, t('admin.newCategory'));
  const table = h('div', { class: 'table-wrap' });
  body.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, t('admin.categories')),
    h('span', { class: 'muted' }, t('admin.catalogVersion', { v: refs.catalogVersion })), filter, h('span', { class: 'spacer' }), add), table);
  const limit = (l) => (l ? `${l.amount} ${t(`unit.${l.unit}`)}${l.clock ? ` ${t('unit.clock')}` : ''}` : '—');
  function redraw() {
    const f = filter.value.trim().toLowerCase();
    const items = refs.categories.filter((c) => !f || `${c.code} ${c.name_zh} ${c.name_en}`.toLowerCase().includes(f));
    table.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['code', 'kind', 'name_zh', 'name_en', 'team_kind', 'A', 'B', 'C', 'state', ''].map((k) => h('th', {}, k ? t(`cat.${k}`) : '')))),
      h('tbody', {}, items.map((c) => h('tr', { testid: 'category-row', dataset: { code: c.code }, class: c.active ? '' : 'inactive' },
        h('td', { class: 'mono' }, c.code), h('td', {}, t(`catkind.${c.kind}`)), h('td', {}, c.name_zh), h('td', {}, c.name_en),
        h('td', {}, t(`teamkind.${c.team_kind}`)), ['A', 'B', 'C'].map((u) => h('td', { class: 'small' }, limit(c.limits[u]))),
        h('td', { class: 'small' }, c.active ? t('cat.since', { v: c.since_version }) : t('cat.retired', { v: c.retired_in_version })),
        h('td', {}, h('button', { type: 'button', class: 'small', testid: 'category-edit', onclick: () => categoryForm(c, redraw) }, t('edit')),
          c.active ? h('button', { type: 'button', class: 'small danger', testid: 'category-retire', onclick: async () => {
            if (!(await confirmDialog(t('cat.retireConfirm', { code: c.code, name: catName(c) }), t('cat.retire')))) return;
            try {
              const res = await call(`/categories/${c.code}`, { method: 'DELETE' });
              if (res.status === 405) throw new Error(t('admin.missing', { what: 'DELETE /api/v1/categories/{code}' }));
              if (!res.ok) throw new ApiError(res);
              await reloadCategories();
              redraw();
              toast(t('saved'), 'ok');
            } catch (err) { toast(err.message, 'error', 8000); }
          } }, t('cat.retire')) : null))))));
  }
  filter.addEventListener('input', redraw);
  redraw();
}

function categoryForm(c, done) {
  const code = input('code', c && c.code, { disabled: !!c, pattern: '\\d{4}', maxlength: 4 });
  const kind = h('select', { testid: 'admin-field-kind' }, ['part', 'event'].map((k) => option(k, t(`catkind.${k}`), c && c.kind === k)));
  const zh = input('name_zh', c && c.name_zh);
  const en = input('name_en', c && c.name_en);
  const teamKind = h('select', { testid: 'admin-field-team_kind' }, ['enforcement', 'community'].map((k) => option(k, t(`teamkind.${k}`), c && c.team_kind === k)));
  const filing = h('textarea', { rows: 2, testid: 'admin-field-filing_condition' });
  filing.value = (c && c.filing_condition) || '';
  const closure = h('textarea', { rows: 2, testid: 'admin-field-closure_condition' });
  closure.value = (c && c.closure_condition) || '';
  const limits = {};
  const limitRows = ['A', 'B', 'C'].map((u) => {
    const l = (c && c.limits[u]) || { amount: u === 'A' ? 2 : u === 'B' ? 1 : 5, unit: u === 'A' ? 'hour' : 'day', clock: u === 'A' };
    limits[u] = {
      amount: h('input', { type: 'number', min: '0.5', step: '0.5', value: String(l.amount), testid: `admin-field-limit-${u}-amount` }),
      unit: h('select', { testid: `admin-field-limit-${u}-unit` }, ['hour', 'day'].map((x) => option(x, t(`unit.${x}`), l.unit === x))),
      clock: h('input', { type: 'checkbox', checked: !!l.clock, testid: `admin-field-limit-${u}-clock` }),
    };
    return h('div', { class: 'row limit' }, h('b', {}, u), limits[u].amount, limits[u].unit, h('label', { class: 'check' }, limits[u].clock, t('unit.clock')));
  });
  dialog({
    title: c ? `${t('edit')} · ${c.code}` : t('admin.newCategory'), testid: 'category-dialog', wide: true,
    body: h('div', { class: 'form two' },
      h('div', {}, field(t('cat.code'), code), field(t('cat.kind'), kind), field(t('cat.name_zh'), zh), field(t('cat.name_en'), en),
        field(t('cat.team_kind'), teamKind)),
      h('div', {}, field(t('cat.filing'), filing), field(t('cat.closure'), closure), h('div', { class: 'field' }, h('span', { class: 'label' }, t('cat.limits')), limitRows))),
    actions: [{ label: t('cancel') }, { label: t('save'), primary: true, testid: 'category-save', onClick: async () => {
      const b = { kind: kind.value, name_zh: zh.value.trim(), name_en: en.value.trim(), team_kind: teamKind.value,
        filing_condition: filing.value.trim(), closure_condition: closure.value.trim(),
        limits: Object.fromEntries(Object.entries(limits).map(([u, x]) => [u, { amount: Number(x.amount.value), unit: x.unit.value, clock: x.clock.checked }])) };
      const res = c ? await call(`/categories/${c.code}`, { method: 'PATCH', json: b })
        : await call('/categories', { method: 'POST', json: { code: code.value.trim(), ...b } });
      if (res.status === 405) throw new Error(t('admin.missing', { what: c ? 'PATCH /api/v1/categories/{code}' : 'POST /api/v1/categories' }));
      if (!res.ok) throw new ApiError(res);
      await reloadCategories();
      toast(t('saved'), 'ok');
      done();
    } }],
  });
}

// ------------------------------------------------------------------ working calendar

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

async function calendar(body, year = new Date().getFullYear()) {
  const res = await call(`/calendar${qs({ year })}`);
  if (res.status === 404 || res.status === 405) { body.replaceChildren(h('h2', {}, t('admin.calendar')), missing('GET /api/v1/calendar')); return; }
  if (!res.ok) throw new ApiError(res);
  const cal = res.data;
  const yearSel = h('select', { testid: 'calendar-year', onchange: () => calendar(body, Number(yearSel.value)) },
    [year - 1, year, year + 1].map((y) => option(y, String(y), y === year)));
  const periods = {};
  const periodRows = WEEKDAYS.map((d) => {
    periods[d] = h('input', { type: 'text', testid: `calendar-periods-${d}`, placeholder: t('cal.closed'),
      value: (cal.work_periods[d] || []).map(([a, b]) => `${a}-${b}`).join(', ') });
    return h('div', { class: 'row' }, h('span', { class: 'wd' }, t(`wd.${d}`)), periods[d]);
  });
  const savePeriods = h('button', { type: 'button', testid: 'calendar-save-periods', onclick: async () => {
    try {
      const json = {};
      for (const d of WEEKDAYS) {
        const parts = list(periods[d].value);
        const pairs = parts.map((p) => p.split('-').map((x) => x.trim()));
        if (pairs.some((p) => p.length !== 2 || !p.every((x) => /^\d{1,2}:\d{2}$/.test(x)))) throw new Error(t('cal.badPeriods', { day: t(`wd.${d}`) }));
        json[d] = pairs.map(([a, b]) => [a.padStart(5, '0'), b.padStart(5, '0')]);
      }
      await send('PUT', '/calendar/work-periods', json);
      toast(t('saved'), 'ok');
    } catch (err) { toast(err.message, 'error', 8000); }
  } }, t('save'));
  const date = h('input', { type: 'date', testid: 'calendar-date' });
  const workday = h('select', { testid: 'calendar-workday' }, option('false', t('cal.holiday')), option('true', t('cal.workday')));
  const name = h('input', { type: 'text', testid: 'calendar-name', placeholder: t('cal.name') });
  const addDay = h('button', { type: 'button', class: 'primary', testid: 'calendar-add', onclick: async () => {
    if (!date.value) return toast(t('form.required', { field: t('cal.date') }), 'error');
    try {
      await send('PUT', `/calendar/days/${date.value}`, { workday: workday.value === 'true', name: name.value.trim() });
      toast(t('saved'), 'ok');
      calendar(body, year);
    } catch (err) { toast(err.message, 'error', 8000); }
  } }, t('cal.add'));
  const days = cal.days.slice().sort((a, b) => a.date.localeCompare(b.date));
  body.replaceChildren(
    h('div', { class: 'toolbar' }, h('h2', {}, t('admin.calendar')), yearSel, h('span', { class: 'muted' }, cal.timezone)),
    h('div', { class: 'cal-grid' },
      h('section', { class: 'panel' }, h('h3', {}, t('cal.periods')), h('p', { class: 'muted small' }, t('cal.periodsHint')), periodRows, savePeriods),
      h('section', { class: 'panel' }, h('h3', {}, t('cal.days', { y: year })),
        h('div', { class: 'row' }, date, workday, name, addDay),
        h('p', { class: 'legend-line small muted' }, h('span', { class: 'sw off' }), t('cal.holiday'), h('span', { class: 'sw swap' }), t('cal.workday'),
          h('span', { class: 'sw we' }), t('cal.weekend'), ' · ', t('cal.pickHint')),
        h('div', { class: 'year', testid: 'calendar-year-view', dataset: { year: String(year) } }, yearView(year, days, (iso, off) => {
          date.value = iso;
          workday.value = off ? 'true' : 'false'; // a click proposes the other state of the day
          const known = days.find((d) => d.date === iso);
          name.value = known ? known.name || '' : '';
          name.focus();
        })),
        h('table', { class: 'data small' }, h('tbody', {}, days.map((d) => h('tr', { testid: 'calendar-day', dataset: { date: d.date } },
          h('td', { class: 'mono' }, d.date), h('td', {}, t(`wd.${WEEKDAYS[(new Date(`${d.date}T00:00:00`).getDay() + 6) % 7]}`)),
          h('td', {}, h('span', { class: `chip ${d.workday ? 'workday' : 'holiday'}` }, t(d.workday ? 'cal.workday' : 'cal.holiday'))),
          h('td', {}, d.name || ''),
          h('td', {}, h('button', { type: 'button', class: 'small', testid: 'calendar-delete', onclick: async () => {
            const r = await call(`/calendar/days/${d.date}`, { method: 'DELETE' });
            if (!r.ok) return toast(new ApiError(r).message, 'error');
            calendar(body, year);
          } }, t('remove'))))))))));
}

// twelve small months: holidays red, swapped working days blue, weekends grey; a click on a day
// puts it in the form above, proposing the other state
function yearView(year, days, pick) {
  const special = new Map(days.map((d) => [d.date, d]));
  const p = (n) => String(n).padStart(2, '0');
  return Array.from({ length: 12 }, (_, m) => {
    const first = new Date(year, m, 1);
    const n = new Date(year, m + 1, 0).getDate();
    const cells = [];
    for (let i = 0; i < (first.getDay() + 6) % 7; i++) cells.push(h('span', {}));
    for (let d = 1; d <= n; d++) {
      const iso = `${year}-${p(m + 1)}-${p(d)}`;
      const s = special.get(iso);
      const wd = (new Date(year, m, d).getDay() + 6) % 7;
      const off = s ? !s.workday : wd >= 5;
      cells.push(h('span', { class: s ? (s.workday ? 'swap' : 'off') : wd >= 5 ? 'we' : '', title: s ? `${iso} ${s.name || ''}` : iso,
        role: 'button', tabindex: '-1', dataset: { date: iso }, onclick: () => pick(iso, off) }, String(d)));
    }
    return h('div', { class: 'month' }, h('b', {}, t('cal.month', { m: m + 1 })), h('div', { class: 'days' }, cells));
  });
}

// ------------------------------------------------------------------ grid import

async function grids(body) {
  const file = h('input', { type: 'file', accept: '.geojson,.json,.gpkg,.zip', testid: 'grids-file' });
  const codeField = input('code_field', 'code');
  const nameField = input('name_field', 'name');
  const result = h('div', { class: 'import-result', testid: 'grids-result' });
  const run = async (dryRun) => {
    if (!file.files.length) { toast(t('form.required', { field: t('grids.file') }), 'error'); return; }
    const form = new FormData();
    form.append('file', file.files[0], file.files[0].name);
    form.append('code_field', codeField.value.trim() || 'code');
    form.append('name_field', nameField.value.trim() || 'name');
    form.append('dry_run', dryRun ? 'true' : 'false');
    result.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    const res = await call('/grids/import', { method: 'POST', form, timeout: 300000 });
    if (!res.ok) { result.replaceChildren(h('p', { class: 'error' }, new ApiError(res).message)); return; }
    showResult(res.data, dryRun);
  };
  const preview = h('button', { type: 'button', testid: 'grids-preview', onclick: () => run(true) }, t('grids.preview'));
  const doImport = h('button', { type: 'button', class: 'primary', testid: 'grids-import', disabled: true, onclick: async () => {
    if (await confirmDialog(t('grids.confirm'), t('grids.import'))) run(false);
  } }, t('grids.import'));
  file.addEventListener('change', () => { doImport.disabled = true; result.replaceChildren(); });
  function showResult(r, dryRun) {
    const accepted = r.accepted || [];
    doImport.disabled = !dryRun || !accepted.length;
    result.replaceChildren(
      h('p', { testid: 'grids-summary', class: dryRun ? 'notice' : 'ok' }, t(dryRun ? 'grids.previewSummary' : 'grids.doneSummary',
        { a: accepted.length || r.created + r.updated, c: r.created, u: r.updated, r: r.rejected.length })),
      h('div', { class: 'two' },
        h('section', { class: 'panel' }, h('h3', {}, t('grids.rejected', { n: r.rejected.length })),
          r.rejected.length ? h('table', { class: 'data small', testid: 'grids-rejected' },
            h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, t('grids.code')), h('th', {}, t('grids.reason')))),
            h('tbody', {}, r.rejected.map((x) => h('tr', { testid: 'grids-rejected-row' }, h('td', {}, String(x.index)), h('td', { class: 'mono' }, x.code || '—'), h('td', { text: x.reason })))))
            : h('p', { class: 'muted' }, t('grids.noneRejected'))),
        h('section', { class: 'panel' }, h('h3', {}, t('grids.accepted', { n: accepted.length })),
          accepted.length ? h('table', { class: 'data small', testid: 'grids-accepted' },
            h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, t('grids.code')), h('th', {}, t('grids.name')))),
            h('tbody', {}, accepted.slice(0, 500).map((x) => h('tr', { testid: 'grids-accepted-row' }, h('td', {}, String(x.index)), h('td', { class: 'mono' }, x.code || ''), h('td', { text: x.name || '' })))))
            : h('p', { class: 'muted' }, '—'),
          accepted.length > 500 ? h('p', { class: 'muted small' }, t('grids.more', { n: accepted.length - 500 })) : null)));
  }
  body.replaceChildren(h('h2', {}, t('admin.grids')), h('p', { class: 'muted' }, t('grids.hint')),
    h('div', { class: 'toolbar' }, field(t('grids.file'), file), field(t('grids.codeField'), codeField), field(t('grids.nameField'), nameField), preview, doImport),
    result);
}

// ------------------------------------------------------------------ Open311 keys

async function open311(body) {
  const name = h('input', { type: 'text', testid: 'open311-name', placeholder: t('keys.name'), maxlength: 100 });
  const table = h('div', { class: 'table-wrap' });
  const create = h('button', { type: 'button', class: 'primary', testid: 'open311-create', onclick: async () => {
    if (!name.value.trim()) return toast(t('form.required', { field: t('keys.name') }), 'error');
    try {
      const res = await send('POST', '/open311/keys', { name: name.value.trim() });
      name.value = '';
      const secret = h('input', { type: 'text', readonly: true, value: res.data.api_key, testid: 'open311-secret', class: 'mono wide' });
      dialog({ title: t('keys.created'), testid: 'open311-created', body: h('div', { class: 'form' }, h('p', {}, t('keys.once')), secret),
        actions: [{ label: t('keys.copy'), onClick: async () => { secret.select(); try { await navigator.clipboard.writeText(secret.value); } catch { document.execCommand('copy'); } return false; } },
          { label: t('close'), primary: true }] });
      secret.select();
      await reload();
    } catch (err) { toast(err.message, 'error', 8000); }
  } }, t('keys.create'));
  body.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, t('admin.open311')), name, create), h('p', { class: 'muted small' }, t('keys.hint')), table);
  async function reload() {
    const data = await get('/open311/keys');
    table.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['name', 'scope', 'created_at', 'state', ''].map((k) => h('th', {}, k ? t(`keys.${k}`) : '')))),
      h('tbody', {}, data.items.map((k) => h('tr', { testid: 'open311-key', dataset: { keyId: String(k.id) }, class: k.revoked_at ? 'inactive' : '' },
        h('td', {}, k.name), h('td', { class: 'small' }, (k.scope || []).map(areaLabel).join('、')), h('td', {}, fmtDateTime(k.created_at)),
        h('td', {}, k.revoked_at ? t('keys.revoked', { at: fmtDateTime(k.revoked_at) }) : t('admin.active')),
        h('td', {}, k.revoked_at ? null : h('button', { type: 'button', class: 'small danger', testid: 'open311-revoke', onclick: async () => {
          if (!(await confirmDialog(t('keys.revokeConfirm', { name: k.name }), t('keys.revoke')))) return;
          const r = await call(`/open311/keys/${k.id}`, { method: 'DELETE' });
          if (!r.ok) return toast(new ApiError(r).message, 'error');
          reload();
        } }, t('keys.revoke'))))))));
  }
  await reload();
}

// ------------------------------------------------------------------ outgoing webhooks

const EVENT_TYPES = ['case.created', 'case.registered', 'case.rejected', 'case.merged', 'case.dispatched', 'case.accepted',
  'case.returned', 'case.handled', 'case.closed', 'case.reworked', 'case.suspended', 'case.resumed', 'case.escalated',
  'case.extension_requested', 'case.extension_decided'];

async function webhooks(body) {
  const url = h('input', { type: 'url', testid: 'webhook-url', placeholder: 'https://…', class: 'wide', maxlength: 2000 });
  const description = h('input', { type: 'text', testid: 'webhook-description', placeholder: t('hooks.description'), maxlength: 200 });
  const events = checks('webhook-events', EVENT_TYPES, []);
  const table = h('div', { class: 'table-wrap' });
  const detail = h('div', { testid: 'webhook-deliveries' });
  const create = h('button', { type: 'button', class: 'primary', testid: 'webhook-create', onclick: async () => {
    if (!url.value.trim()) return toast(t('form.required', { field: 'URL' }), 'error');
    try {
      const res = await send('POST', '/webhooks', { url: url.value.trim(), description: description.value.trim(), events: checked(events) });
      url.value = ''; description.value = '';
      const secret = h('input', { type: 'text', readonly: true, value: res.data.secret, testid: 'webhook-secret', class: 'mono wide' });
      dialog({ title: t('hooks.created'), testid: 'webhook-created', body: h('div', { class: 'form' }, h('p', {}, t('hooks.once')), secret),
        actions: [{ label: t('close'), primary: true }] });
      secret.select();
      await reload();
    } catch (err) { toast(err.message, 'error', 8000); }
  } }, t('hooks.create'));
  body.replaceChildren(h('h2', {}, t('admin.webhooks')), h('p', { class: 'muted small' }, t('hooks.hint')),
    h('div', { class: 'form' }, field('URL', url), field(t('hooks.description'), description),
      fieldset(t('hooks.events'), events), h('small', { class: 'muted' }, t('hooks.eventsHint')), h('div', { class: 'row' }, create)),
    table, detail);

  async function patch(hook, json) {
    try { await saveWith('PATCH', `/webhooks/${hook.id}`, json); await reload(); } catch (err) { toast(err.message, 'error'); }
  }
  async function showDeliveries(hook) {
    const data = await get(`/webhooks/${hook.id}/deliveries${qs({ per_page: 50 })}`);
    detail.replaceChildren(h('h3', {}, t('hooks.deliveriesOf', { url: hook.url })), h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['event', 'case', 'status', 'attempts', 'last', 'error', ''].map((k) => h('th', {}, k ? t(`hooks.d.${k}`) : '')))),
      h('tbody', {}, data.items.map((d) => h('tr', { testid: 'webhook-delivery', dataset: { status: d.status } },
        h('td', { class: 'mono small' }, d.event_type), h('td', {}, h('a', { href: `#/case/${d.case_id}` }, d.case_number || `#${d.case_id}`)),
        h('td', {}, t(`hooks.status.${d.status}`)), h('td', {}, String(d.attempts)),
        h('td', { class: 'small' }, d.last_attempt_at ? `${fmtDateTime(d.last_attempt_at)} · ${d.last_status_code ?? '—'}` : '—'),
        h('td', { class: 'small' }, d.last_error || ''),
        h('td', {}, d.status === 'failed' ? h('button', { type: 'button', class: 'small', testid: 'webhook-retry', onclick: async () => {
          try { await saveWith('POST', `/webhooks/${hook.id}/deliveries/${d.id}/retry`); await showDeliveries(hook); } catch (err) { toast(err.message, 'error'); }
        } }, t('hooks.retry')) : null))))));
  }
  async function reload() {
    const data = await get('/webhooks');
    table.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['url', 'events', 'state', 'queue', 'last', ''].map((k) => h('th', {}, k ? t(`hooks.${k}`) : '')))),
      h('tbody', {}, data.items.map((w) => {
        const d = w.deliveries;
        return h('tr', { testid: 'webhook-row', dataset: { webhookId: String(w.id) }, class: w.active ? '' : 'inactive' },
          h('td', { class: 'small' }, h('div', { class: 'mono' }, w.url), w.description ? h('div', { class: 'muted' }, w.description) : null),
          h('td', { class: 'small' }, w.events.length ? w.events.join(' ') : t('hooks.allEvents')),
          h('td', {}, w.active ? t('admin.active') : t('hooks.paused')),
          h('td', { class: 'small', testid: 'webhook-queue' }, t('hooks.counts', d)),
          h('td', { class: 'small', testid: 'webhook-last' }, d.last_attempt_at
            ? `${fmtDateTime(d.last_attempt_at)} · ${d.last_status_code ?? t('hooks.noAnswer')}${d.last_error ? ` · ${d.last_error}` : ''}` : '—'),
          h('td', {},
            h('button', { type: 'button', class: 'small', testid: 'webhook-show', onclick: () => showDeliveries(w) }, t('hooks.deliveries')),
            h('button', { type: 'button', class: 'small', testid: 'webhook-toggle', onclick: () => patch(w, { active: !w.active }) },
              w.active ? t('hooks.pause') : t('hooks.resume')),
            h('button', { type: 'button', class: 'small danger', testid: 'webhook-delete', onclick: async () => {
              if (!(await confirmDialog(t('hooks.deleteConfirm', { url: w.url }), t('hooks.delete')))) return;
              const r = await call(`/webhooks/${w.id}`, { method: 'DELETE' });
              if (!r.ok) return toast(new ApiError(r).message, 'error');
              detail.replaceChildren();
              reload();
            } }, t('hooks.delete'))));
      }))));
  }
  await reload();
}
