"""Reports, cases and the workflow. Every change to a case appends one event row."""
import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from flask import current_app
from geoalchemy2.shape import to_shape
from psycopg.errors import LockNotAvailable
from sqlalchemy import (BigInteger, Float, Integer, and_, bindparam, column, false, func, literal_column, or_, select,
                        table, text, true, union_all)
from sqlalchemy.exc import OperationalError

from ..auth.models import User
from ..catalog import services as catalog
from ..catalog.models import Category
from ..core.authz import EVERYWHERE, LEVEL_BY_LENGTH, case_scope_sql, grid_code_range, scope_clause
from ..core.db import utcnow
from ..core.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, invalid
from ..core.geo import distance_m
from ..extensions import db
from ..grids import services as grids
from ..photos.models import Photo
from ..teams import services as teams
from ..teams.models import Team
from . import states
from .models import ESCALATED_SQL, KEPT_OVERDUE_SQL, OPEN_SQL, RUNNING_SQL, Case, CaseEvent, point_sql
from .states import OPEN, STAGE_OF

# the team kinds that handle cases (四整合: patrol reports, supervision audits)
HANDLING_TEAM_KINDS = ("enforcement", "community")
STAGE_DEADLINE = {"register": "deadline_register", "dispatch": "deadline_dispatch",
                  "handle": "deadline_handle", "verify": "deadline_verify"}
# the columns of a case in the order of the model: statements written in SQL answer them so, for
# the ORM to take their rows as cases
_CASE_COLUMNS = list(Case.__table__.columns)


def _case_columns_sql(alias: str) -> str:
    """The case's columns as SQL, in the model's order; the location as EWKB, as the ORM reads it."""
    return ", ".join(f"ST_AsEWKB({alias}.location)" if c.name == "location" else f"{alias}.{c.name}"
                     for c in _CASE_COLUMNS)


# ---------------------------------------------------------------- reading

def scoped(user: User):
    return scope_clause(user.scope, district=Case.district_code, street=Case.street_code,
                        community=Case.community_code, grid=Case.grid_code)


def get_case(case_id: int, user: User, *, for_update: bool = False) -> Case:
    q = select(Case).where(Case.id == case_id, scoped(user))
    if for_update:
        # the row as the lock found it, not as this session may have read it before
        q = q.with_for_update().execution_options(populate_existing=True)
    case = db.session.execute(q).scalar_one_or_none()
    if case is None:
        raise NotFound(f"No case {case_id}")
    return case


def events(case: Case) -> list[CaseEvent]:
    return list(db.session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                   .order_by(CaseEvent.seq)).scalars())


def lonlat(case: Case) -> tuple[float, float]:
    p = to_shape(case.location)
    return p.x, p.y


def timer(case: Case, now: datetime | None = None) -> str | None:
    if case.status not in OPEN or case.stage_deadline is None or case.status == "suspended":
        return None
    if case.stage_deadline <= case.stage_started_at:  # a limit of nothing: late the moment it starts
        return "red" if (now or utcnow()) > case.stage_deadline else "yellow"
    return catalog.work_calendar().timer_colour(case.stage_started_at, case.stage_deadline, now or utcnow(),
                                                case.stage_clock)


def _overdue():
    return and_(text(f"cases.{RUNNING_SQL}"), Case.stage_deadline < func.now())


# a dispatcher's queues, as list filters: the counts and the lists read the same definitions
QUEUES = {
    "register": {"status": ["reported"]},
    "dispatch": {"status": ["registered"]},
    "returned": {"status": ["returned"]},
    "extensions": {"pending_extension": True},
    "overdue": {"overdue": True},
    "escalated": {"escalated": True, "status": sorted(OPEN)},
}


def queue_counts(user: User) -> dict[str, int]:
    """How many cases wait in each queue: the queues of statuses alone from case_counts, the overdue one
    from the deadlines kept per grid, the others counted over their own indexes."""
    counted = [name for name, args in QUEUES.items() if _counts_answer(user, args)]
    counts = {}
    if counted:
        k = _case_counts.c
        row = db.session.execute(select(*[
            func.coalesce(func.sum(k.n).filter(and_(*_counted_conditions(QUEUES[name]))), 0).label(name)
            for name in counted]).where(_counts_scoped(user))).one()
        counts.update({name: int(n) for name, n in row._mapping.items()})
    rest = [name for name in QUEUES if name not in counted]
    if rest:
        # a count each, so that the extension and escalated ones read their queues' own indexes (0023),
        # and the overdue one the deadlines kept per grid
        columns = [(_overdue_count(user) if name == "overdue" else _filters(
                        select(func.count()).select_from(Case).where(scoped(user), text(f"cases.{OPEN_SQL}")),
                        QUEUES[name]).scalar_subquery()).label(name) for name in rest]
        row = db.session.execute(select(*columns)).one()
        counts.update(row._mapping)
    return {name: counts[name] for name in QUEUES}


_grid_open_cases = table("grid_open_cases", column("grid_code"))


def _overdue_count(user: User):
    """The overdue queue's count: the stage deadlines before now that grid_open_cases keeps for each grid
    in scope (as the map counts them; a case's areas are its grid's), and the overdue cases without a
    grid, counted. Not a count over every running case: at a city's size that read them all, for every
    desk's poll."""
    code = _grid_open_cases.c.grid_code
    in_scope = true() if EVERYWHERE in user.scope else or_(false(), *[
        code.between(*grid_code_range(s)) for s in user.scope])
    kept = (select(func.coalesce(func.sum(literal_column(KEPT_OVERDUE_SQL.format(alias="grid_open_cases"))), 0))
            .select_from(_grid_open_cases).where(in_scope))
    gridless = _filters(select(func.count()).select_from(Case).where(
        scoped(user), Case.grid_code.is_(None), text(f"cases.{OPEN_SQL}")), QUEUES["overdue"])
    return kept.scalar_subquery() + gridless.scalar_subquery()


def list_cases(user: User, args: dict, page: int, per_page: int) -> tuple[list[Case], int]:
    if args.get("queue"):
        args = {**args, **QUEUES[args["queue"]]}
    q = _filters(select(Case).where(scoped(user)), args)
    order = list_order(Case.reported_at, Case.id, args.get("sort"))
    window = q.order_by(*order).offset((page - 1) * per_page).limit(per_page)
    parts = None if _filters_given(args) else _scope_parts(user)
    if parts:
        # no filter, and a scope of several areas (or everything): each area's first cases in the page's
        # order from its own index, merged. One walk of every case in scope, sorted, took 0.26-0.40 s at
        # 1M cases for a caller of two districts or the whole city (docs/performance.md, fourteenth round)
        ahead = select(Case.id, Case.reported_at).order_by(*order).limit(page * per_page)
        merged = union_all(*[ahead.where(part) for part in parts]).subquery()
        window = (select(merged.c.id).order_by(*list_order(merged.c.reported_at, merged.c.id, args.get("sort")))
                  .offset((page - 1) * per_page).limit(per_page))
        window = select(Case).where(Case.id.in_(window.scalar_subquery())).order_by(*order)
    elif _open_box(args):
        # the page's ids from the box's index alone, then only their rows (not every open case's in the box)
        window = select(Case).where(Case.id.in_(window.with_only_columns(Case.id).scalar_subquery())).order_by(*order)
    items = list(db.session.execute(window).scalars())
    if len(items) < per_page and (items or page == 1):
        # the page holds the last of the cases: the total is known without counting them again (a
        # number searched through the descriptions' trigrams costs a few milliseconds each time)
        return items, (page - 1) * per_page + len(items)
    total = _list_total(user, args, q)
    # counted after the page, in a statement of its own: never fewer than the cases shown and before them
    return items, max(total, (page - 1) * per_page + len(items)) if items else total


def _list_total(user: User, args: dict, q) -> int:
    """How many cases the list's filters `q` find in the caller's scope: from the kept counts where they
    answer, else counted."""
    if _counts_answer(user, args):
        return int(db.session.execute(select(func.coalesce(func.sum(_case_counts.c.n), 0))
                                      .where(_counts_scoped(user), *_counted_conditions(args))).scalar_one())
    if _filters_given(args) == {"overdue"} and args["overdue"]:
        return int(db.session.execute(select(_overdue_count(user))).scalar_one())
    return db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()


def list_order(reported_at, id_, sort: str | None) -> tuple:
    """The list's order: newest first (or oldest), the newest id first among cases of one moment."""
    return reported_at.asc() if sort == "oldest" else reported_at.desc(), id_.desc()


# the districts that have cases, one probe of ix_cases_district_reported each (a loose index scan)
_CASE_DISTRICTS = text("""
    WITH RECURSIVE d(code) AS (
      SELECT min(district_code) FROM cases
      UNION ALL
      SELECT (SELECT min(district_code) FROM cases WHERE district_code > d.code) FROM d WHERE d.code IS NOT NULL)
    SELECT code FROM d WHERE code IS NOT NULL""")


def _scope_parts(user: User) -> list | None:
    """The caller's scope as disjoint conditions, each one area's cases (for the whole deployment: each
    district's; every case has one), or None when the scope is one area."""
    if EVERYWHERE in user.scope:
        return [Case.district_code == code for code in db.session.execute(_CASE_DISTRICTS).scalars()]
    # a code inside another of the scope is already in that one's part
    codes = sorted({c for c in user.scope if not any(o != c and c.startswith(o) for o in user.scope)})
    if len(codes) < 2:
        return None
    return [scope_clause([code], district=Case.district_code, street=Case.street_code,
                         community=Case.community_code, grid=Case.grid_code) for code in codes]


def _escaped(text_: str) -> str:
    """The text as a LIKE pattern of itself (its %, _ and \\ taken literally)."""
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _open_box(args: dict) -> bool:
    """A box on open cases only: ix_cases_open_point answers it (migration 0017)."""
    return bool(args.get("bbox")) and bool(args.get("status")) and set(args["status"]) <= OPEN


def _filters(q, args: dict):
    if args.get("status"):
        q = q.where(Case.status.in_(args["status"]))
    for name, column in (("grid", Case.grid_code), ("street", Case.street_code), ("community", Case.community_code),
                         ("category", Case.category_code), ("source", Case.source), ("urgency", Case.urgency)):
        if args.get(name):
            q = q.where(column.in_(args[name]))
    if args.get("team"):
        q = q.where(Case.lead_team_id.in_(args["team"]))
    if args.get("reporter"):
        q = q.where(Case.reporter_id == args["reporter"])
    if _open_box(args):
        # the same points as && on the envelope (edges included), in the terms of ix_cases_open_point;
        # the open statuses said in literals too, so that the partial index applies
        x1, y1, x2, y2 = args["bbox"]
        box = func.box(func.point(x1, y1), func.point(x2, y2))
        q = q.where(text(f"cases.{OPEN_SQL}"), literal_column(point_sql("cases")).op("<@")(box))
    elif args.get("bbox"):
        x1, y1, x2, y2 = args["bbox"]
        q = q.where(Case.location.op("&&")(func.ST_MakeEnvelope(x1, y1, x2, y2, 4326)))
    if args.get("overdue") is not None:
        q = q.where(_overdue() if args["overdue"] else ~_overdue())
    if args.get("escalated") is not None:
        q = q.where(text(f"cases.{ESCALATED_SQL}") if args["escalated"] else (Case.escalation_level == 0))
    if args.get("pending_extension"):
        q = q.where(Case.pending_extension.is_not(None))
    if not args.get("kpi"):  # with `kpi`, from and to are the KPI's period, applied by the ids
        if args.get("from"):
            q = q.where(Case.reported_at >= args["from"])
        if args.get("to"):
            q = q.where(Case.reported_at < args["to"])
    if args.get("q"):
        # a case number that begins or ends with the text (B-tree ranges, migration 0018), or a
        # description or address holding it anywhere (trigrams): digits share too few trigrams for a
        # number's middle to be found fast among millions (`000` is in almost every number)
        pattern = _escaped(args["q"])
        q = q.where(or_(Case.number.like(pattern + "%"),
                        func.reverse(Case.number).like(_escaped(args["q"][::-1]) + "%"),
                        Case.description.ilike("%" + pattern + "%"),
                        Case.address.ilike("%" + pattern + "%")))
    if args.get("ids") is not None:
        q = q.where(Case.id.in_(args["ids"]))
    return q


# How many cases there are per (district, street, community, status, urgency), kept by triggers in the
# transaction of every write to cases (migration 0016): a total over only these columns is a sum of a
# few rows here, exact, where count(*) walks every matching case (~500,000 for the register queue at
# 10 million cases).
_case_counts = table("case_counts", column("district_code"), column("street_code"), column("community_code"),
                     column("status"), column("urgency"), column("n", BigInteger))
# the list filters case_counts answers, with its column for each; the list's other arguments, which
# filter nothing
_COUNTED = {"status": "status", "urgency": "urgency", "street": "street_code", "community": "community_code"}
_NOT_FILTERS = {"queue", "sort", "page", "per_page"}


def _filters_given(args: dict) -> set[str]:
    return {name for name, value in args.items() if value is not None} - _NOT_FILTERS


def _counts_answer(user: User, args: dict) -> bool:
    """Whether case_counts gives the total of these filters in the user's scope: every filter is one
    of its columns, and so is every scope code's level (a grid's is not)."""
    return _filters_given(args) <= _COUNTED.keys() and all(
        code == EVERYWHERE or LEVEL_BY_LENGTH.get(len(code)) in ("district", "street", "community")
        for code in user.scope)


def _counts_scoped(user: User):
    k = _case_counts.c
    return scope_clause(user.scope, district=k.district_code, street=k.street_code, community=k.community_code)


def _counted_conditions(args: dict) -> list:
    """The filters of `args` on case_counts, as _filters takes them on cases."""
    return [_case_counts.c[col].in_(args[name]) for name, col in _COUNTED.items() if args.get(name)]


def recount() -> int:
    """Set case_counts and grid_open_cases (the map's open cases per grid) to what cases holds; how many
    of their rows were wrong."""
    return db.session.execute(text("SELECT case_counts_recount() + grid_open_cases_recount()")).scalar_one()


def duplicates(case_id: int, user: User, radius_m: float, hours: float) -> list[Case]:
    """Open cases of the same category near case `case_id` in space and time, nearest first: the
    candidates a dispatcher may merge it into. One statement reads the case (NotFound when it is
    not the user's to see) and, joined laterally, its candidates."""
    scope_sql, params = case_scope_sql(user.scope, "c")
    rows = db.session.execute(_duplicates_statement(scope_sql), {
        **params, "case_id": case_id, "window": timedelta(hours=hours), "radius_m": radius_m,
        # the circle's bounding box, a little larger (the buffer is a polygon inside the circle)
        "box_m": radius_m * 1.05}).all()
    if not rows:
        raise NotFound(f"No case {case_id}")
    out = []
    for near, d in rows:
        if near is not None:  # without candidates the case's one row has none
            near.distance_m = round(float(d), 1)
            out.append(near)
    return out


@lru_cache(maxsize=256)
def _duplicates_statement(scope_sql: str):
    """The duplicate search for one scope's SQL (built once per scope: building it costs more than
    running it). The bounding box of the circle comes first, so that the index of open cases'
    locations finds the candidates; the geodesic distance decides."""
    sql = text(f"""
        SELECT {_case_columns_sql("found")}, found.distance_m
        FROM (SELECT c.id, c.location, c.category_code, c.reported_at FROM cases c
              WHERE c.id = :case_id AND {scope_sql}) here
        LEFT JOIN LATERAL (
          SELECT c.*, ST_Distance(c.location::geography, here.location::geography) AS distance_m
          FROM cases c
          WHERE {scope_sql} AND c.id <> here.id AND c.{OPEN_SQL} AND c.category_code = here.category_code
            AND c.reported_at BETWEEN here.reported_at - :window AND here.reported_at + :window
            AND c.location && geometry(ST_Buffer(here.location::geography, :box_m))
            AND ST_DWithin(c.location::geography, here.location::geography, :radius_m)
          ORDER BY distance_m, c.id LIMIT 50
        ) found ON true""").columns(*_CASE_COLUMNS, column("distance_m", Float))
    return select(Case, column("distance_m", Float)).from_statement(sql)


# ---------------------------------------------------------------- reports

# the catalog's rule for a report's category, in SQL (`Category.accepts_reports_from`), for _REPORT
_ACCEPTS_REPORTS = f"({Category.accepts_reports_from(bindparam('catalog_version', type_=Integer))})"
# A report's writes in one round trip: the case number from the sequence, the case, and its
# first event (through the event log's hash-chain and webhook triggers, which see the new case
# row), answering the case's columns so the ORM takes the row as loaded. The category is checked
# by the same statement, as committed when it runs (no read of its own, nothing kept between
# requests): the case is made only when the category exists and takes reports from the report's
# catalog version (`Category.accepts_reports_from`); else no row, no case and no case number.
_REPORT = text(f"""
WITH new_case AS (
  INSERT INTO cases (number, status, category_code, urgency, description, address, location, accuracy_m,
                     grid_code, district_code, street_code, community_code, location_flags, source, reporter_id,
                     catalog_version, contact, observed_at, reported_at, updated_at, version,
                     deadline_register, stage_started_at, stage_deadline, stage_clock)
  SELECT (SELECT :day || lpad(s.n::text, greatest(5, length(s.n::text)), '0')
          FROM (SELECT nextval('case_number_seq') AS n) s),
         'reported', categories.code, :urgency, :description, :address,
         ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :accuracy_m,
         :grid_code, :district_code, :street_code, :community_code, :location_flags, :source, :reporter_id,
         :catalog_version, CAST(:contact AS jsonb), :observed_at, :now, :now, 1,
         :deadline, :now, :deadline, :clock
  FROM categories
  WHERE categories.code = :category_code AND {_ACCEPTS_REPORTS}
  RETURNING *
), first_event AS (
  INSERT INTO case_events (case_id, at, actor_id, action, from_status, to_status, payload, client_time)
  SELECT id, reported_at, CAST(:reporter_id AS integer), 'report', NULL, status, CAST(:payload AS jsonb),
         CAST(:client_time AS timestamptz)
  FROM new_case
)
SELECT {_case_columns_sql("new_case")} FROM new_case""").columns(*_CASE_COLUMNS)


def report(user: User, body: dict, source: str = "inspector") -> Case:
    """A new case in state `reported`, its grid found from the point, with its first event."""
    if source == "inspector" and not user.has_role("inspector"):
        source = "hotline"
    found = grids.locate(body["lon"], body["lat"], user.scope)
    flags = found.flags + list(body.get("location_flags") or [])
    accuracy = body.get("accuracy_m")
    if accuracy is not None and accuracy > current_app.config.get("POOR_ACCURACY_M", 50) and "poor_accuracy" not in flags:
        flags.append("poor_accuracy")
    now = utcnow()
    grid = found.grid
    deadline, clock = _stage_deadline("register", now)
    contact = body.get("contact")
    payload = {k: v for k, v in body.items() if k not in ("client_time", "contact")}
    # the case number: the local date and a deployment-wide sequence (2026112600001)
    day = f"{now.astimezone(catalog.work_calendar().tz):%Y%m%d}"
    case = db.session.execute(select(Case).from_statement(_REPORT), {
        "day": day, "category_code": body["category_code"], "urgency": body.get("urgency") or "B",
        "description": body.get("description") or "", "address": body.get("address"),
        "lon": float(body["lon"]), "lat": float(body["lat"]), "accuracy_m": accuracy,
        "grid_code": grid.code if grid else None,
        "district_code": grid.district_code if grid else _district_outside(found, user),
        "street_code": grid.street_code if grid else None, "community_code": grid.community_code if grid else None,
        "location_flags": list(dict.fromkeys(flags)), "source": source, "reporter_id": user.id,
        "catalog_version": body.get("catalog_version"),
        "contact": json.dumps(contact) if contact is not None else None,
        "observed_at": _utc(body.get("observed_at")), "now": now, "deadline": deadline, "clock": clock,
        "payload": json.dumps(_jsonable(payload)), "client_time": body.get("client_time") or body.get("observed_at"),
    }).scalar_one_or_none()
    if case is None:
        # the category is unknown or retired: read it to say which (422 on category_code)
        catalog.category_for_report(body["category_code"], body.get("catalog_version"))
        # it takes reports after all: brought back by a change committed since the statement ran
        raise Conflict(f"Category {body['category_code']} changed while the report was made; send it again",
                       {"category_code": ["changed; send the report again"]})
    return case


def _utc(moment: datetime | None) -> datetime | None:
    """A client's time in UTC, as it reads back from the database (the answer is the same now and later)."""
    return moment.astimezone(timezone.utc) if moment is not None else None


def _district_outside(found, user: User) -> str:
    """A point outside every grid still belongs to a district, for scope: the nearest grid's, or
    the reporter's own."""
    if found.nearest is not None:
        return found.nearest.district_code
    return next((s[:6] for s in user.scope if len(s) >= 6), "000000")


# ---------------------------------------------------------------- the workflow

def parse_if_match(header: str | None) -> int | None:
    if header is None:
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise PreconditionFailed(f"If-Match must be the case's ETag, like \"3\"; got {header!r}")
    return int(value)


def check_actor(case_id: int, action: str, user: User, *, for_update: bool = False) -> Case:
    """The case, when `user` may see it (else 404, never 403) and holds a role the table lets take
    `action` in some state (else 403): answered before anything about the request's body."""
    case = get_case(case_id, user, for_update=for_update)
    if not states.roles_for(action) & set(user.roles):
        raise Forbidden(f"Your roles may not {action} a case")
    return case


def act(case_id: int, action: str, body: dict, user: User, expected_version: int) -> Case:
    """Take one action on a case: the guard of states.py, then the action's own checks and effects."""
    case = check_actor(case_id, action, user, for_update=True)
    if case.version != expected_version:
        raise PreconditionFailed(f"The case changed (version {case.version}, you sent {expected_version}); "
                                 "read it again", headers={"ETag": f'"{case.version}"'})
    transition = states.allowed(case.status, action, user.roles)
    if transition is None:
        raise Conflict(f"{action} is not allowed while the case is {case.status}",
                       {"status": [case.status]})
    _check_relation(case, transition, user)
    before = case.status
    now = utcnow()
    payload = {k: v for k, v in body.items() if k != "client_time"}
    effect = _EFFECTS[action]
    extra = effect(case, body, user, now) or {}
    if transition.to == states.RESUME:
        pass  # the effect restored the state it left
    elif transition.to is not states.SAME:
        case.status = transition.to
    case.version += 1
    case.updated_at = now
    db.session.flush()
    _event(case, user, action, before, {**payload, **extra}, body.get("client_time"), at=now,
           team_id=case.lead_team_id if "handler" in transition.roles else None)
    return case


def _check_relation(case: Case, transition, user: User) -> None:
    if transition.relation == "lead_team" and case.lead_team_id not in user.team_ids:
        raise Forbidden("Only a member of the case's lead team may do this")
    if transition.relation == "not_handler":
        handled_by = db.session.execute(select(CaseEvent.id).where(
            CaseEvent.case_id == case.id, CaseEvent.action == "handle", CaseEvent.actor_id == user.id).limit(1)).first()
        if handled_by or (user.has_role("handler") and user.id in _lead_team_member_ids(case)):
            raise Forbidden("The verification is made by an inspector who did not handle the case")


def _lead_team_member_ids(case: Case) -> set[int]:
    if case.lead_team_id is None:
        return set()
    from ..auth.models import user_teams
    return set(db.session.execute(select(user_teams.c.user_id).where(user_teams.c.team_id == case.lead_team_id))
               .scalars())


def _event(case: Case, user: User | None, action: str, before: str | None, payload: dict, client_time,
           at: datetime, team_id: int | None = None) -> CaseEvent:
    event = CaseEvent(case_id=case.id, at=at, actor_id=user.id if user else None, team_id=team_id, action=action,
                      from_status=before, to_status=case.status, payload=_jsonable(payload), client_time=client_time)
    db.session.add(event)
    db.session.flush()
    return event


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- deadlines

def _start_stage(case: Case, stage: str | None, now: datetime, category=None) -> None:
    """Set the deadline of the stage that starts now, and make it the case's running stage."""
    if stage is None:
        case.stage_started_at = case.stage_deadline = None
        case.stage_clock = False
        return
    deadline, clock = _stage_deadline(stage, now, case, category)
    setattr(case, STAGE_DEADLINE[stage], deadline)
    case.stage_started_at, case.stage_deadline, case.stage_clock = now, deadline, clock


def _stage_deadline(stage: str, now: datetime, case: Case | None = None, category=None) -> tuple[datetime, bool]:
    """The deadline of a stage starting now, and whether it runs on clock time (24×7) rather than
    working time. Only the handling stage depends on the case (its category and urgency)."""
    cal = catalog.work_calendar()
    cfg = current_app.config
    if stage == "register":
        return cal.deadline(now, cfg["REGISTER_LIMIT_HOURS"], "hour", False), False
    if stage == "dispatch":
        return cal.deadline(now, cfg["DISPATCH_LIMIT_HOURS"], "hour", False), False
    if stage == "verify":
        return cal.deadline(now, cfg["VERIFY_LIMIT_HOURS"], "hour", False), False
    category = category or db.session.get(Category, case.category_code)
    limit = category.limits[case.urgency]
    clock = bool(limit.get("clock"))
    return cal.deadline(now, float(limit["amount"]), limit["unit"], clock), clock


def _shift(deadline: datetime, paused_from: datetime, now: datetime, clock: bool) -> datetime:
    """Move a deadline by the time spent suspended (working time, or clock time for 24×7 limits)."""
    cal = catalog.work_calendar()
    if clock:
        return deadline + (now - paused_from)
    return cal.add_working_hours(deadline, cal.working_hours_between(paused_from, now))


# ---------------------------------------------------------------- effects, one per action

def _register(case, body, user, now):
    if body.get("category_code"):
        case.category_code = catalog.category_for_report(body["category_code"], case.catalog_version).code
    if body.get("urgency"):
        case.urgency = body["urgency"]
    case.registered_at = now
    _start_stage(case, "dispatch", now)


def _reject(case, body, user, now):
    case.closed_at = now
    _start_stage(case, None, now)


def _merge(case, body, user, now):
    parent_id = body["parent_id"]
    if parent_id == case.id:
        raise invalid("parent_id", "a case cannot be merged into itself")
    parent = _lock_parent(parent_id, user)
    if parent is None:
        raise invalid("parent_id", f"no case {parent_id}")
    if parent.status not in OPEN:
        raise invalid("parent_id", f"case {parent.number} is {parent.status}; merge into an open case")
    case.parent_id = parent.id
    case.closed_at = now
    _start_stage(case, None, now)
    return {"parent_number": parent.number}


def _lock_parent(parent_id: int, user: User) -> Case | None:
    """The parent case, locked so it stays open until the merge commits. Without waiting: two
    dispatchers merging a pair of duplicates into each other would deadlock (or, unlocked, both
    succeed and leave no open case); one of them gets a conflict instead."""
    q = (select(Case).where(Case.id == parent_id, scoped(user))
         .with_for_update(nowait=True).execution_options(populate_existing=True))
    try:
        return db.session.execute(q).scalar_one_or_none()
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            raise Conflict(f"Case {parent_id} is being changed by someone else; read both cases again and retry")
        raise


def _dispatch(case, body, user, now):
    team = _active_team(body["team_id"], user, "team_id")
    if team.kind not in HANDLING_TEAM_KINDS:
        raise invalid("team_id", f"a {team.kind} team does not handle cases")
    assisting = list(dict.fromkeys(body.get("assisting_team_ids") or []))
    if team.id in assisting:
        raise invalid("assisting_team_ids", "the lead team cannot also assist")
    for tid in assisting:
        _active_team(tid, user, "assisting_team_ids")
    case.lead_team_id, case.assisting_team_ids = team.id, assisting
    case.dispatched_at = now
    case.pending_extension = None
    _start_stage(case, "handle", now)
    return {"team_name": team.name}


def _active_team(team_id: int, user: User, field: str) -> Team:
    """An active team the dispatcher may see; else 422 on `field` (a team outside the scope is
    unknown, as everywhere, not a 404 of the case)."""
    team = db.session.get(Team, team_id)
    if team is None or not team.active or not teams.team_in_scope(team, user.scope):
        raise invalid(field, f"no team {team_id}")
    return team


def _accept(case, body, user, now):
    pass


def _return(case, body, user, now):
    case.pending_extension = None
    _start_stage(case, "dispatch", now)


def _photos(case: Case, ids: list[int], kind: str, field: str = "photo_ids") -> list[Photo]:
    """The evidence of one step: photos of this case, of the right kind, not already the evidence
    of an earlier feedback or verification (a rejected after-photo cannot be sent again)."""
    ids = list(dict.fromkeys(ids or []))
    photos = list(db.session.execute(select(Photo).where(Photo.id.in_(ids), Photo.case_id == case.id)).scalars())
    if len(photos) != len(ids):
        raise invalid(field, "a photo is unknown or belongs to another case")
    wrong = [p.id for p in photos if p.kind != kind]
    if wrong:
        raise invalid(field, f"photos {wrong} are not {kind} photos")
    used = db.session.execute(select(CaseEvent.seq).where(
        CaseEvent.case_id == case.id, CaseEvent.action.in_(("handle", "verify_pass", "verify_fail")),
        or_(*(CaseEvent.payload["photo_ids"].contains([pid]) for pid in ids))).limit(1)).first()
    if used:
        raise invalid(field, f"a photo is already the evidence of event {used.seq}; take a new one")
    return photos


def _handle(case, body, user, now):
    if not body.get("photo_ids"):
        raise invalid("photo_ids", "at least one after-photo")
    _photos(case, body["photo_ids"], "after")
    case.handled_at = now
    case.pending_extension = None
    _start_stage(case, "verify", now)


def _verify_pass(case, body, user, now):
    if not body.get("photo_ids"):
        raise invalid("photo_ids", "at least one verification photo taken on site")
    _photos(case, body["photo_ids"], "verification")
    lon, lat = lonlat(case)
    d = distance_m(lon, lat, body["lon"], body["lat"])
    limit = current_app.config["VERIFY_DISTANCE_M"] + min(body.get("accuracy_m") or 0, 50)
    if d > limit:
        raise Invalid(f"The verification was made {d:.0f} m from the case point; at most {limit:.0f} m",
                      {"lon": [f"{d:.0f} m from the case point"], "lat": [f"{d:.0f} m from the case point"]})
    case.closed_at = now
    _start_stage(case, None, now)
    return {"distance_m": round(d, 1)}


def _verify_fail(case, body, user, now):
    if body.get("photo_ids"):
        _photos(case, body["photo_ids"], "verification")
    case.rework_count += 1
    case.dispatched_at = now
    _start_stage(case, "handle", now)


def _suspend(case, body, user, now):
    case.suspended_from, case.suspended_at = case.status, now


def _resume(case, body, user, now):
    stage = STAGE_OF.get(case.suspended_from)
    if stage and case.stage_deadline is not None:
        shifted = _shift(case.stage_deadline, case.suspended_at, now, case.stage_clock)
        setattr(case, STAGE_DEADLINE[stage], shifted)
        case.stage_deadline = shifted
    paused_hours = round((now - case.suspended_at).total_seconds() / 3600, 3)
    case.status, case.suspended_from, case.suspended_at = case.suspended_from, None, None
    return {"paused_hours": paused_hours, "resumed_to": case.status}


def _request_extension(case, body, user, now):
    if case.pending_extension:
        raise Conflict("An extension request is already waiting for a decision")
    case.pending_extension = {"hours": body["hours"], "reason": body["reason"], "by": user.id, "at": now.isoformat()}


def _decide_extension(case, body, user, now):
    pending = case.pending_extension
    if not pending:
        raise Conflict("No extension request is waiting for a decision")
    case.pending_extension = None
    if body["approve"]:
        hours = float(pending["hours"])
        cal = catalog.work_calendar()
        case.extension_hours += hours
        case.deadline_handle = (case.deadline_handle + timedelta(hours=hours) if case.stage_clock
                                else cal.add_working_hours(case.deadline_handle, hours))
        if STAGE_OF.get(case.status) == "handle":
            case.stage_deadline = case.deadline_handle
    return {"hours": pending["hours"], "requested_reason": pending["reason"]}


def _escalate(case, body, user, now):
    case.escalation_level = body["level"]
    case.escalation_note = body.get("note")


_EFFECTS = {
    "register": _register, "reject": _reject, "merge": _merge, "dispatch": _dispatch, "accept": _accept,
    "return": _return, "handle": _handle, "verify_pass": _verify_pass, "verify_fail": _verify_fail,
    "suspend": _suspend, "resume": _resume, "request_extension": _request_extension,
    "decide_extension": _decide_extension, "escalate": _escalate,
}
assert set(_EFFECTS) == states.ACTIONS, "every action of the table has its effect"


def allowed_actions(case: Case, user: User) -> list[str]:
    """The actions this person may take now (the buttons to show)."""
    out = []
    for action in states.actions_for(case.status, user.roles):
        t = states.allowed(case.status, action, user.roles)
        if t.relation == "lead_team" and case.lead_team_id not in user.team_ids:
            continue
        if action == "decide_extension" and not case.pending_extension:
            continue
        if action == "request_extension" and case.pending_extension:
            continue
        out.append(action)
    return out
