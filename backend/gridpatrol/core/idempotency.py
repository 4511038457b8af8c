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
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from .errors import BadRequest, Conflict, Invalid
from ..extensions import db
from .idempotency_model import IdempotencyKey

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


def _replay(row: IdempotencyKey, scope: str, request_hash: str):
    if row.scope != scope or row.request_hash != request_hash:
        raise Invalid(f"This {HEADER} was used with another request; make a new key for a new item",
                      {HEADER: ["reused with a different body"]})
    if row.status_code is None:
        raise Conflict(f"A request with this {HEADER} is still in flight; retry shortly", headers=IN_FLIGHT)
    return row.response["text"], row.status_code, row.response.get("headers", {})


def once(user_id: int, key: str, scope: str, request_hash: str, produce):
    """Run `produce() -> (body, status, headers)` once per (user, key); replay its answer after.

    Returns (the body as JSON text, status, headers) for `respond()`."""
    # insert first: a new key (the common case) costs no extra read; a key already committed
    # conflicts at once, and one still in flight is waited for at most `wait_ms`
    wait_ms = int(current_app.config["IDEMPOTENCY_WAIT_MS"])
    db.session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
    try:
        inserted = db.session.execute(
            insert(IdempotencyKey).values(user_id=user_id, key=key, scope=scope, request_hash=request_hash)
            .on_conflict_do_nothing().returning(IdempotencyKey.key)).first()
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            raise Conflict(f"A request with this {HEADER} is still in flight; retry shortly", headers=IN_FLIGHT)
        raise
    db.session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    if inserted is None:  # the key was there already, or its first request committed while we waited
        row = db.session.execute(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                              IdempotencyKey.key == key)
                                 .execution_options(populate_existing=True)).scalar_one()
        return _replay(row, scope, request_hash)
    body, status, headers = produce()
    body_text = json.dumps(body, ensure_ascii=False)
    db.session.execute(IdempotencyKey.__table__.update()
                       .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                       .values(status_code=status, response={"text": body_text, "headers": headers}))
    return body_text, status, headers


def respond(answer) -> Response:
    """The (body text, status, headers) of `once()` as a response, the same bytes first time and replayed."""
    body_text, status, headers = answer
    return current_app.response_class(body_text, status=status, headers=headers, mimetype="application/json")
