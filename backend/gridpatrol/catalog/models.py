from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import check_in, created_at_column
from ..extensions import db

KINDS = ("part", "event")
TEAM_KINDS = ("patrol", "enforcement", "community", "supervision")
URGENCIES = ("A", "B", "C")


class CatalogVersion(db.Model):
    __tablename__ = "catalog_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class Category(db.Model):
    """A part 部件 or event 事件 category with its handling limits per urgency class."""
    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{4}$'", name="code_format"),
        CheckConstraint(check_in("kind", KINDS), name="kind_known"),
        CheckConstraint(check_in("team_kind", TEAM_KINDS), name="team_kind_known"),
        CheckConstraint("limits ?& array['A','B','C']", name="limits_complete"),
    )

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    kind: Mapped[str] = mapped_column(String(5))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    major_name_zh: Mapped[str | None] = mapped_column(String(100))
    major_name_en: Mapped[str | None] = mapped_column(String(100))
    team_kind: Mapped[str] = mapped_column(String(12))
    filing_condition: Mapped[str] = mapped_column(Text, server_default="")
    closure_condition: Mapped[str] = mapped_column(Text, server_default="")
    # {"A": {"amount": 2, "unit": "hour", "clock": true}, "B": ..., "C": ...}
    limits: Mapped[dict] = mapped_column(JSONB)
    since_version: Mapped[int] = mapped_column(ForeignKey("catalog_versions.version"))
    # retired categories stay readable; reports made against an older catalog are still taken
    retired_in_version: Mapped[int | None] = mapped_column(ForeignKey("catalog_versions.version"))
    public: Mapped[bool] = mapped_column(Boolean, server_default="true")

    @property
    def active(self) -> bool:
        return self.retired_in_version is None

    @hybrid_method
    def accepts_reports_from(self, catalog_version: int | None) -> bool:
        """A report made with `catalog_version` may use this category: it is not retired, or was
        retired in a later version than the reporter's (no version given: only if not retired)."""
        if self.retired_in_version is None:
            return True
        return catalog_version is not None and catalog_version < self.retired_in_version

    @accepts_reports_from.expression
    def accepts_reports_from(cls, catalog_version):
        # the same rule in SQL (NULL > x is not true: no version given, only if not retired)
        return or_(cls.retired_in_version.is_(None), cls.retired_in_version > catalog_version)


class CalendarDay(db.Model):
    """An exception to the weekly pattern: a public holiday, or a swapped working day 调休."""
    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), server_default="")


class Setting(db.Model):
    """Deployment settings held as data (the weekly working periods, …)."""
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)
