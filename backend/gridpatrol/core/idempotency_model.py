from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import created_at_column
from ..extensions import db


class IdempotencyKey(db.Model):
    """A write from the field, remembered per caller and key with the answer it got.

    The row is written in the same transaction as what the request created, so a key is
    never recorded for a write that did not happen, nor a write made twice.
    """
    __tablename__ = "idempotency_keys"
    # the purge's way to the oldest keys (migration 0025)
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))  # which endpoint, e.g. "report" or "photo:<case>"
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
