"""Who is calling, and what they may see.

Every `/api/v1` view is wrapped by `requires(...)`: it resolves the bearer token to a user,
checks the role, and leaves the user on `g.user`. Scope (the admin areas a user may see) is
applied by the services through `scope_clause()`, so lists, counts, maps and KPIs all filter
the same way and an object outside scope is simply not found.
"""
from functools import wraps

from flask import g, request
from sqlalchemy import false, or_, true

from .errors import Forbidden, NotFound, Unauthorized

LEVEL_BY_LENGTH = {6: "district", 9: "street", 12: "community", 15: "grid"}
EVERYWHERE = "*"  # a scope code for the whole deployment (a city-level administrator)


def requires(*roles: str):
    """Decorator: a signed-in user holding one of `roles` (any role when none are named)."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if roles and not user.has_role(*roles):
                raise Forbidden(f"This needs one of the roles: {', '.join(roles)}")
            return view(*args, **kwargs)
        wrapper._gridpatrol_roles = roles  # read by the endpoint × role tests
        return wrapper
    return decorator


def current_user():
    if "user" not in g:
        from ..auth.services import user_for_token
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("Send Authorization: Bearer <token>")
        user = user_for_token(secret.strip())
        if user is None:
            raise Unauthorized("The token is unknown, expired or revoked")
        g.user = user
    return g.user


def scope_clause(scope, *, district=None, street=None, community=None, grid=None):
    """A SQL condition: the row's area is inside one of the scope codes.

    Pass the columns the row has; a scope code is compared with the column of its level, and a
    finer column is used for a coarser code by prefix when the row has no column of that level.
    """
    columns = {"district": district, "street": street, "community": community, "grid": grid}
    if EVERYWHERE in scope:
        return true()
    conditions = []
    for code in scope:
        level = LEVEL_BY_LENGTH.get(len(code))
        column = columns.get(level)
        if column is not None:
            conditions.append(column == code)
            continue
        finer = next((c for lvl, c in columns.items() if c is not None
                      and list(LEVEL_BY_LENGTH.values()).index(lvl) > list(LEVEL_BY_LENGTH.values()).index(level)),
                     None) if level else None
        if finer is not None:
            conditions.append(finer.startswith(code, autoescape=True))
    return or_(*conditions) if conditions else false()


def covers(scope_code: str, code: str) -> bool:
    return scope_code == EVERYWHERE or code.startswith(scope_code)


def code_in_scope(scope, code: str | None) -> bool:
    """For one area or grid code: is it inside (or equal to) one of the scope codes?"""
    return bool(code) and any(covers(s, code) for s in scope)


def area_overlaps_scope(scope, code: str) -> bool:
    """An area is visible when it lies inside the scope or contains part of it."""
    return any(covers(s, code) or s.startswith(code) for s in scope)


def scope_within(scope, area: str | None) -> list[str]:
    """The part of a scope inside an area (a district, street, community or grid code): the area itself
    when the scope holds it, the scope's codes inside it when the area is larger; an area wholly outside
    the scope does not exist (NotFound). No area: the scope."""
    if not area or area == EVERYWHERE:
        return list(scope)
    if code_in_scope(scope, area):
        return [area]
    inner = [s for s in scope if s != EVERYWHERE and s.startswith(area)]
    if not inner:
        raise NotFound(f"No area {area}")
    return inner


def like_patterns(scope) -> list[str]:
    """Scope as LIKE patterns on a 15-digit grid code (every level is a prefix of it)."""
    return ["%" if s == EVERYWHERE else s + "%" for s in scope]


def grid_code_range(scope_code: str) -> tuple[str, str]:
    """The 15-digit grid codes a district, street, community or grid code begins, as the bounds of a
    range: an index on the code walks it under any collation (a LIKE prefix only under C)."""
    return scope_code.ljust(15, "0"), scope_code.ljust(15, "9")


_CASE_COLUMN = {6: "district_code", 9: "street_code", 12: "community_code", 15: "grid_code"}


def case_scope_sql(scope, alias: str = "c") -> tuple[str, dict]:
    """Scope as a SQL fragment on a cases row (for read models written in SQL)."""
    if EVERYWHERE in scope:
        return "true", {}
    parts, params = [], {}
    for i, code in enumerate(scope):
        column = _CASE_COLUMN.get(len(code))
        if column:
            parts.append(f"{alias}.{column} = :scope_{i}")
            params[f"scope_{i}"] = code
    return "(" + (" OR ".join(parts) or "false") + ")", params
