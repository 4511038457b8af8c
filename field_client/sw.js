// The app shell, cached by version. The server writes the version (a hash of the shell's files)
// and the file list into MANIFEST when it serves this file, so any change to the client makes a
// new worker: it caches the new shell beside the old one, takes over, and deletes the old cache.
// It never touches IndexedDB (the outbox) and never answers /api/ requests (they go to the network).
const MANIFEST = /*MANIFEST*/{ "version": "dev", "files": ["./", "index.html", "app.css", "manifest.webmanifest", "icon.svg"] }/*END*/;
const PREFIX = 'gridpatrol-shell-';
const CACHE = PREFIX + MANIFEST.version;
const BASE = new URL('./', self.location).pathname;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(MANIFEST.files.map((f) => new Request(f, { cache: 'reload' })));
    await cache.add(new Request('config.json', { cache: 'reload' })).catch(() => {});
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith(BASE)) return;
  if (url.pathname === `${BASE}config.json`) {
    event.respondWith(fetch(req).then((res) => {
      if (res.ok) caches.open(CACHE).then((c) => c.put(req, res.clone()));
      return res;
    }).catch(() => caches.match(req, { cacheName: CACHE }).then((r) => r || Response.error())));
    return;
  }
  if (req.mode === 'navigate') {
    event.respondWith(caches.match(`${BASE}index.html`, { cacheName: CACHE }).then((r) => r || fetch(req)));
    return;
  }
  event.respondWith(caches.match(req, { cacheName: CACHE, ignoreSearch: true }).then((r) => r || fetch(req)));
});
