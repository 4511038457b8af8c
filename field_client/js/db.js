// One IndexedDB database for the field client: the outbox and a small key/value store.
// Every user's data is keyed by the user id ("u:<id>:…" keys, `user_id` on outbox items), so
// sign-out can remove exactly that person's data. Schema changes must keep both stores: a new
// app version takes over with items still queued.
const NAME = 'gridpatrol';
const VERSION = 1;
let opening = null;

export function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const r = indexedDB.open(NAME, VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('outbox')) {
          db.createObjectStore('outbox', { keyPath: 'id' }).createIndex('user', 'user_id');
        }
        if (!db.objectStoreNames.contains('kv')) db.createObjectStore('kv');
      };
      r.onsuccess = () => {
        const db = r.result;
        db.onversionchange = () => { db.close(); opening = null; };
        resolve(db);
      };
      r.onerror = () => { opening = null; reject(r.error); };
    });
  }
  return opening;
}

export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

// Run fn(transaction) and resolve with its result once the transaction has committed.
// fn may only await IndexedDB requests (through req), or the transaction commits early.
export async function tx(stores, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(stores, mode);
    let result;
    let failed = null;
    t.oncomplete = () => (failed ? reject(failed) : resolve(result));
    t.onerror = () => reject(t.error || failed);
    t.onabort = () => reject(failed || t.error || new DOMException('aborted', 'AbortError'));
    Promise.resolve().then(() => fn(t)).then((v) => { result = v; }, (e) => {
      failed = e;
      try { t.abort(); } catch { /* already finished */ }
    });
  });
}

export const kv = {
  get: (key) => tx('kv', 'readonly', (t) => req(t.objectStore('kv').get(key))),
  set: (key, value) => tx('kv', 'readwrite', (t) => req(t.objectStore('kv').put(value, key))),
  del: (key) => tx('kv', 'readwrite', (t) => req(t.objectStore('kv').delete(key))),
};

// Remove everything a user left on this device: outbox items and their "u:<id>:" keys.
export function purgeUser(userId) {
  const prefix = `u:${userId}:`;
  return tx(['outbox', 'kv'], 'readwrite', async (t) => {
    const keys = await req(t.objectStore('outbox').index('user').getAllKeys(IDBKeyRange.only(userId)));
    for (const k of keys) t.objectStore('outbox').delete(k);
    t.objectStore('kv').delete(IDBKeyRange.bound(prefix, prefix + '\uffff'));
    return keys.length;
  });
}
