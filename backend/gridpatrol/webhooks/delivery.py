"""The delivery worker: sends the outbox's due deliveries, oldest first and in order per case.

Delivery is at least once. A row is locked while its POST is in flight and marked delivered in
the same transaction after a 2xx answer; if the worker dies in between, the row stays pending and
is sent again with the same delivery id, body and signature, so a receiver de-duplicates on
`X-GridPatrol-Delivery`. Within one webhook, an event of a case is not sent before the case's
earlier events are delivered (or given up), so every receiver sees a case's events in order.
Several workers may run at once, on one machine or many: rows are claimed with SKIP LOCKED.
"""
import hashlib
import hmac
import http.client
import ipaddress
import logging
import random
import socket
import threading
import urllib.parse
from datetime import timedelta

import psycopg
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ..extensions import db

log = logging.getLogger(__name__)

CHANNEL = "webhook_deliveries"

_PICK = text("""
SELECT d.id, d.uid, d.event_type, d.body::text AS body, d.attempts, w.url, w.secret
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id AND w.active
WHERE d.status = 'pending' AND d.next_attempt_at <= now()
  AND (CAST(:webhook AS integer) IS NULL OR d.webhook_id = :webhook)
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                  WHERE e.webhook_id = d.webhook_id AND e.case_id = d.case_id AND e.status = 'pending'
                    AND e.event_id < d.event_id)
ORDER BY d.next_attempt_at, d.id
LIMIT 1
FOR UPDATE OF d SKIP LOCKED
""")

_DONE = text("""
UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = now(),
  delivered_at = now(), last_status_code = :code, last_error = NULL
WHERE id = :id
""")

_FAILED = text("""
UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(), last_status_code = :code,
  last_error = :error, status = CASE WHEN attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END,
  next_attempt_at = now() + :delay
WHERE id = :id
""")


def setting(name: str):
    """A delivery setting (WEBHOOK_…), from the app's config: config.py holds the defaults and reads
    the environment."""
    return current_app.config[name]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failures: doubling, capped, with ±20% jitter."""
    base = min(setting("WEBHOOK_RETRY_BASE_S") * 2 ** (attempts - 1), setting("WEBHOOK_RETRY_MAX_S"))
    return base * random.uniform(0.8, 1.2)


def refused_address(url: str) -> str | None:
    """Why the URL's host may not be sent to, or None: a host that resolves to a loopback, private,
    link-local or otherwise internal address is refused (the worker runs inside the city's network;
    it must not be a way to reach it), unless WEBHOOK_ALLOW_PRIVATE is set."""
    if setting("WEBHOOK_ALLOW_PRIVATE"):
        return None
    parts = urllib.parse.urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as e:
        return f"cannot resolve {parts.hostname}: {e}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"{parts.hostname} resolves to an internal address ({address}); refused"
    return None


def post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status, error): status None when no answer came back. The whole exchange is bounded
    by `timeout` (a receiver trickling bytes does not hold a sender); a 3xx is an answer, not
    followed."""
    refused = refused_address(url)
    if refused:
        return None, refused
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    fired = threading.Event()
    watchdog = threading.Timer(timeout, _cut, (conn, fired))
    watchdog.start()
    try:
        target = parts.path or "/"
        conn.request("POST", target + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers={**headers, "Content-Length": str(len(body)), "Connection": "close"})
        answer = conn.getresponse()
        answer.read(65536)
        if 200 <= answer.status < 300:
            return answer.status, None
        return answer.status, f"HTTP {answer.status} {answer.reason}"[:500]
    except (OSError, ValueError, http.client.HTTPException) as e:
        if fired.is_set():  # the watchdog's cut, whatever the read made of it
            return None, f"no complete answer within {timeout:g} s"
        return None, (str(e) or type(e).__name__)[:500]
    finally:
        watchdog.cancel()
        conn.close()


def _cut(conn, fired: threading.Event) -> None:
    """The watchdog: the exchange took too long, its socket is closed under it. `fired` is set first:
    the timer's thread is still alive while it cuts, so the sender cannot ask it whether it did."""
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def deliver_next(webhook_id: int | None = None) -> bool:
    """Send the next due delivery (of one webhook, or any), if any; True when one was attempted."""
    row = db.session.execute(_PICK, {"webhook": webhook_id}).mappings().first()
    if row is None:
        db.session.rollback()
        return False
    body = row["body"].encode()
    code, error = post(row["url"], body, {
        "Content-Type": "application/json", "User-Agent": "GridPatrol-Webhooks/1",
        "X-GridPatrol-Event": row["event_type"], "X-GridPatrol-Delivery": str(row["uid"]),
        "X-GridPatrol-Signature": signature(row["secret"], body),
    }, setting("WEBHOOK_TIMEOUT_S"))
    if code is not None and 200 <= code < 300:
        db.session.execute(_DONE, {"id": row["id"], "code": code})
    else:
        db.session.execute(_FAILED, {"id": row["id"], "code": code, "error": error,
                                     "max_attempts": setting("WEBHOOK_MAX_ATTEMPTS"),
                                     "delay": timedelta(seconds=backoff(row["attempts"] + 1))})
    db.session.commit()
    return True


def deliver_all(webhook_id: int | None = None) -> int:
    """Send every delivery that is due now (one pass); how many were attempted."""
    n = 0
    while deliver_next(webhook_id):
        n += 1
    return n


def run(app, stop: threading.Event, threads: int = 2, poll: float = 1.0) -> None:
    """Deliver until `stop` is set: `threads` senders, woken by NOTIFY from the outbox trigger or
    every `poll` seconds (for retries that come due)."""
    wake = threading.Event()

    def sender():
        with app.app_context():
            while not stop.is_set():
                try:
                    if deliver_next():
                        continue
                except DBAPIError as e:  # the database is away: wait and try again
                    log.warning("webhook delivery: %s", e.orig or e)
                    _reset_session()
                except Exception:  # anything else: said in the log, and the sender goes on
                    log.exception("webhook delivery failed")
                    _reset_session()
                wake.wait(poll)
                wake.clear()

    workers = [threading.Thread(target=sender, name=f"webhook-sender-{i}", daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    for _ in conn.notifies(timeout=poll, stop_after=1):
                        wake.set()
        except psycopg.Error as e:
            log.warning("webhook listener: %s", e)
            stop.wait(poll)
    wake.set()
    for w in workers:
        w.join(timeout=setting_in(app, "WEBHOOK_TIMEOUT_S") + 5)


def _reset_session() -> None:
    try:
        db.session.rollback()
    finally:
        db.session.remove()


def setting_in(app, name: str):
    with app.app_context():
        return setting(name)
