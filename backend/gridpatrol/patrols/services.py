"""Patrols: the track an inspector walks, stored in ordered batches, and the grids it visited."""
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, text

from ..auth.models import User
from ..catalog import services as catalog
from ..core.authz import code_in_scope, like_patterns
from ..core.db import utcnow
from ..core.errors import Conflict, NotFound, invalid
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
        # a grid is visited when the track crosses it, at the time of the first fix inside it (or,
        # when it was only crossed between fixes, the fix before the crossing)
        db.session.execute(text("""
            INSERT INTO grid_visits (patrol_id, grid_code, day, inspector_id, first_at)
            SELECT :id, g.code, (min(coalesce(inside.at, before.at)) AT TIME ZONE :tz)::date, :inspector,
                   min(coalesce(inside.at, before.at))
            FROM patrols p
            JOIN grids g ON g.geom && coalesce(p.track, (SELECT ST_Collect(geom) FROM patrol_points WHERE patrol_id = :id))
                        AND ST_Intersects(g.geom, coalesce(p.track, (SELECT ST_Collect(geom) FROM patrol_points
                                                                      WHERE patrol_id = :id)))
            LEFT JOIN LATERAL (SELECT min(pp.recorded_at) AS at FROM patrol_points pp
                               WHERE pp.patrol_id = :id AND ST_Intersects(g.geom, pp.geom)) inside ON true
            LEFT JOIN LATERAL (SELECT min(pp.recorded_at) AS at FROM patrol_points pp
                               WHERE pp.patrol_id = :id) before ON true
            WHERE p.id = :id
            GROUP BY g.code
            ON CONFLICT DO NOTHING
        """), {"id": patrol.id, "tz": tz, "inspector": user.id})
        db.session.refresh(patrol)
    return patrol


def grid_codes(patrol: Patrol) -> list[str]:
    return list(db.session.execute(select(GridVisit.grid_code).where(GridVisit.patrol_id == patrol.id)
                                   .order_by(GridVisit.grid_code).distinct()).scalars())


def coverage(day: date, area: str | None, user: User) -> dict:
    """Per grid of the area: responsible inspectors, and whether (by whom, when) a track visited it."""
    area = area or None
    scope = user.scope
    if area and not code_in_scope(scope, area):
        raise NotFound(f"No area {area}")
    patterns = [area + "%"] if area else like_patterns(scope)
    rows = db.session.execute(text("""
        WITH g AS (SELECT code, name FROM grids WHERE code LIKE ANY(CAST(:prefixes AS text[])))
        SELECT g.code, g.name,
               coalesce((SELECT array_agg(u.id ORDER BY u.id) FROM users u
                         WHERE g.code = ANY(u.grid_codes) AND 'inspector' = ANY(u.roles)), '{}') AS responsible,
               coalesce((SELECT json_agg(json_build_object('inspector_id', v.inspector_id, 'first_at', v.first_at)
                                         ORDER BY v.first_at)
                         FROM grid_visits v WHERE v.grid_code = g.code AND v.day = :day), '[]') AS visits
        FROM g ORDER BY g.code
    """), {"prefixes": patterns, "day": day}).all()
    grids = [{"code": r.code, "name": r.name, "responsible": list(r.responsible), "visited": bool(r.visits),
              "visits": r.visits} for r in rows]
    responsible = [g for g in grids if g["responsible"]]
    base = responsible or grids
    visited = sum(1 for g in base if g["visited"])
    return {"date": day, "area": area, "grids": grids, "responsibility_grids": len(responsible),
            "total": len(base), "visited": visited, "coverage_rate": round(visited / len(base), 4) if base else None}
