"""Exactly-once writes from the field.

The key is claimed before anything else in the request's transaction, by a lock on (caller, key)
that the transaction holds to its end, and its row is inserted with the answer at the end, so it
commits together with what it created. A second request with the same key waits on that lock: when
the first commits it gets the same answer; when the first is still running after a short wait, 409;
when the first failed, it runs as if first. The row is written once (no dead row per write for
autovacuum to clear: migration 0024). The answer is kept as the JSON text that was sent, so a replay
is the same bytes (JSONB would reorder the keys). Keys are kept IDEMPOTENCY_KEEP_DAYS (the contract
says at least 7) and then purged (`purge()`, `gridpatrol purge-keys`): a repeat after that is a new write.
"""
import hashlib
import json

from flask import Response, current_app, request
from psycopg.errors import LockNotAvailable
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from .errors import BadRequest, Conflict, Invalid
from ..extensions import db

HEADER = "Idempotency-Key"
# a 409 that only asks to wait: clients tell it from "not allowed now" by the Retry-After header
IN_FLIGHT = {"Retry-After": "1"}


def _in_flight() -> Conflict:
    return Conflict(f"A request with this {HEADER} is still in flight; retry shortly", headers=IN_FLIGHT)


def request_key() -> str:
    key = request.headers.get(HEADER, "")
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise BadRequest(f"Send an {HEADER} header of 1 to 255 printable characters (a UUID made by the client)",
                         {HEADER: ["required: 1 to 255 printable characters"]})
    return key


def fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


# The claim (migration 0024): the lock on (caller, key), waited for at most `wait` (lock_timeout for that
# wait only), then the key's row as committed by then: none for a new key (the common case), the answer
# of a request that committed before, or while we waited.
_CLAIM = "SELECT scope, request_hash, status_code, response FROM idempotency_claim(%(user_id)s, %(key)s, %(wait)s)"
# the key's row, once, with its answer. Under the claim's lock no request of this version writes the
# same key; a server of the version before (which claimed by inserting the row), during an upgrade, may
# have: nothing is written over it, and the request is refused, to be replayed when sent again
_ANSWER = """
INSERT INTO idempotency_keys (user_id, key, scope, request_hash, status_code, response)
VALUES (%(user_id)s, %(key)s, %(scope)s, %(request_hash)s, %(status_code)s, %(response)s::jsonb)
ON CONFLICT DO NOTHING RETURNING 1
"""


def _replay(stored, scope: str, request_hash: str):
    if stored.scope != scope or stored.request_hash != request_hash:
        raise Invalid(f"This {HEADER} was used with another request; make a new key for a new item",
                      {HEADER: ["reused with a different body"]})
    if stored.status_code is None:
        raise _in_flight()
    return stored.response["text"], stored.status_code, stored.response.get("headers", {})


def once(user_id: int, key: str, scope: str, request_hash: str, produce):
    """Run `produce() -> (body, status, headers)` once per (user, key); replay its answer after.

    Returns (the body as JSON text, status, headers) for `respond()`. Two statements when the key
    is new: the claim and the row with its answer."""
    conn = db.session.connection()
    params = {"user_id": user_id, "key": key}
    try:
        stored = conn.exec_driver_sql(_CLAIM, {**params, "wait": str(int(current_app.config["IDEMPOTENCY_WAIT_MS"]))}
                                      ).first()
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            raise _in_flight()
        raise
    if stored is not None:  # the key's request committed before, or while we waited
        return _replay(stored, scope, request_hash)
    body, status, headers = produce()
    body_text = json.dumps(body, ensure_ascii=False)
    kept = conn.exec_driver_sql(_ANSWER, {**params, "scope": scope, "request_hash": request_hash,
                                          "status_code": status,
                                          "response": json.dumps({"text": body_text, "headers": headers})}).first()
    if kept is None:
        raise _in_flight()
    return body_text, status, headers


def respond(answer) -> Response:
    """The (body text, status, headers) of `once()` as a response, the same bytes first time and replayed."""
    body_text, status, headers = answer
    return current_app.response_class(body_text, status=status, headers=headers, mimetype="application/json")


# KEEP_MIN_DAYS: api-contract.md, "Keys are kept at least 7 days"
KEEP_MIN_DAYS = 7
# a batch of the oldest keys past their keeping (from the index of migration 0025), deleted by their row
# addresses: each batch its own short transaction, so the purge holds no lock for long and a key's answer
# can be replayed until the moment its row goes
_PURGE = text("""
DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(days => :days)
  ORDER BY created_at LIMIT :batch))
""")


def keeping_refused(keep_days: int) -> str | None:
    """Why a keeping of `keep_days` days may not be used (shorter than the contract's), or None."""
    if keep_days < KEEP_MIN_DAYS:
        return f"keys are kept at least {KEEP_MIN_DAYS} days (the API's contract)"
    return None


def purge(keep_days: int, batch: int = 10_000) -> int:
    """Delete the keys older than `keep_days` days, `batch` a transaction; the keys deleted."""
    if why := keeping_refused(keep_days):
        raise ValueError(f"{keep_days}: {why}")
    deleted = 0
    while True:
        n = db.session.execute(_PURGE, {"days": keep_days, "batch": batch}).rowcount
        db.session.commit()
        deleted += n
        if n < batch:
            return deleted
