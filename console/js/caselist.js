// The table of cases shared by the dispatcher's queue and the case search / KPI drill-down:
// one row per case (data-testid="queue-item", data-case-id), with category, grid, age and the
// timer colour of the running stage. Rows are reachable by keyboard (roving tabindex).
import { t } from './i18n.js';
import { catLabel, gridName, gridShort, loadGridNames, teamName } from './store.js';
import { fmtAge, fmtDateTime, fmtDuration, h } from './ui.js';

export const OPEN = ['reported', 'registered', 'dispatched', 'in_progress', 'handled', 'returned', 'suspended'];
export const CLOSED = ['closed', 'rejected', 'merged'];
export const STATES = [...OPEN, ...CLOSED];

export function timerDot(c) {
  const colour = c.timer || 'none';
  return h('span', { class: `timer timer-${colour}`, dataset: { timer: colour }, title: t(`timer.${colour}`), 'aria-label': t(`timer.${colour}`) });
}

export function statusChip(status) {
  return h('span', { class: `chip status-${status}`, testid: 'case-status', dataset: { status } }, t(`status.${status}`));
}

// "剩余 2小时10分" / "超时 35分" for the running stage
export function deadlineText(c, now = Date.now()) {
  if (!c.stage_deadline || !OPEN.includes(c.status) || c.status === 'suspended') return '';
  const left = new Date(c.stage_deadline).getTime() - now;
  return left >= 0 ? t('deadline.left', { d: fmtDuration(left) }) : t('deadline.over', { d: fmtDuration(-left) });
}

export function badges(c) {
  const out = [];
  if (c.escalation_level > 0) out.push(h('span', { class: 'badge esc', title: c.escalation_note || '' }, t('badge.escalated', { n: c.escalation_level })));
  if (c.pending_extension) out.push(h('span', { class: 'badge ext' }, t('badge.extension', { n: c.pending_extension.hours })));
  if (c.rework_count > 0) out.push(h('span', { class: 'badge rework' }, t('badge.rework', { n: c.rework_count })));
  for (const f of c.location_flags || []) if (f === 'outside' || f === 'snapped') out.push(h('span', { class: `badge flag-${f}` }, t(`flag.${f}`)));
  if (c.source && c.source !== 'inspector') out.push(h('span', { class: 'badge src' }, t(`source.${c.source}`)));
  return out;
}

// columns: which extra columns to show (status, team)
export function caseTable(items, { selectedId, onOpen, onSelect, showStatus = true, showTeam = true, newIds = new Set() } = {}) {
  const head = h('tr', {},
    h('th', { class: 'c-timer', 'aria-label': t('col.timer') }),
    h('th', { class: 'c-number' }, t('col.number')),
    h('th', { class: 'c-cat' }, t('col.category')),
    h('th', { class: 'c-grid' }, t('col.grid')),
    h('th', { class: 'c-age' }, t('col.age')),
    h('th', { class: 'c-deadline' }, t('col.deadline')),
    h('th', { class: 'c-urg' }, t('col.urgency')),
    showStatus && h('th', { class: 'c-status' }, t('col.status')),
    showTeam && h('th', { class: 'c-team' }, t('col.team')),
    h('th', { class: 'c-desc' }, t('col.description')));
  const now = Date.now();
  const rows = items.map((c) => {
    const grid = h('td', { class: 'c-grid', title: c.grid_code || '' }, gridShort(c.grid_code));
    const row = h('tr', {
      testid: 'queue-item', dataset: { caseId: String(c.id), timer: c.timer || 'none', status: c.status },
      tabindex: c.id === selectedId ? '0' : '-1', class: [c.id === selectedId ? 'selected' : '', newIds.has(c.id) ? 'new' : ''].join(' ').trim(),
      'aria-selected': String(c.id === selectedId),
    },
    h('td', { class: 'c-timer' }, timerDot(c)),
    h('td', { class: 'c-number mono' }, c.number),
    h('td', { class: 'c-cat' }, h('span', { class: 'code' }, c.category_code), ' ', catLabel(c.category_code)),
    grid,
    h('td', { class: 'c-age', title: fmtDateTime(c.reported_at) }, fmtAge(c.reported_at, now)),
    h('td', { class: `c-deadline timer-text-${c.timer || 'none'}` }, deadlineText(c, now)),
    h('td', { class: 'c-urg' }, h('span', { class: `urg urg-${c.urgency}` }, c.urgency)),
    showStatus && h('td', { class: 'c-status' }, statusChip(c.status)),
    showTeam && h('td', { class: 'c-team' }, c.lead_team_id ? teamName(c.lead_team_id) : '—'),
    h('td', { class: 'c-desc' }, h('span', { class: 'desc', text: c.description || '' }), ...badges(c)));
    row.addEventListener('click', () => onOpen && onOpen(c));
    row.addEventListener('focus', () => onSelect && onSelect(c, row));
    return row;
  });
  const table = h('table', { class: 'cases', testid: 'case-table', role: 'grid' }, h('thead', {}, head), h('tbody', {}, rows));
  // grid names arrive after the table is shown
  const codes = items.map((c) => c.grid_code).filter((g) => g && !gridName(g));
  if (codes.length) {
    loadGridNames(codes).then(() => {
      rows.forEach((row, i) => { row.querySelector('.c-grid').textContent = gridShort(items[i].grid_code); });
    });
  }
  return table;
}

// Arrow keys, j/k, Home/End move the selection; Enter opens. Returns the key handler.
export function rowKeys(getRows, select, open) {
  return (e) => {
    const rows = getRows();
    if (!rows.length) return false;
    const i = rows.findIndex((r) => r.classList.contains('selected'));
    const go = (j) => { const k = Math.max(0, Math.min(rows.length - 1, j)); select(rows[k]); };
    switch (e.key) {
      case 'ArrowDown': case 'j': go(i + 1); return true;
      case 'ArrowUp': case 'k': go(i - 1); return true;
      case 'Home': go(0); return true;
      case 'End': go(rows.length - 1); return true;
      case 'Enter': case 'o': if (i >= 0) open(rows[i]); return true;
      default: return false;
    }
  };
}
