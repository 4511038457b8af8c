from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (ARRAY, BigInteger, CheckConstraint, DateTime, FetchedValue, Float, ForeignKey, Index,
                        Integer, Sequence, String, Text, UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.models import URGENCIES
from ..core.db import check_in, created_at_column
from ..extensions import db
from .states import ACTIONS, OPEN, STATES

SOURCES = ("inspector", "hotline", "open311")
LOCATION_FLAGS = ("snapped", "outside", "poor_accuracy", "pin", "address_only")
OPEN_SQL = check_in("status", sorted(OPEN))
# open and running a stage's deadline (a suspended case's clock stands still), and escalated; said in
# literals, so that a prepared statement's generic plan can still prove the partial indexes they imply
RUNNING_SQL = check_in("status", sorted(OPEN - {"suspended"}))
ESCALATED_SQL = "escalation_level > 0"
# overdue among a grid_open_cases row's open cases (migration 0020): its sorted deadlines before now
# (width_bucket counts those at or before its first argument; deadlines are whole microseconds)
KEPT_OVERDUE_SQL = "width_bucket(now() - interval '1 microsecond', {alias}.deadlines)"
# what the queues' indexes keep beside their key: the scope's columns and the status
QUEUE_INCLUDE = ["status", "district_code", "street_code", "community_code", "grid_code"]


def point_sql(table: str = "") -> str:
    """A case's location as PostgreSQL's own point: the key of ix_cases_open_point, as queries must say it."""
    return "point(ST_X({0}location), ST_Y({0}location))".format(f"{table}." if table else "")


# what an open case's indexes keep beside their key: the list's box reads its filters, scope and order
# (migration 0017); a map tile's clusters read those and every column the map filters on (0019)
OPEN_BOX_INCLUDE = ["location", "status", "reported_at", "id", "district_code", "street_code", "community_code",
                    "grid_code"]
OPEN_TILE_INCLUDE = OPEN_BOX_INCLUDE + ["category_code", "urgency", "lead_team_id", "escalation_level", "stage_deadline"]


def tile_key_sql(table: str = "") -> str:
    """A case's web-mercator tile key (migration 0019): the key of ix_cases_open_tile, as queries must say it."""
    return "tile_key(ST_X({0}location), ST_Y({0}location))".format(f"{table}." if table else "")


case_number_seq = Sequence("case_number_seq", metadata=db.metadata)


class Case(db.Model):
    """The case row caches the current state; the event log is the truth."""
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(check_in("status", sorted(STATES)), name="status_known"),
        CheckConstraint(check_in("urgency", URGENCIES), name="urgency_known"),
        CheckConstraint(check_in("source", SOURCES), name="source_known"),
        CheckConstraint("version >= 1 AND rework_count >= 0 AND extension_hours >= 0", name="counters"),
        CheckConstraint("(status = 'suspended') = (suspended_from IS NOT NULL)", name="suspension_consistent"),
        CheckConstraint("status <> 'merged' OR parent_id IS NOT NULL", name="merged_has_parent"),
        CheckConstraint("pending_extension IS NULL OR jsonb_typeof(pending_extension) = 'object'",
                        name="pending_extension_object"),
        CheckConstraint("contact IS NULL OR jsonb_typeof(contact) = 'object'", name="contact_object"),
        CheckConstraint("status NOT IN ('dispatched','in_progress','handled') OR lead_team_id IS NOT NULL",
                        name="dispatched_has_team"),
        # a case's areas are its grid's (migration 0020: the map counts a grid's cases by the grid)
        CheckConstraint("grid_code IS NULL OR (district_code = left(grid_code, 6)"
                        " AND street_code IS NOT DISTINCT FROM left(grid_code, 9)"
                        " AND community_code IS NOT DISTINCT FROM left(grid_code, 12))", name="areas_of_grid"),
        # a stage's deadline comes with the moment the stage started (migration 0022: the timer reads both)
        CheckConstraint("stage_deadline IS NULL OR stage_started_at IS NOT NULL", name="stage_started"),
        Index("ix_cases_location", "location", postgresql_using="gist"),
        Index("ix_cases_open_location", "location", postgresql_using="gist", postgresql_where=text(OPEN_SQL)),
        # the list's box on open cases, counted and paged from the index alone (migration 0017)
        Index("ix_cases_open_point", text(point_sql()), postgresql_using="gist",
              postgresql_include=OPEN_BOX_INCLUDE, postgresql_where=text(OPEN_SQL)),
        # a zoomed-out map tile's open cases, one key range a cell, with every column the map's filters
        # and clusters read (migration 0019)
        Index("ix_cases_open_tile", text(tile_key_sql()),
              postgresql_include=OPEN_TILE_INCLUDE, postgresql_where=text(OPEN_SQL)),
        Index("ix_cases_status_reported", "status", "reported_at"),
        Index("ix_cases_district_reported", "district_code", "reported_at"),
        # the list's area filters, newest first, without sorting what they find
        Index("ix_cases_street_status_reported", "street_code", "status", text("reported_at DESC"), text("id DESC")),
        Index("ix_cases_community_status_reported", "community_code", "status", text("reported_at DESC"),
              text("id DESC")),
        Index("ix_cases_open_reported", text("reported_at DESC"), text("id DESC"), postgresql_where=text(OPEN_SQL)),
        Index("ix_cases_grid", "grid_code"),
        # cases arrive in time order: a BRIN index finds a period's cases for the KPIs at almost no
        # cost to the writes
        Index("ix_cases_reported_brin", "reported_at", postgresql_using="brin"),
        # the list's free text (`q`): a number by its beginning or end, description and address
        # anywhere (migration 0018)
        Index("ix_cases_number_prefix", "number", postgresql_ops={"number": "text_pattern_ops"}),
        Index("ix_cases_number_suffix", text("reverse(number) text_pattern_ops")),
        Index("ix_cases_text_trgm", "description", "address", postgresql_using="gin",
              postgresql_ops={"description": "gin_trgm_ops", "address": "gin_trgm_ops"}),
        # the grid tiles count open and overdue cases per grid from this index alone
        Index("ix_cases_open_grid", "grid_code", postgresql_include=["status", "stage_deadline", "district_code"],
              postgresql_where=text(OPEN_SQL)),
        Index("ix_cases_team_status", "lead_team_id", "status"),
        # a team's cases in time order, for the list by team with no status (migration 0026); a report
        # has no team yet, so the ingest does not pay for it
        Index("ix_cases_team_reported", "lead_team_id", "reported_at", "id",
              postgresql_include=["district_code", "street_code", "community_code"],
              postgresql_where=text("lead_team_id IS NOT NULL")),
        # a desk's extension and escalated queues: counted and paged from their own cases' entries
        # (migration 0023)
        Index("ix_cases_pending_extension", "reported_at", "id", postgresql_include=QUEUE_INCLUDE,
              postgresql_where=text("pending_extension IS NOT NULL")),
        Index("ix_cases_escalated", "reported_at", "id", postgresql_include=QUEUE_INCLUDE,
              postgresql_where=text(ESCALATED_SQL)),
        Index("ix_cases_category_reported", "category_code", "reported_at"),
        Index("ix_cases_registered_at", "registered_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(12))
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    urgency: Mapped[str] = mapped_column(String(1))
    description: Mapped[str] = mapped_column(Text, server_default="")
    address: Mapped[str | None] = mapped_column(String(300))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grids.code"))
    # scope columns: from the grid, or for a point outside every grid the district it was reported in
    district_code: Mapped[str] = mapped_column(String(6))
    street_code: Mapped[str | None] = mapped_column(String(9))
    community_code: Mapped[str | None] = mapped_column(String(12))
    location_flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    source: Mapped[str] = mapped_column(String(10))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    catalog_version: Mapped[int | None] = mapped_column(Integer)
    # a citizen's contact details (Open311): shown only to the dispatch centre
    contact: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime] = created_at_column()
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lead_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    assisting_team_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    extension_hours: Mapped[float] = mapped_column(Float, server_default="0")
    # None is SQL NULL (not JSON null), so "an extension waits" is simply IS NOT NULL
    pending_extension: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    suspended_from: Mapped[str | None] = mapped_column(String(12))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_register: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_dispatch: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_handle: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_verify: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # start of the current stage and its deadline, for timers and the `overdue` filter
    stage_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_clock: Mapped[bool] = mapped_column(server_default="false")
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = created_at_column()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


class CaseEvent(db.Model):
    """One row per transition or request. Append-only: the database refuses UPDATE, DELETE, TRUNCATE.

    Each row carries a hash chained to the case's previous row, computed by a trigger, so a
    change made behind the application's back is found by `gridpatrol verify-events`.
    """
    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint(check_in("action", sorted(ACTIONS | {"report"})), name="action_known"),
        Index("ix_case_events_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer, server_default=FetchedValue())  # set by the chain trigger
    at: Mapped[datetime] = created_at_column()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    payload: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    client_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actor = relationship("User", lazy="joined", innerjoin=False)
    team = relationship("Team", lazy="joined", innerjoin=False)
    prev_hash: Mapped[str | None] = mapped_column(String(64), server_default=FetchedValue())
    hash: Mapped[str | None] = mapped_column(String(64), server_default=FetchedValue())
