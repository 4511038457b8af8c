// The HTTP API v1 for the console: a bearer token kept in sessionStorage (no cookie, so no CSRF
// surface; the token dies with the tab), JSON or multipart, problem+json errors.
// Adapted from the field client's js/api.js (no offline queue here: a desk is online).
const TOKEN_KEY = 'gridpatrol.console.token';

export class NetError extends Error {}
export class ApiError extends Error {
  constructor(res) {
    super(problemText(res));
    this.status = res.status;
    this.res = res;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY);
let unauthorized = () => {};
export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}
export const getToken = () => token;
export function onUnauthorized(fn) { unauthorized = fn; }

function authHeaders(headers = {}) {
  const h = new Headers(headers);
  if (token) h.set('Authorization', `Bearer ${token}`);
  return h;
}

// Every HTTP answer is returned ({status, ok, data, headers}); a network failure throws NetError.
export async function call(path, { method = 'GET', json, form, headers = {}, timeout = 30000, auth = true, as } = {}) {
  const h = auth ? authHeaders(headers) : new Headers(headers);
  let body;
  if (json !== undefined) {
    h.set('Content-Type', 'application/json');
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  try {
    let res;
    try {
      res = await fetch(/^\/(api|console|field)\//.test(path) ? path : `/api/v1${path}`, { method, headers: h, body, signal: ctl.signal, cache: 'no-cache', credentials: 'omit' });
    } catch (e) {
      throw new NetError(e.name === 'AbortError' ? 'timeout' : e.message);
    }
    let data = null;
    try {
      const type = res.headers.get('content-type') || '';
      if (res.status === 204 || res.status === 304) data = null;
      else if (!res.ok) data = type.includes('json') ? await res.json() : await res.text();
      else if (as === 'blob') data = await res.blob();
      else if (as === 'buffer') data = await res.arrayBuffer();
      else if (as === 'text' || !type.includes('json')) data = await res.text();
      else data = await res.json();
    } catch (e) {
      throw new NetError(e.message);
    }
    if (res.status === 401 && auth && token) unauthorized();
    return { status: res.status, ok: res.ok, data, headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
}

// The data of a successful answer, or an ApiError.
export async function get(path, opts = {}) {
  const res = await call(path, opts);
  if (!res.ok) throw new ApiError(res);
  return res.data;
}

export async function send(method, path, json, opts = {}) {
  const res = await call(path, { ...opts, method, json });
  if (!res.ok) throw new ApiError(res);
  return res;
}

// A query string from an object: arrays comma-joined, empty values left out.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v == null || v === '' || (Array.isArray(v) && !v.length)) continue;
    u.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// The server's message in one line: detail, then each field's messages.
export function problemText(res) {
  const d = res && res.data;
  if (!d || typeof d !== 'object') return `HTTP ${res ? res.status : '?'}`;
  const parts = [d.detail || d.title || `HTTP ${res.status}`];
  if (d.errors && typeof d.errors === 'object') {
    for (const [field, msgs] of Object.entries(d.errors)) {
      const text = `${field}: ${[].concat(msgs).join(', ')}`;
      if (!parts[0].includes(text)) parts.push(text);
    }
  }
  return parts.join(' · ');
}

// A file from the API saved by the browser (the bearer header rules out a plain link).
export async function download(path, { accept, filename } = {}) {
  const res = await call(path, { headers: accept ? { Accept: accept } : {}, as: 'blob', timeout: 120000 });
  if (!res.ok) throw new ApiError(res);
  const cd = res.headers.get('content-disposition') || '';
  const name = filename || (/filename="?([^";]+)"?/.exec(cd) || [])[1] || 'download';
  const url = URL.createObjectURL(res.data);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}
