"""Webhooks an admin registers, and what the admin sees of their deliveries."""
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from ..cases.states import ACTIONS
from ..core.authz import code_in_scope
from ..core.db import utcnow
from ..core.errors import NotFound, invalid
from ..extensions import db
from .models import Delivery, Webhook

# The event type sent for each action of the event log. The database's `webhook_event_type()`
# (migration 0003) writes the same names into the outbox; a test holds the two together.
EVENT_TYPES = {
    "report": "case.created", "register": "case.registered", "reject": "case.rejected", "merge": "case.merged",
    "dispatch": "case.dispatched", "accept": "case.accepted", "return": "case.returned", "handle": "case.handled",
    "verify_pass": "case.closed", "verify_fail": "case.reworked", "suspend": "case.suspended",
    "resume": "case.resumed", "request_extension": "case.extension_requested",
    "decide_extension": "case.extension_decided", "escalate": "case.escalated",
}
ACTION_OF = {t: a for a, t in EVENT_TYPES.items()}
assert set(EVENT_TYPES) == ACTIONS | {"report"}


def _visible(hook: Webhook, actor) -> bool:
    """An admin manages a webhook only when all of its areas lie within their own: one who holds
    part of its areas must not read, redirect or resend events of the rest."""
    return all(code_in_scope(actor.scope, c) for c in hook.scope)


def get(webhook_id: int, actor, *, for_update: bool = False) -> Webhook:
    q = select(Webhook).where(Webhook.id == webhook_id)
    hook = db.session.execute(q.with_for_update() if for_update else q).scalar_one_or_none()
    if hook is None or not _visible(hook, actor):
        raise NotFound(f"No webhook {webhook_id}")
    return hook


def visible(actor) -> list[Webhook]:
    hooks = db.session.execute(select(Webhook).order_by(Webhook.id)).scalars()
    return [h for h in hooks if _visible(h, actor)]


def _scope(scope: list[str] | None, actor) -> list[str]:
    scope = list(dict.fromkeys(scope or actor.scope))
    outside = [c for c in scope if not code_in_scope(actor.scope, c)]
    if outside:
        raise invalid("scope", f"outside your own scope: {', '.join(outside)}")
    return scope


def create(actor, *, url: str, events: list[str] | None = None, scope: list[str] | None = None,
           description: str = "", secret: str | None = None, active: bool = True) -> Webhook:
    hook = Webhook(url=url, description=description, actions=[ACTION_OF[e] for e in events or []],
                   scope=_scope(scope, actor), secret=secret or secrets.token_urlsafe(32), active=active,
                   created_by=actor.id)
    db.session.add(hook)
    db.session.flush()
    return hook


def update(hook: Webhook, actor, changes: dict) -> Webhook:
    if "events" in changes:
        hook.actions = [ACTION_OF[e] for e in changes.pop("events") or []]
    if "scope" in changes:
        hook.scope = _scope(changes.pop("scope"), actor)
    for name, value in changes.items():
        setattr(hook, name, value)
    db.session.flush()
    return hook


def delete(hook: Webhook) -> None:
    db.session.delete(hook)
    db.session.flush()


def stats(hooks: list[Webhook]) -> dict[int, dict]:
    """Per webhook: deliveries by status, and the last attempt's outcome."""
    if not hooks:
        return {}
    ids = [h.id for h in hooks]
    counts = db.session.execute(
        select(Delivery.webhook_id, Delivery.status, func.count()).where(Delivery.webhook_id.in_(ids))
        .group_by(Delivery.webhook_id, Delivery.status)).all()
    other = aliased(Delivery)
    latest = select(func.max(other.last_attempt_at)).where(other.webhook_id == Delivery.webhook_id).scalar_subquery()
    last = db.session.execute(select(Delivery).where(Delivery.webhook_id.in_(ids),
                                                     Delivery.last_attempt_at == latest)).scalars()
    out = {i: {"pending": 0, "delivered": 0, "failed": 0, "last_attempt_at": None, "last_status_code": None,
               "last_error": None} for i in ids}
    for webhook_id, status, n in counts:
        out[webhook_id][status] = n
    for d in last:
        out[d.webhook_id].update(last_attempt_at=d.last_attempt_at, last_status_code=d.last_status_code,
                                 last_error=d.last_error)
    return out


def deliveries(hook: Webhook, status: str | None, page: int, per_page: int) -> tuple[list[Delivery], int]:
    q = select(Delivery).where(Delivery.webhook_id == hook.id)
    if status:
        q = q.where(Delivery.status == status)
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = db.session.execute(q.order_by(Delivery.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows.scalars()), total


def retry(hook: Webhook, delivery_id: int) -> Delivery:
    """Send a failed delivery again from now (a pending one is simply made due)."""
    d = db.session.execute(select(Delivery).where(Delivery.id == delivery_id, Delivery.webhook_id == hook.id)
                           .with_for_update()).scalar_one_or_none()
    if d is None:
        raise NotFound(f"No delivery {delivery_id} of webhook {hook.id}")
    if d.status != "delivered":
        d.status, d.next_attempt_at = "pending", utcnow()
    db.session.flush()
    return d
