"""Teams, and the routing that suggests them for a case."""
from sqlalchemy import func, select

from ..cases.states import OPEN
from ..core.authz import area_overlaps_scope, code_in_scope
from ..core.errors import Conflict, Forbidden, NotFound, invalid
from ..extensions import db
from ..grids.models import AdminArea, Grid
from .models import Team


def visible_teams(scope, include_inactive: bool = False) -> list[Team]:
    q = select(Team).order_by(Team.id)
    if not include_inactive:
        q = q.where(Team.active)
    return [t for t in db.session.execute(q).scalars() if team_in_scope(t, scope)]


def list_teams(scope, page: int, per_page: int, include_inactive: bool = False) -> tuple[list[Team], int]:
    teams = visible_teams(scope, include_inactive)
    return teams[(page - 1) * per_page:page * per_page], len(teams)


def team_in_scope(team: Team, scope) -> bool:
    return any(area_overlaps_scope(scope, c) for c in (*team.area_codes, *team.grid_codes))


def get_team(team_id: int, scope) -> Team:
    team = db.session.get(Team, team_id)
    if team is None or not team_in_scope(team, scope):
        raise NotFound(f"No team {team_id}")
    return team


def _check(team_id: int | None, name: str, area_codes, grid_codes, category_codes, actor) -> None:
    """The rules of a team, for a new one and a changed one alike."""
    from ..catalog.models import Category

    for field, codes in (("area_codes", area_codes), ("grid_codes", grid_codes)):
        outside = [c for c in codes if not code_in_scope(actor.scope, c)]
        if outside:
            raise invalid(field, f"outside your scope: {', '.join(outside)}")
    if not area_codes and not grid_codes:
        raise invalid("area_codes", "a team serves at least one area or grid")
    if area_codes:
        known = set(db.session.execute(select(AdminArea.code).where(AdminArea.code.in_(area_codes))).scalars())
        if set(area_codes) - known:
            raise invalid("area_codes", f"unknown areas: {', '.join(sorted(set(area_codes) - known))}")
    if grid_codes:
        known = set(db.session.execute(select(Grid.code).where(Grid.code.in_(grid_codes))).scalars())
        if set(grid_codes) - known:
            raise invalid("grid_codes", f"unknown grids: {', '.join(sorted(set(grid_codes) - known))}")
    if category_codes:
        known = set(db.session.execute(select(Category.code).where(Category.code.in_(category_codes))).scalars())
        if set(category_codes) - known:
            raise invalid("category_codes", f"unknown categories: {', '.join(sorted(set(category_codes) - known))}")
    same_name = select(Team.id).where(func.lower(Team.name) == name.lower())
    if team_id is not None:
        same_name = same_name.where(Team.id != team_id)
    if db.session.execute(same_name).first():
        raise Conflict(f"A team named {name!r} exists", {"name": ["taken"]})


def create_team(*, name, kind, agencies, area_codes, grid_codes, category_codes, actor) -> Team:
    _check(None, name, area_codes, grid_codes, category_codes, actor)
    team = Team(name=name, kind=kind, agencies=agencies, area_codes=list(dict.fromkeys(area_codes)),
                grid_codes=list(dict.fromkeys(grid_codes)), category_codes=list(dict.fromkeys(category_codes)))
    db.session.add(team)
    db.session.flush()
    return team


def update_team(team_id: int, actor, changes: dict) -> Team:
    """Change a team: only the fields sent, checked as a new team is. A team the administrator sees
    but that also serves areas outside their scope is not theirs to change (403)."""
    team = get_team(team_id, actor.scope)
    if not all(code_in_scope(actor.scope, c) for c in (*team.area_codes, *team.grid_codes)):
        raise Forbidden(f"Team {team_id} also serves areas outside your scope; an administrator of all of them "
                        "may change it")
    merged = {k: changes.get(k, getattr(team, k)) for k in ("name", "area_codes", "grid_codes", "category_codes")}
    _check(team.id, actor=actor, **merged)
    for field in ("name", "kind", "agencies", "active"):
        if field in changes:
            setattr(team, field, changes[field])
    for field in ("area_codes", "grid_codes", "category_codes"):
        if field in changes:
            setattr(team, field, list(dict.fromkeys(changes[field])))
    db.session.flush()
    return team


def suggestions(case, scope) -> list[dict]:
    """Teams ranked for a case: competent for its category, serving its grid, least loaded.

    The score is 50 for competence, 30 for covering the grid (10 for the same district only),
    and up to 20 that shrinks as the team's open workload grows; each part comes with its reason.
    """
    from ..cases.models import Case

    teams = [t for t in visible_teams(scope) if t.kind not in ("patrol", "supervision")]
    # each team's open cases from ix_cases_team_status, a probe a team: grouped over every team, the
    # index's closed cases were read too (the statement 47 ms at 1,000,000 cases, so 0.3 ms; the whole
    # suggestion 59.2 ms, so 1.6: docs/performance.md, thirteenth round)
    open_cases = select(func.count()).where(Case.lead_team_id == Team.id, Case.status.in_(OPEN)).scalar_subquery()
    workload = dict(db.session.execute(select(Team.id, open_cases).where(Team.id.in_([t.id for t in teams]))).all())
    out = []
    for team in teams:
        reasons, score = [], 0.0
        competent = case.category_code in team.category_codes
        if competent:
            score += 50
            reasons.append(f"competent for category {case.category_code}")
        else:
            reasons.append(f"not listed as competent for category {case.category_code}")
        if team.covers(case.grid_code):
            score += 30
            reasons.append(f"serves grid {case.grid_code}")
        elif any(case.district_code.startswith(a[:6]) for a in (*team.area_codes, *team.grid_codes)):
            score += 10
            reasons.append(f"serves district {case.district_code}, not this grid")
        else:
            reasons.append("does not serve this area")
        load = workload.get(team.id, 0)
        score += 20 / (1 + load / 5)
        reasons.append(f"{load} open case{'s' if load != 1 else ''}")
        out.append({"team_id": team.id, "name": team.name, "kind": team.kind, "score": round(score, 1),
                    "reasons": reasons, "competent": competent, "covers": team.covers(case.grid_code),
                    "open_cases": load})
    out.sort(key=lambda s: (-s["score"], s["team_id"]))
    return out
