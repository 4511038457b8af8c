from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, CheckConstraint, Computed, DateTime, Float, ForeignKey, Index,
                        PrimaryKeyConstraint, String, func)
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import check_in, created_at_column
from ..extensions import db

LEVELS = ("district", "street", "community")
CODE_LENGTH = {"district": 6, "street": 9, "community": 12}


class AdminArea(db.Model):
    """District 区 → street 街道 → community 社区."""
    __tablename__ = "admin_areas"
    __table_args__ = (
        CheckConstraint(check_in("level", LEVELS), name="level_known"),
        CheckConstraint("code ~ '^[0-9]+$' AND length(code) IN (6, 9, 12)", name="code_format"),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_areas.code"), index=True)


class Grid(db.Model):
    """A unit grid 单元网格: about 10,000 m², in exactly one community, never overlapping another."""
    __tablename__ = "grids"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("street_code = left(code, 9) AND community_code = left(code, 12)"
                        " AND district_code = left(code, 6)", name="hierarchy_from_code"),
        Index("ix_grids_geom", "geom", postgresql_using="gist"),
        Index("ix_grids_geom_3857", "geom_3857", postgresql_using="gist"),
    )

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    district_code: Mapped[str] = mapped_column(String(6), ForeignKey("admin_areas.code"))
    street_code: Mapped[str] = mapped_column(String(9), ForeignKey("admin_areas.code"), index=True)
    community_code: Mapped[str] = mapped_column(String(12), ForeignKey("admin_areas.code"), index=True)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
    # the same polygon in web mercator, projected once on write: tiles are cut from it as it is
    geom_3857 = mapped_column(Geometry("POLYGON", srid=3857, spatial_index=False),
                              Computed("ST_Transform(geom, 3857)", persisted=True), deferred=True)
    area_m2: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GridCell(db.Model):
    """The lattice index of grids for locate(): a grid under every cell its bounding box meets (cells
    of 0.002°, or of 1° for a grid too large for those), with that box, so candidates are sifted in
    the index. Kept by triggers on grids: every way a grid is written, moved or removed refiles it
    (migration 0008, where the cells are defined, and grid_at() that reads them)."""
    __tablename__ = "grid_cells"
    __table_args__ = (PrimaryKeyConstraint("cell", "code", postgresql_include=["west", "south", "east", "north"]),)

    cell: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(15), index=True)
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
