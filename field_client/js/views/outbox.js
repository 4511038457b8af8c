// The outbox as the person sees it: every item with its state, the server's message when it
// needs attention, and "send now".
import { catName, t } from '../i18n.js';
import * as outbox from '../outbox.js';
import { on, state } from '../state.js';
import { $, confirmBox, h } from '../ui.js';

export function init() {
  $('outbox-send-now').addEventListener('click', () => { outbox.flush({ force: true }); });
  outbox.onChange(() => { if (!$('view-outbox').hidden) render(); });
  on('lang', () => { if (!$('view-outbox').hidden) render(); });
}

export function show() { render(); storage(); }

function label(it, byId) {
  const p = it.payload;
  switch (it.kind) {
    case 'report': {
      const cat = p.category ? `${p.category.code} ${catName(p.category)}` : p.body.category_code;
      const no = it.response ? ` · ${it.response.number}` : '';
      return `${t('kind.report')}: ${cat}${p.grid_code ? ` · ${p.grid_code}` : ''}${no}`;
    }
    case 'photo': {
      const rep = p.report_id && byId.get(p.report_id);
      const of = p.of ? ` ${p.n}/${p.of}` : '';
      const target = p.number || (rep && rep.response && rep.response.number) || '';
      return `${t('kind.photo')}${of}${target ? ` · ${target}` : ''}`;
    }
    case 'action': return `${t(`action.${p.action}`)} · ${p.number || p.case_id}`;
    case 'patrol_start': return t('kind.patrol_start');
    case 'patrol_points': return `${t('kind.patrol_points')} #${p.seq + 1} (${p.points.length})`;
    case 'patrol_end': return t('kind.patrol_end');
    default: return it.kind;
  }
}

async function render() {
  const items = (await outbox.list()).reverse();
  const byId = new Map(items.map((it) => [it.id, it]));
  const unsent = items.filter((it) => outbox.UNSENT.has(it.status)).length;
  $('outbox-summary').textContent = unsent ? t('outbox.summary', { n: unsent }) : t('outbox.empty');
  $('outbox-list').replaceChildren(...items.map((it) => {
    const waiting = it.status === 'queued' && it.depends_on.some((d) => byId.get(d) && byId.get(d).status !== 'sent');
    const when = it.status === 'queued' && it.next_try > Date.now() && !waiting
      ? ` · ${t('outbox.retryAt', { time: new Date(it.next_try).toLocaleTimeString() })}` : '';
    return h('li', { class: `outbox-item ${it.status}`, testid: 'outbox-item', dataset: { status: it.status, kind: it.kind, id: it.id, conflict: String(!!it.conflict) } },
      h('div', { class: 'row' }, h('span', { text: label(it, byId) }), h('span', { class: `badge ${it.status}`, testid: 'outbox-item-status', text: t(`ostatus.${it.status}`) })),
      h('div', { class: 'muted', text: `${new Date(it.created_at).toLocaleString()}${it.attempts ? ` · ${t('outbox.attempts', { n: it.attempts })}` : ''}${waiting ? ` · ${t('outbox.waiting')}` : ''}${when}` }),
      it.message ? h('div', { class: it.status === 'needs_attention' ? 'error' : 'muted', testid: 'outbox-item-message', text: it.message }) : null,
      it.status === 'needs_attention' ? h('div', { class: 'actions' },
        h('button', { type: 'button', testid: 'outbox-retry', text: t('outbox.retry'), onclick: () => outbox.retry(it.id) }),
        h('button', { type: 'button', class: 'danger', testid: 'outbox-discard', text: t('outbox.discard'), onclick: () => discard(it.id) })) : null);
  }));
}

async function discard(id) {
  const items = await outbox.list();
  const ids = outbox.withDependents(items, id).filter((x) => outbox.UNSENT.has(items.find((it) => it.id === x)?.status));
  if (!(await confirmBox(t('outbox.discardConfirm', { n: ids.length }), t('outbox.discard'), t('cancel')))) return;
  await outbox.remove(ids);
}

async function storage() {
  if (!navigator.storage?.estimate) return;
  const { usage = 0, quota = 0 } = await navigator.storage.estimate();
  const persisted = navigator.storage.persisted ? await navigator.storage.persisted() : false;
  const full = quota && usage / quota > 0.9;
  const el = $('storage-status');
  el.textContent = `${t('storage.used', { mb: (usage / 1048576).toFixed(1), total: (quota / 1048576).toFixed(0) })}${persisted ? ` · ${t('storage.persisted')}` : ''}${full ? ` · ${t('storage.nearlyFull')}` : ''}`;
  el.classList.toggle('error', !!full);
}
