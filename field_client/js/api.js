// The HTTP API v1: bearer token, JSON or multipart, problem+json errors. A network failure,
// a timeout or a body cut short throws NetError; every HTTP answer is returned, never thrown.
export class NetError extends Error {}

let token = null;
let unauthorized = () => {};
export function setToken(t) { token = t; }
export function onUnauthorized(fn) { unauthorized = fn; }

export async function call(path, { method = 'GET', json, form, headers = {}, timeout = 30000, auth = true } = {}) {
  const h = new Headers(headers);
  if (auth && token) h.set('Authorization', `Bearer ${token}`);
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
      res = await fetch(`/api/v1${path}`, { method, headers: h, body, signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new NetError(e.name === 'AbortError' ? 'timeout' : e.message);
    }
    let data = null;
    try {
      const type = res.headers.get('content-type') || '';
      if (res.status !== 204) data = type.includes('json') ? await res.json() : await res.text();
    } catch (e) {
      // the answer was cut short: for a write we cannot know whether it happened
      throw new NetError(e.message);
    }
    if (res.status === 401 && auth && token) unauthorized();
    return { status: res.status, ok: res.ok, data, headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
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
