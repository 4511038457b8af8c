"""Users, passwords, tokens and the sign-in limiter."""
import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import any_, delete, func, or_, select, text, update
from sqlalchemy.orm import selectinload

from ..catalog import services as catalog
from ..core.authz import code_in_scope, like_patterns
from ..core.db import utcnow
from ..core.errors import Conflict, NotFound, RateLimited, Unauthorized, invalid
from ..extensions import db
from .models import ROLES, LoginAttempt, Token, User

# argon2id: memory-hard, so a leaked table resists GPU guessing. OWASP's first recommended setting
# (19 MiB, 2 passes, 1 lane): the library's default of 64 MiB made every sign-in lift a server
# process's memory by 64 MB, once per thread signing in at the same moment. At most two hashes run at
# once per process, so a burst of sign-ins queues instead of adding memory. Hashes made with other
# settings still verify, and are made again with these at the next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_hashing = threading.BoundedSemaphore(2)
# a hash to verify against when the user is unknown, so both answers take the same time
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user as a request sees them: what authorisation and the services read
    (roles, scope, responsibility grids, teams), not a row to change (that is `User`)."""
    id: int
    username: str
    display_name: str
    roles: list[str]
    scope: list[str]
    grid_codes: list[str]
    team_ids: list[int]

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


# one round trip on every request, read afresh each time (never cached): a revoked or expired
# token, a deactivated user, a changed role, scope or team count from the very next request. It
# carries the calendar stamp too (a primary-key read in the same round trip), so the calendar a
# process keeps is checked against every change, by any process, without a statement of its own.
_CALLER_SQL = """
SELECT u.id, u.username, u.display_name, u.roles, u.scope, u.grid_codes,
       ARRAY(SELECT ut.team_id FROM user_teams ut WHERE ut.user_id = u.id ORDER BY ut.team_id) AS team_ids,
       {calendar_stamp} AS calendar_stamp
FROM tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active
""".format(calendar_stamp=catalog.CALENDAR_STAMP_SQL.replace("%", "%%"))


def user_for_token(secret: str) -> Caller | None:
    """The caller a bearer secret stands for; None when it is unknown, expired, revoked or its
    user inactive."""
    row = db.session.connection().exec_driver_sql(_CALLER_SQL, {"token_hash": _token_hash(secret)}).first()
    if row is None:
        return None
    catalog.calendar_stamp_read(row.calendar_stamp)
    return Caller(*row[:-1])


def _limited(key: str, limit: int) -> bool:
    """Record one attempt under `key`; True when the last minute already holds `limit` of them.

    Runs in its own short transaction, serialised per key by an advisory lock, so the count is
    shared by every server process and survives the request's rollback.
    """
    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
        recent = conn.execute(
            select(func.count()).select_from(LoginAttempt)
            .where(LoginAttempt.key == key, LoginAttempt.at > func.now() - timedelta(minutes=1))
        ).scalar_one()
        if recent >= limit:
            return True
        conn.execute(LoginAttempt.__table__.insert().values(key=key))
    return False


def _forget_attempt(key: str) -> None:
    with db.engine.begin() as conn:
        newest = select(func.max(LoginAttempt.id)).where(LoginAttempt.key == key).scalar_subquery()
        conn.execute(delete(LoginAttempt).where(LoginAttempt.id == newest))
        conn.execute(delete(LoginAttempt).where(LoginAttempt.at < func.now() - timedelta(days=1)))


def sign_in(username: str, password: str, address: str) -> tuple[str, Token]:
    """A new bearer token for good credentials. Failed attempts count against the account and
    the address; a successful one is forgotten."""
    limit = current_app.config["LOGIN_ATTEMPTS_PER_MINUTE"]
    keys = [f"user:{username.lower()}", f"addr:{address}"]
    for key in keys:
        if _limited(key, limit):
            raise RateLimited("Too many sign-in attempts; wait a minute", headers={"Retry-After": "60"})
    user = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()
    try:
        with _hashing:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise Unauthorized("Unknown user or wrong password")
    for key in keys:
        _forget_attempt(key)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    secret = secrets.token_urlsafe(32)
    token = Token(user=user, token_hash=_token_hash(secret),
                  expires_at=utcnow() + timedelta(hours=current_app.config["TOKEN_TTL_HOURS"]))
    db.session.add(token)
    db.session.flush()
    return secret, token


def revoke(secret: str) -> None:
    token = db.session.execute(select(Token).where(Token.token_hash == _token_hash(secret))).scalar_one()
    token.revoked_at = utcnow()


def create_user(*, username: str, password: str, display_name: str | None, roles: list[str], scope: list[str],
                team_ids: list[int] = (), grid_codes: list[str] = (), actor: Caller | None = None) -> User:
    _check_roles(roles)
    if actor is not None:
        _check_scope(scope, actor)
    if db.session.execute(select(User.id).where(func.lower(User.username) == username.lower())).first():
        raise Conflict(f"The username {username!r} is taken", {"username": ["taken"]})
    teams = _teams(team_ids, actor)
    _check_grid_codes(grid_codes, scope if actor is not None else None)
    user = User(username=username, password_hash=hash_password(password), display_name=display_name or username,
                roles=list(dict.fromkeys(roles)), scope=list(dict.fromkeys(scope)), grid_codes=list(grid_codes),
                teams=teams)
    db.session.add(user)
    db.session.flush()
    return user


def _check_roles(roles) -> None:
    if any(r not in ROLES for r in roles):
        raise invalid("roles", f"unknown role; roles are {', '.join(ROLES)}")


def _check_scope(scope, actor: Caller) -> None:
    """An administrator gives only what lies inside their own scope."""
    outside = [c for c in scope if not code_in_scope(actor.scope, c)]
    if outside:
        raise invalid("scope", f"outside your own scope: {', '.join(outside)}")


def _teams(team_ids, actor: Caller | None) -> list:
    """The teams of `team_ids`; a team the administrator cannot see does not exist for them (422)."""
    from ..teams.models import Team
    from ..teams.services import team_in_scope

    teams = list(db.session.execute(select(Team).where(Team.id.in_(list(team_ids)))
                                    .order_by(Team.id)).scalars()) if team_ids else []
    if actor is not None:
        teams = [t for t in teams if team_in_scope(t, actor.scope)]
    if len(teams) != len(set(team_ids)):
        raise invalid("team_ids", "unknown team")
    return teams


def _check_grid_codes(grid_codes, scope) -> None:
    """Responsibility grids are known grids, inside the user's own scope when an admin gives them."""
    from ..grids.models import Grid

    codes = set(grid_codes)
    if not codes:
        return
    known = set(db.session.execute(select(Grid.code).where(Grid.code.in_(codes))).scalars())
    wrong = sorted(c for c in codes if c not in known or (scope is not None and not code_in_scope(scope, c)))
    if wrong:
        raise invalid("grid_codes", f"unknown grids or outside the user's scope: {', '.join(wrong)}")


def _within(scope):
    """SQL: every code of the user's scope lies inside `scope` (a user with a wider or another scope,
    or with the whole deployment when `scope` is not, is not the administrator's to see)."""
    return text("NOT EXISTS (SELECT 1 FROM unnest(users.scope) AS s(code) "
                "WHERE NOT s.code LIKE ANY(CAST(:within_patterns AS text[])))"
                ).bindparams(within_patterns=like_patterns(scope))


def list_users(actor: Caller, role: str | None, q: str | None, page: int, per_page: int) -> tuple[list[User], int]:
    """The users an administrator manages: those whose whole scope lies inside the administrator's."""
    query = select(User).where(_within(actor.scope)).options(selectinload(User.teams))
    if role:
        query = query.where(any_(User.roles) == role)
    if q:
        query = query.where(or_(User.username.icontains(q, autoescape=True),
                                User.display_name.icontains(q, autoescape=True)))
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = db.session.execute(query.order_by(func.lower(User.username), User.id)
                              .offset((page - 1) * per_page).limit(per_page)).scalars()
    return list(rows), total


def get_user(user_id: int, actor: Caller) -> User:
    """A user the administrator manages (their scope lies inside the administrator's); else 404."""
    user = db.session.execute(select(User).where(User.id == user_id, _within(actor.scope))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user {user_id}")
    return user


def update_user(user_id: int, actor: Caller, changes: dict) -> User:
    """Change a user. Deactivating them or giving a new password revokes every token they hold; an
    administrator keeps their own admin role and their own access."""
    user = get_user(user_id, actor)
    if "roles" in changes:
        _check_roles(changes["roles"])
        if user.id == actor.id and "admin" not in changes["roles"]:
            raise invalid("roles", "you cannot remove your own admin role")
    if user.id == actor.id and changes.get("active") is False:
        raise invalid("active", "you cannot deactivate yourself")
    scope = changes.get("scope", user.scope)
    if "scope" in changes:
        _check_scope(changes["scope"], actor)
    if "grid_codes" in changes:
        _check_grid_codes(changes["grid_codes"], scope)
    elif "scope" in changes:
        outside = [c for c in user.grid_codes if not code_in_scope(scope, c)]
        if outside:
            raise invalid("scope", "the user's responsibility grids would lie outside it: "
                                   f"{', '.join(outside)} (change grid_codes too)")
    if "team_ids" in changes:
        from ..teams.services import team_in_scope
        # teams the administrator cannot see are not theirs to take away
        kept = [t for t in user.teams if not team_in_scope(t, actor.scope)]
        user.teams = sorted({t.id: t for t in (*_teams(changes["team_ids"], actor), *kept)}.values(),
                            key=lambda t: t.id)
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if "roles" in changes:
        user.roles = list(dict.fromkeys(changes["roles"]))
    if "scope" in changes:
        user.scope = list(dict.fromkeys(changes["scope"]))
    if "grid_codes" in changes:
        user.grid_codes = list(dict.fromkeys(changes["grid_codes"]))
    revoke_all = False
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        revoke_all = True
    if "active" in changes:
        revoke_all = revoke_all or not changes["active"]
        user.active = changes["active"]
    db.session.flush()
    if revoke_all:
        revoke_tokens(user)
    return user


def revoke_tokens(user: User) -> int:
    """Every live token of the user is dead from now on."""
    return db.session.execute(update(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
                              .values(revoked_at=utcnow())).rowcount
