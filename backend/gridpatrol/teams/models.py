from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..catalog.models import TEAM_KINDS
from ..core.db import check_in, created_at_column
from ..extensions import db


class Team(db.Model):
    """An integrated team (四整合) with its service area and the categories it is competent for.

    Routing is this data: a case of category C in grid G goes to teams competent for C whose
    area covers G.
    """
    __tablename__ = "teams"
    __table_args__ = (
        CheckConstraint(check_in("kind", TEAM_KINDS), name="kind_known"),
        Index("ix_teams_category_codes", "category_codes", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    agencies: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # whole districts, streets or communities served (admin area codes)
    area_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # single unit grids served, beside the areas
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = created_at_column()

    def covers(self, grid_code: str | None) -> bool:
        if not grid_code:
            return False
        return grid_code in self.grid_codes or any(grid_code.startswith(a) for a in self.area_codes)
