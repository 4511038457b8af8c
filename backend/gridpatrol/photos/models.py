from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import check_in, created_at_column
from ..extensions import db

PHOTO_KINDS = ("before", "after", "verification")


class Photo(db.Model):
    """Evidence on a case. The stored copy is re-encoded with metadata stripped; what the EXIF
    said about time and place is kept here, in columns, for the dispatch centre."""
    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(check_in("kind", PHOTO_KINDS), name="kind_known"),
        Index("ix_photos_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(20))
    served_mime: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    thumb_key: Mapped[str] = mapped_column(String(200))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exif_taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    # "duplicate" (same image on another case), "far" (EXIF position far from the case point)
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = created_at_column()
