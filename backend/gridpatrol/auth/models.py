from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.db import check_subset, created_at_column
from ..extensions import db

ROLES = ("inspector", "dispatcher", "handler", "supervisor", "admin")

user_teams = Table(
    "user_teams", db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(check_subset("roles", ROLES), name="roles_known"),
        CheckConstraint("cardinality(roles) > 0", name="has_role"),
        CheckConstraint("cardinality(scope) > 0", name="has_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # admin area codes (district 6, street 9, community 12 digits) this user may see
    scope: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # the unit grids an inspector is responsible for patrolling (责任网格)
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = created_at_column()

    # loaded when asked for: most requests (a report, a read) never need the caller's teams
    teams = relationship("Team", secondary=user_teams, lazy="select", order_by="Team.id")

    @property
    def team_ids(self) -> list[int]:
        return [t.id for t in self.teams]

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


class Token(db.Model):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # sha256 of the bearer secret: a stolen table does not give usable tokens
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user = relationship(User, lazy="joined")


class LoginAttempt(db.Model):
    """Failed and successful sign-ins, shared by every server process for rate limiting."""
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))  # "user:<name>" or "addr:<ip>"
    at: Mapped[datetime] = created_at_column()
