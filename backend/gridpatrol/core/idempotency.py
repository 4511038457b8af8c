"""Exactly-once writes from the field.

The key row is inserted before anything else in the request's transaction and filled with the
answer at the end, so it commits together with what it created. A second request with the same
key waits on that row: when the first commits it gets the same answer; when the first is still
running after a short wait, 409; when the first failed, it runs as if first. The answer is kept
as the JSON text that was sent, so a replay is the same bytes (JSONB would reorder the keys).
"""
import hashlib
import json

from flask import Response, current_app, request
from psycopg.errors import LockNotAvailable
from sqlalchemy.exc import OperationalError

from .errors import BadRequest, Conflict, Invalid
from ..extensions import db

HEADER = "Idempotency-Key"
# a 409 that only asks to wait: clients tell it from "not allowed now" by the Retry-After header
IN_FLIGHT = {"Retry-After": "1"}


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


# The claim: a new key (the common case) is inserted in one statement, with no read before it; a
# key already committed conflicts at once, and one still in flight is waited for at most
# `lock_timeout`, set for this statement only: in FROM before the row is tried, put back in
# RETURNING (a conflict returns no row; the replay's read puts it back then).
_CLAIM = """
INSERT INTO idempotency_keys (user_id, key, scope, request_hash)
SELECT %(user_id)s, %(key)s, %(scope)s, %(request_hash)s FROM set_config('lock_timeout', %(wait)s, true)
ON CONFLICT DO NOTHING
RETURNING set_config('lock_timeout', %(lock_timeout)s, true)
"""
_STORED = """
SELECT scope, request_hash, status_code, response, set_config('lock_timeout', %(lock_timeout)s, true)
FROM idempotency_keys WHERE user_id = %(user_id)s AND key = %(key)s
"""
_ANSWER = """
UPDATE idempotency_keys SET status_code = %(status_code)s, response = %(response)s::jsonb
WHERE user_id = %(user_id)s AND key = %(key)s
"""


def _lock_timeout(conn) -> str:
    """The connection's own lock_timeout, to put back after the claim: read once per connection."""
    value = conn.info.get("lock_timeout")
    if value is None:
        value = conn.info["lock_timeout"] = conn.exec_driver_sql("SHOW lock_timeout").scalar_one()
    return value


def _replay(stored, scope: str, request_hash: str):
    if stored.scope != scope or stored.request_hash != request_hash:
        raise Invalid(f"This {HEADER} was used with another request; make a new key for a new item",
                      {HEADER: ["reused with a different body"]})
    if stored.status_code is None:
        raise Conflict(f"A request with this {HEADER} is still in flight; retry shortly", headers=IN_FLIGHT)
    return stored.response["text"], stored.status_code, stored.response.get("headers", {})


def once(user_id: int, key: str, scope: str, request_hash: str, produce):
    """Run `produce() -> (body, status, headers)` once per (user, key); replay its answer after.

    Returns (the body as JSON text, status, headers) for `respond()`. Two statements when the key
    is new: the claim and the answer."""
    conn = db.session.connection()
    params = {"user_id": user_id, "key": key, "lock_timeout": _lock_timeout(conn)}
    try:
        claimed = conn.exec_driver_sql(_CLAIM, {**params, "scope": scope, "request_hash": request_hash,
                                                "wait": str(int(current_app.config["IDEMPOTENCY_WAIT_MS"]))}).first()
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            raise Conflict(f"A request with this {HEADER} is still in flight; retry shortly", headers=IN_FLIGHT)
        raise
    if claimed is None:  # the key was there already, or its first request committed while we waited
        return _replay(conn.exec_driver_sql(_STORED, params).one(), scope, request_hash)
    body, status, headers = produce()
    body_text = json.dumps(body, ensure_ascii=False)
    conn.exec_driver_sql(_ANSWER, {**params, "status_code": status,
                                   "response": json.dumps({"text": body_text, "headers": headers})})
    return body_text, status, headers


def respond(answer) -> Response:
    """The (body text, status, headers) of `once()` as a response, the same bytes first time and replayed."""
    body_text, status, headers = answer
    return current_app.response_class(body_text, status=status, headers=headers, mimetype="application/json")
