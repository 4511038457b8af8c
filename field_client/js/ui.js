// Small DOM helpers shared by the views.
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
  for (const c of children.flat()) if (c != null && c !== false) e.append(c.nodeType ? c : String(c));
  return e;
}

let toastTimer = null;
export function toast(text, ms = 3500) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

// An in-page confirmation (no window.confirm: it blocks the page and cannot be styled).
export function confirmBox(text, okLabel, cancelLabel) {
  const m = $('modal');
  $('modal-text').textContent = text;
  $('modal-ok').textContent = okLabel;
  $('modal-cancel').textContent = cancelLabel;
  m.hidden = false;
  return new Promise((resolve) => {
    const done = (v) => () => {
      m.hidden = true;
      $('modal-ok').onclick = $('modal-cancel').onclick = null;
      resolve(v);
    };
    $('modal-ok').onclick = done(true);
    $('modal-cancel').onclick = done(false);
  });
}

// Object URLs for photo previews, released when a view redraws.
export function previewUrls() {
  let urls = [];
  return {
    url(blob) { const u = URL.createObjectURL(blob); urls.push(u); return u; },
    release() { urls.forEach((u) => URL.revokeObjectURL(u)); urls = []; },
  };
}
