from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import created_at_column
from ..extensions import db


class Patrol(db.Model):
    __tablename__ = "patrols"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    started_at: Mapped[datetime] = created_at_column()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    track = mapped_column(Geometry("LINESTRING", srid=4326), nullable=True)
    length_m: Mapped[float] = mapped_column(Float, server_default="0")


class PatrolPoint(db.Model):
    """A GPS fix, stored in the order of its batch (seq) and its place in the batch (idx)."""
    __tablename__ = "patrol_points"

    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GridVisit(db.Model):
    """A grid crossed by a patrol track on a local day: the base of patrol coverage."""
    __tablename__ = "grid_visits"
    __table_args__ = (Index("ix_grid_visits_day_grid", "day", "grid_code"),)

    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grids.code"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
