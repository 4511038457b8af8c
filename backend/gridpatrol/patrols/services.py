"""Patrols: the track an inspector walks, stored in ordered batches, and the grids it visited."""
from datetime import date, datetime, time, timedelta

from geoalchemy2 import Geometry
from sqlalchemy import func, select, text

from ..auth.models import User
from ..catalog import services as catalog
from ..core.authz import like_patterns, scope_within
from ..core.db import utcnow
from ..core.errors import Conflict, NotFound
from ..extensions import db
from .models import GridVisit, Patrol, PatrolPoint


def start(user: User) -> Patrol:
    patrol = Patrol(inspector_id=user.id, started_at=utcnow())
    db.session.add(patrol)
    db.session.flush()
    return patrol


def _own(patrol_id: int, user: User, lock: bool = False) -> Patrol:
    q = select(Patrol).where(Patrol.id == patrol_id, Patrol.inspector_id == user.id)
    patrol = db.session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if patrol is None:
        raise NotFound(f"No patrol {patrol_id} of yours")
    return patrol


def add_points(patrol_id: int, user: User, seq: int, points: list[dict]) -> dict:
    """Store one batch; a batch whose seq is already stored is a no-op (a retry)."""
    patrol = _own(patrol_id, user)
    stored = db.session.execute(select(func.count()).select_from(PatrolPoint)
                                .where(PatrolPoint.patrol_id == patrol.id, PatrolPoint.seq == seq)).scalar_one()
    if stored:
        return {"patrol_id": patrol.id, "seq": seq, "stored": 0, "duplicate": True, "points": _count(patrol)}
    if patrol.ended_at is not None:
        raise Conflict("The patrol has ended")
    rows = [{"patrol_id": patrol.id, "seq": seq, "idx": i, "geom": f"SRID=4326;POINT({p['lon']} {p['lat']})",
             "accuracy_m": p.get("accuracy_m"), "recorded_at": p["recorded_at"]} for i, p in enumerate(points)]
    from sqlalchemy.dialects.postgresql import insert
    result = db.session.execute(insert(PatrolPoint).values(rows).on_conflict_do_nothing()
                                .returning(PatrolPoint.idx)).all()
    return {"patrol_id": patrol.id, "seq": seq, "stored": len(result), "duplicate": not result,
            "points": _count(patrol)}


def _count(patrol: Patrol) -> int:
    return db.session.execute(select(func.count()).select_from(PatrolPoint)
                              .where(PatrolPoint.patrol_id == patrol.id)).scalar_one()


def end(patrol_id: int, user: User) -> Patrol:
    """Close the patrol: the track as a line, its length, and the grids it visited per local day."""
    patrol = _own(patrol_id, user, lock=True)
    if patrol.ended_at is None:
        patrol.ended_at = utcnow()
        db.session.flush()
        tz = catalog.work_calendar().tz.key
        db.session.execute(text("""
            UPDATE patrols p SET track = t.line, length_m = coalesce(ST_Length(t.line::geography), 0)
            FROM (SELECT CASE WHEN count(*) >= 2 THEN ST_MakeLine(geom ORDER BY seq, idx) END AS line
                  FROM patrol_points WHERE patrol_id = :id) t
            WHERE p.id = :id
        """), {"id": patrol.id})
        # a grid is visited on a local day when the track meets it: at the time of the first fix
        # inside it, or, when it was only crossed between two fixes, of the fix before the crossing
        db.session.execute(text("""
            WITH p AS (SELECT geom, recorded_at, row_number() OVER (ORDER BY seq, idx) AS n
                       FROM patrol_points WHERE patrol_id = :id),
            seg AS (SELECT a.recorded_at AS at, coalesce(ST_MakeLine(a.geom, b.geom), a.geom) AS geom
                    FROM p a LEFT JOIN p b ON b.n = a.n + 1),
            hits AS (SELECT g.code, p.recorded_at AS at, true AS inside
                     FROM p JOIN grids g ON g.geom && p.geom AND ST_Intersects(g.geom, p.geom)
                     UNION ALL
                     SELECT g.code, seg.at, false
                     FROM seg JOIN grids g ON g.geom && seg.geom AND ST_Intersects(g.geom, seg.geom))
            INSERT INTO grid_visits (patrol_id, grid_code, day, inspector_id, first_at)
            SELECT :id, code, day, :inspector, coalesce(min(at) FILTER (WHERE inside), min(at))
            FROM (SELECT code, at, inside, (at AT TIME ZONE :tz)::date AS day FROM hits) h
            GROUP BY code, day
            ON CONFLICT DO NOTHING
        """), {"id": patrol.id, "tz": tz, "inspector": user.id})
        db.session.refresh(patrol)
    return patrol


def grid_codes(patrol: Patrol) -> list[str]:
    return list(db.session.execute(select(GridVisit.grid_code).where(GridVisit.patrol_id == patrol.id)
                                   .order_by(GridVisit.grid_code).distinct()).scalars())


def _area_patterns(area: str | None, scope) -> list[str]:
    """The grid-code prefixes of an area as far as it lies in the scope (core.authz.scope_within)."""
    return like_patterns(scope_within(scope, area))


def coverage(day: date, area: str | None, user: User) -> dict:
    """Per grid of the area: responsible inspectors (active ones: a deactivated account patrols nothing),
    and whether (by whom, when) a track visited it."""
    area = area or None
    patterns = _area_patterns(area, user.scope)
    # the inspectors' grids and the day's visits read once for the area and joined to its grids (a
    # lookup of each per grid read every user's grid list again: 45 s for a district of 25,000 grids
    # with 4,000 inspectors, 0.13 s so; docs/performance.md, thirteenth round)
    rows = db.session.execute(text("""
        WITH g AS (SELECT code, name FROM grids WHERE code LIKE ANY(CAST(:prefixes AS text[]))),
        r AS (SELECT c AS code, array_agg(DISTINCT u.id ORDER BY u.id) AS ids
              FROM users u CROSS JOIN LATERAL unnest(u.grid_codes) AS c
              WHERE 'inspector' = ANY(u.roles) AND u.active AND c LIKE ANY(CAST(:prefixes AS text[])) GROUP BY c),
        v AS (SELECT v.grid_code AS code,
                     json_agg(json_build_object('inspector_id', v.inspector_id, 'first_at', v.first_at)
                              ORDER BY v.first_at) AS visits
              FROM grid_visits v WHERE v.day = :day AND v.grid_code LIKE ANY(CAST(:prefixes AS text[]))
              GROUP BY v.grid_code)
        SELECT g.code, g.name, coalesce(r.ids, '{}') AS responsible, coalesce(v.visits, '[]') AS visits
        FROM g LEFT JOIN r ON r.code = g.code LEFT JOIN v ON v.code = g.code ORDER BY g.code
    """), {"prefixes": patterns, "day": day}).all()
    grids = [{"code": r.code, "name": r.name, "responsible": list(r.responsible), "visited": bool(r.visits),
              "visits": r.visits} for r in rows]
    responsible = [g for g in grids if g["responsible"]]
    base = responsible or grids
    visited = sum(1 for g in base if g["visited"])
    return {"date": day, "area": area, "grids": grids, "responsibility_grids": len(responsible),
            "total": len(base), "visited": visited, "coverage_rate": round(visited / len(base), 4) if base else None}


def patrols(day: date, inspector_id: int | None, area: str | None, user: User) -> list[dict]:
    """The patrols of a local day (started on it, or visiting grids on it) that the caller may see: those
    visiting a grid of the area (within the scope), or of an inspector whose scope lies in it. A running
    patrol shows the track and length of its points so far."""
    patterns = _area_patterns(area or None, user.scope)
    tz = catalog.work_calendar().tz
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    query = text(f"""
        SELECT p.id, p.inspector_id, u.display_name AS inspector_name, p.started_at, p.ended_at,
               CASE WHEN p.ended_at IS NULL THEN coalesce(ST_Length(live.line::geography), 0)
                    ELSE p.length_m END AS length_m,
               coalesce((SELECT array_agg(DISTINCT v.grid_code ORDER BY v.grid_code) FROM grid_visits v
                         WHERE v.patrol_id = p.id AND v.grid_code LIKE ANY(CAST(:scope AS text[]))), '{{}}')
                 AS grid_codes,
               CASE WHEN p.ended_at IS NULL THEN live.line ELSE p.track END AS track
        FROM patrols p JOIN users u ON u.id = p.inspector_id
        LEFT JOIN LATERAL (SELECT CASE WHEN count(*) >= 2 THEN ST_MakeLine(pt.geom ORDER BY pt.seq, pt.idx) END
                           AS line
                           FROM patrol_points pt WHERE pt.patrol_id = p.id AND p.ended_at IS NULL) live ON true
        WHERE ((p.started_at >= :start AND p.started_at < :end)
               OR EXISTS (SELECT 1 FROM grid_visits v WHERE v.patrol_id = p.id AND v.day = :day))
          AND (EXISTS (SELECT 1 FROM grid_visits v WHERE v.patrol_id = p.id
                       AND v.grid_code LIKE ANY(CAST(:patterns AS text[])))
               OR EXISTS (SELECT 1 FROM unnest(u.scope) AS s(code) WHERE s.code LIKE ANY(CAST(:patterns AS text[]))))
          {"AND p.inspector_id = :inspector" if inspector_id is not None else ""}
        ORDER BY p.started_at, p.id
    """).columns(track=Geometry("LINESTRING", srid=4326))
    params = {"start": start, "end": end, "day": day, "patterns": patterns, "scope": like_patterns(user.scope)}
    if inspector_id is not None:
        params["inspector"] = inspector_id
    return [dict(r) for r in db.session.execute(query, params).mappings()]
