import uuid
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import check_in, created_at_column
from ..extensions import db

STATUSES = ("pending", "delivered", "failed")


class Webhook(db.Model):
    """A URL an admin registered to receive case events of its areas, signed with a shared secret."""
    __tablename__ = "webhooks"
    __table_args__ = (
        CheckConstraint("url ~* '^https?://'", name="url_http"),
        CheckConstraint("cardinality(scope) > 0", name="has_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), server_default="")
    # the event log's actions that are sent; empty: every action
    actions: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # the admin areas whose cases are sent (area codes, or "*")
    scope: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # kept in clear: it signs every delivery (like any HMAC webhook sender); shown to the admin once
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()


class Delivery(db.Model):
    """The outbox: one row per event and webhook, written by a trigger in the event's own transaction.

    The body is fixed when the row is written, so every attempt sends the same bytes and signature;
    `uid` is the delivery id a receiver de-duplicates on (delivery is at least once)."""
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        CheckConstraint(check_in("status", STATUSES), name="status_known"),
        # the worker's pick: due pending rows, and the earlier pending row of the same case
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_case", "webhook_id", "case_id", "event_id",
              postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, server_default=text("gen_random_uuid()"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("case_events.id"))
    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cases.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    next_attempt_at: Mapped[datetime] = created_at_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
