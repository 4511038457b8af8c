from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import created_at_column
from ..extensions import db


class ApiKey(db.Model):
    """A key an admin issued to one citizen app. Only the sha256 of the secret is kept."""
    __tablename__ = "open311_keys"
    __table_args__ = (CheckConstraint("cardinality(scope) > 0", name="has_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the admin areas its reports are placed in (the grids searched for a point, the district of a case)
    scope: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceRequest(db.Model):
    """What a citizen's app posted beside the case it became: the token, the attribute answers, the media link."""
    __tablename__ = "open311_requests"
    __table_args__ = (
        CheckConstraint("media_url IS NULL OR media_url ~* '^https?://'", name="media_url_http"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("open311_keys.id"), index=True)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    media_url: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = created_at_column()


class KeyUse(db.Model):
    """One POST made with a key, for the per-key rate limit shared by every server process."""
    __tablename__ = "open311_key_uses"
    __table_args__ = (Index("ix_open311_key_uses_key_at", "api_key_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("open311_keys.id", ondelete="CASCADE"))
    at: Mapped[datetime] = created_at_column()
