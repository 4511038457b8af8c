// DOM helpers shared by the views. All user text goes in through textContent (h's children and
// `text`), never as HTML: a description holding <script> is shown as text.
import { t, lang } from './i18n.js';

export const $ = (id) => document.getElementById(id);

export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'testid') e.dataset.testid = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (typeof v === 'boolean' || k === 'value') e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c.nodeType ? c : String(c));
  return e;
}

const NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) e.append(c.nodeType ? c : String(c));
  return e;
}

export function option(value, label, selected = false) {
  const o = h('option', { value: String(value) }, label);
  if (selected) o.selected = true;
  return o;
}

let toastTimer = null;
export function toast(text, kind = 'info', ms = 4000) {
  const el = $('toast');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

// A modal dialog (<dialog>: focus stays inside, Esc closes). `body` is a node; each action
// {label, testid, primary, danger, onClick} may return false (or a promise of false) to stay open.
export function dialog({ title, body, actions = [], testid, wide = false, onClose }) {
  const msg = h('p', { class: 'error', testid: 'dialog-error', hidden: true });
  const buttons = actions.map((a) => h('button', {
    type: a.submit ? 'submit' : 'button', class: a.primary ? 'primary' : a.danger ? 'danger' : '', testid: a.testid,
  }, a.label));
  const form = h('form', { method: 'dialog', class: 'dialog-form', novalidate: true },
    h('header', {}, h('h2', { text: title }),
      h('button', { type: 'button', class: 'icon close', 'aria-label': t('close'), onclick: () => close() }, '×')),
    h('div', { class: 'dialog-body' }, body), msg, h('footer', {}, buttons));
  const el = h('dialog', { class: wide ? 'wide' : '', testid }, form);
  document.body.append(el);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (el.open) el.close();
    el.remove();
    if (onClose) onClose();
  };
  el.addEventListener('close', close);
  el.addEventListener('cancel', () => close());
  actions.forEach((a, i) => {
    const run = async (e) => {
      e.preventDefault();
      if (!a.onClick) return close();
      msg.hidden = true;
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const keep = await a.onClick();
        if (keep !== false) close();
      } catch (err) {
        msg.textContent = err.message || String(err);
        msg.hidden = false;
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    };
    buttons[i].addEventListener('click', run);
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const primary = actions.findIndex((a) => a.primary);
    if (primary >= 0) buttons[primary].click();
  });
  el.showModal();
  return { el, close, error(text) { msg.textContent = text; msg.hidden = false; } };
}

export function confirmDialog(text, okLabel) {
  return new Promise((resolve) => {
    let answer = false;
    dialog({
      title: t('confirm.title'), body: h('p', { text }), testid: 'confirm-dialog',
      actions: [{ label: t('cancel') }, { label: okLabel || t('ok'), primary: true, testid: 'confirm-ok', onClick: () => { answer = true; } }],
      onClose: () => resolve(answer),
    });
  });
}

// ------------------------------------------------------------------ formats

const locale = () => (lang === 'en' ? 'en-GB' : 'zh-CN');

export function fmtDateTime(iso, { seconds = false } = {}) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(locale(), { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: seconds ? '2-digit' : undefined, hour12: false });
}

export function fmtDate(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleDateString(locale(), { year: 'numeric', month: '2-digit', day: '2-digit' });
}

// A duration in words: 2天3小时, 3小时12分, 5分 (or 2d 3h …).
export function fmtDuration(ms) {
  const neg = ms < 0;
  let m = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(m / 1440); m -= d * 1440;
  const hh = Math.floor(m / 60); m -= hh * 60;
  const parts = d ? [t('dur.d', { n: d }), t('dur.h', { n: hh })] : hh ? [t('dur.h', { n: hh }), t('dur.m', { n: m })] : [t('dur.m', { n: m })];
  return (neg ? '-' : '') + parts.join(lang === 'en' ? ' ' : '');
}

export const fmtAge = (iso, now = Date.now()) => (iso ? fmtDuration(now - new Date(iso).getTime()) : '—');

export function fmtPct(v) {
  if (v == null) return '—';
  return `${(v * 100).toFixed(1)}%`;
}

export function fmtNum(v, digits = 0) {
  if (v == null) return '—';
  return Number(v).toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// <input type=date> value (local) ↔ ISO with the local offset
export function dateInputValue(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
export function isoFromDateInput(value, endOfDay = false) {
  if (!value) return null;
  const [y, m, d] = value.split('-').map(Number);
  const date = new Date(y, m - 1, d + (endOfDay ? 1 : 0));
  return isoLocal(date);
}
export function isoLocal(date) {
  const p = (n) => String(Math.abs(n)).padStart(2, '0');
  const off = -date.getTimezoneOffset();
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`
    + `${off >= 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A uuid for Idempotency-Key
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // outside a secure context: the same version-4 layout from getRandomValues
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// A loading / error / empty line inside a container
export function statusLine(el, key, vars, kind = 'muted') {
  el.replaceChildren(h('p', { class: kind, testid: 'status-line', text: t(key, vars) }));
}
