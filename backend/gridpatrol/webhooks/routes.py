from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import (DeliveryList, DeliveryOut, DeliveryQuery, WebhookCreated, WebhookIn, WebhookList, WebhookOut,
                      WebhookPatch)

blp = Blueprint("webhooks", __name__, description="Outgoing webhooks: case events sent to other offices' systems")


def _out(hook, stats: dict | None = None, **extra) -> dict:
    stats = stats if stats is not None else services.stats([hook])[hook.id]
    return {"id": hook.id, "url": hook.url, "events": [services.EVENT_TYPES[a] for a in hook.actions],
            "scope": hook.scope, "description": hook.description, "active": hook.active,
            "created_by": hook.created_by, "created_at": hook.created_at, "deliveries": stats, **extra}


@blp.route("/webhooks")
class WebhooksView(MethodView):
    @requires("admin")
    @blp.response(200, WebhookList)
    def get(self):
        """The webhooks of the caller's areas, with their deliveries by status and the last attempt"""
        hooks = services.visible(current_user())
        stats = services.stats(hooks)
        return {"items": [_out(h, stats[h.id]) for h in hooks], "total": len(hooks)}

    @requires("admin")
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreated)
    def post(self, body):
        """Register a URL for case events; the signing `secret` is shown this once.

        Each delivery is a POST of JSON with the headers `X-GridPatrol-Event` (the event type),
        `X-GridPatrol-Delivery` (a delivery id: delivery is at least once, in order per case, so a
        receiver de-duplicates on it) and `X-GridPatrol-Signature: sha256=<hex HMAC-SHA256 of the body
        with the secret>`. A 2xx answer is a delivery; anything else is retried with backoff."""
        hook = services.create(current_user(), **body)
        return _out(hook, secret=hook.secret)


@blp.route("/webhooks/<int:webhook_id>")
class WebhookView(MethodView):
    @requires("admin")
    @blp.response(200, WebhookOut)
    def get(self, webhook_id):
        """One webhook and its delivery figures"""
        return _out(services.get(webhook_id, current_user()))

    @requires("admin")
    @blp.arguments(WebhookPatch)
    @blp.response(200, WebhookOut)
    def patch(self, body, webhook_id):
        """Change a webhook; `active: false` pauses it (its queued deliveries wait, new events are not queued)"""
        user = current_user()
        return _out(services.update(services.get(webhook_id, user, for_update=True), user, body))

    @requires("admin")
    @blp.response(204)
    def delete(self, webhook_id):
        """Remove a webhook and its queued and past deliveries"""
        services.delete(services.get(webhook_id, current_user(), for_update=True))


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class DeliveriesView(MethodView):
    @requires("admin")
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryList)
    def get(self, args, webhook_id):
        """A webhook's deliveries, newest first, with each one's last status"""
        hook = services.get(webhook_id, current_user())
        items, total = services.deliveries(hook, args.get("status"), args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/retry")
class RetryView(MethodView):
    @requires("admin")
    @blp.response(200, DeliveryOut)
    def post(self, webhook_id, delivery_id):
        """Send a failed delivery again now"""
        return services.retry(services.get(webhook_id, current_user()), delivery_id)
from . import cli  # noqa: E402,F401  (registers `gridpatrol webhooks deliver` on the blueprint)
