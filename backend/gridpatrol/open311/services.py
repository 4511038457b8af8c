"""Open311 GeoReport v2 over the case workflow: services, requests, tokens, and the keys.

Choices the specification leaves to the server:

* **jurisdiction_id** — the deployment serves one jurisdiction. When `OPEN311_JURISDICTION_ID`
  is set, a jurisdiction_id given with a call must equal it (else 404); when it is not set, any
  value is accepted and ignored. It is never required.
* **Services** are the public, active categories: service_code is the category code, the name
  and group (the major class) are Chinese, or English with `locale=en…` (default:
  `OPEN311_LOCALE`, zh-CN). metadata is true where `definitions.py` asks extra questions.
* **service_request_id** is the case number (the number a citizen quotes on the hotline).
  A POST answers it *and* a token: the case exists at once (type `realtime`), and a client that
  keeps tokens can resolve one at `tokens/{token}` whenever it likes.
* **Published requests** are the cases of public categories from every source (inspectors,
  hotline, Open311), as the case reads now: open while in an open state, closed when closed,
  rejected or merged; status_notes tell the state in words, with the team's feedback note
  once handled and the reason when not accepted; agency_responsible is the lead team's name;
  expected_datetime is the handling deadline. Contact details are never published.
* **Location** — lat/long are placed as any report (grid, snapped, or outside and flagged).
  A request with only address_string cannot be geocoded here: its case gets the centre of
  the key's area as a stand-in point, no grid, and the flag `address_only`, so the dispatcher
  places it; its lat/long are published empty.
"""
import hashlib
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import aliased

from ..cases import services as cases
from ..cases.models import Case, CaseEvent
from ..cases.states import OPEN
from ..catalog.models import CatalogVersion, Category
from ..core.authz import area_overlaps_scope, code_in_scope, scope_clause
from ..core.db import utcnow
from ..core.errors import BadRequest, Forbidden, NotFound, RateLimited, invalid
from ..extensions import db
from ..grids.models import Grid
from ..teams.models import Team
from .definitions import NUMBER_RANGES, Attribute, attributes_for
from .models import ApiKey, KeyUse, ServiceRequest
from .schemas import no_control_characters, one_line

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
WINDOW = timedelta(days=90)
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")
ADDRESS_ONLY = "address_only"


# ---------------------------------------------------------------- the door's settings

def check_jurisdiction(jurisdiction_id: str | None) -> None:
    served = current_app.config.get("OPEN311_JURISDICTION_ID") or ""
    if served and jurisdiction_id and jurisdiction_id.strip() != served:
        raise NotFound(f"jurisdiction_id {jurisdiction_id!r} not found: this endpoint serves {served!r}")


def is_english(locale: str | None) -> bool:
    locale = locale or current_app.config.get("OPEN311_LOCALE") or "zh-CN"
    return locale.strip().lower().startswith("en")


def _w3c(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).isoformat(timespec="seconds")


def discovery(endpoint_url: str) -> dict:
    changed = db.session.execute(select(func.max(CatalogVersion.created_at))).scalar_one()
    changeset = _w3c(changed) or "1970-01-01T00:00:00+00:00"
    cfg = current_app.config
    return {
        "changeset": changeset,
        "contact": cfg.get("OPEN311_CONTACT") or "The city management dispatch centre (数字城管指挥中心)",
        "key_service": cfg.get("OPEN311_KEY_SERVICE") or "API keys are issued by the system administrator",
        "endpoints": [{
            "specification": SPECIFICATION, "url": cfg.get("OPEN311_BASE_URL") or endpoint_url,
            "changeset": changeset, "type": cfg.get("OPEN311_ENDPOINT_TYPE") or "production",
            "formats": ["text/xml", "application/json"],
        }],
    }


# ---------------------------------------------------------------- services

def _public_categories():
    return select(Category).where(Category.public.is_(True), Category.retired_in_version.is_(None))


def public_category(service_code: str) -> Category:
    category = db.session.execute(_public_categories().where(Category.code == service_code)).scalar_one_or_none()
    if category is None:
        raise NotFound(f"service_code {service_code!r} not found")
    return category


def _service(category: Category, en: bool) -> dict:
    kind = {"part": ("部件", "city asset"), "event": ("事件", "event")}[category.kind]
    return {
        "service_code": category.code,
        "service_name": category.name_en if en else category.name_zh,
        "description": category.filing_condition or None,
        "metadata": bool(attributes_for(category.code)),
        "type": "realtime",
        "keywords": ", ".join(k for k in (category.name_zh if en else category.name_en, kind[1 if en else 0]) if k),
        "group": (category.major_name_en if en else category.major_name_zh) or None,
    }


def service_list(en: bool) -> list[dict]:
    return [_service(c, en) for c in db.session.execute(_public_categories().order_by(Category.code)).scalars()]


def _attribute(a: Attribute, en: bool) -> dict:
    pick = 1 if en else 0
    out = {
        "variable": a.variable, "code": a.code, "datatype": a.datatype, "required": a.required,
        "datatype_description": a.datatype_description[pick] if a.datatype_description else None,
        "order": a.order, "description": a.description[pick],
    }
    if a.values:
        out["values"] = [{"key": key, "name": (en_name if en else zh_name)} for key, zh_name, en_name in a.values]
    return out


def service_definition(service_code: str, en: bool) -> dict:
    category = public_category(service_code)
    return {"service_code": category.code,
            "attributes": [_attribute(a, en) for a in sorted(attributes_for(category.code), key=lambda a: a.order)]}


def _service_notice(category: Category, urgency: str, en: bool) -> str | None:
    limit = (category.limits or {}).get(urgency)
    if not limit:
        return None
    amount = limit["amount"]
    amount = int(amount) if float(amount).is_integer() else amount
    clock, unit = bool(limit.get("clock")), limit["unit"]
    if en:
        unit_words = {("hour", True): "hours", ("hour", False): "working hours",
                      ("day", True): "days", ("day", False): "working days"}[(unit, clock)]
        return f"Once accepted, the responsible team handles it within {amount} {unit_words}."
    unit_words = {("hour", True): "小时", ("hour", False): "个工作小时",
                  ("day", True): "天", ("day", False): "个工作日"}[(unit, clock)]
    notice = f"立案后派遣至处置部门，{amount}{unit_words}内处置完毕"
    return notice + (f"；结案标准：{category.closure_condition}" if category.closure_condition else "")


# ---------------------------------------------------------------- requests, as published

_STATUS_NOTES = {  # (zh, en); {team} is the lead team's name
    "reported": ("已受理，等待立案审核", "Received; awaiting review"),
    "registered": ("已立案，等待派遣", "Accepted; awaiting dispatch"),
    "dispatched": ("已派遣至{team}", "Sent to {team}"),
    "in_progress": ("{team}正在处置", "Being handled by {team}"),
    "handled": ("已处置，等待现场核查", "Handled; awaiting on-site verification"),
    "returned": ("正在重新派遣", "Being sent to another team"),
    "suspended": ("暂缓处理", "On hold"),
    "closed": ("已核查结案", "Fixed and verified"),
    "rejected": ("不予立案", "Not accepted"),
    "merged": ("与案件 {parent} 合并处理", "Duplicate of request {parent}"),
}


def _published():
    """Cases of public categories, with what a published request needs beside the case row."""
    parent = aliased(Case)
    return (select(Case, Category, Team.name.label("team_name"), parent.number.label("parent_number"),
                   ServiceRequest.media_url, func.ST_X(Case.location).label("lon"),
                   func.ST_Y(Case.location).label("lat"))
            .join(Category, Category.code == Case.category_code)
            .outerjoin(Team, Team.id == Case.lead_team_id)
            .outerjoin(parent, parent.id == Case.parent_id)
            .outerjoin(ServiceRequest, ServiceRequest.case_id == Case.id)
            .where(Category.public.is_(True)))


def _notes(case_ids: list[int]) -> dict[int, tuple[str, dict]]:
    """The latest feedback (handle) or rejection of each case: one query for the whole list."""
    if not case_ids:
        return {}
    ranked = (select(CaseEvent.case_id, CaseEvent.action, CaseEvent.payload,
                     func.row_number().over(partition_by=CaseEvent.case_id, order_by=CaseEvent.seq.desc()).label("n"))
              .where(CaseEvent.case_id.in_(case_ids), CaseEvent.action.in_(("handle", "reject"))).subquery())
    rows = db.session.execute(select(ranked).where(ranked.c.n == 1))
    return {r.case_id: (r.action, r.payload or {}) for r in rows}


def _status_notes(row, note: tuple[str, dict] | None, en: bool) -> str:
    case = row.Case
    words = _STATUS_NOTES[case.status][1 if en else 0].format(team=row.team_name or "", parent=row.parent_number or "")
    action, payload = note or (None, {})
    if case.status in ("handled", "closed") and action == "handle" and payload.get("note"):
        words += (": " if en else "：") + payload["note"]
    if case.status == "rejected" and action == "reject" and payload.get("reason"):
        words += (": " if en else "：") + payload["reason"]
    return words


def _request(row, note, en: bool) -> dict:
    case, category = row.Case, row.Category
    placed = ADDRESS_ONLY not in (case.location_flags or [])
    return {
        "service_request_id": case.number,
        "status": "open" if case.status in OPEN else "closed",
        "status_notes": _status_notes(row, note, en),
        "service_name": category.name_en if en else category.name_zh,
        "service_code": category.code,
        "description": case.description or None,
        "agency_responsible": row.team_name,
        "service_notice": _service_notice(category, case.urgency, en),
        "requested_datetime": _w3c(case.reported_at),
        "updated_datetime": _w3c(case.updated_at if case.status in OPEN else (case.closed_at or case.updated_at)),
        "expected_datetime": _w3c(case.deadline_handle),
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": round(row.lat, 7) if placed else None,
        "long": round(row.lon, 7) if placed else None,
        "media_url": row.media_url,
    }


def _requests(query, en: bool) -> list[dict]:
    rows = db.session.execute(query).all()
    notes = _notes([r.Case.id for r in rows if r.Case.status in ("handled", "closed", "rejected")])
    return [_request(r, notes.get(r.Case.id), en) for r in rows]


def request_list(args: dict, en: bool, now: datetime | None = None) -> list[dict]:
    """GET requests: by ids (which overrides every other filter), or within a window of at most
    90 days (the last 90 by default), newest first, at most OPEN311_MAX_REQUESTS (1000)."""
    newest_first = (Case.reported_at.desc(), Case.id.desc())
    if args.get("service_request_id"):
        ids = list(dict.fromkeys(args["service_request_id"]))
        return _requests(_published().where(Case.number.in_(ids)).order_by(*newest_first), en)
    start, end = args.get("start_date"), args.get("end_date")
    if start and end and end - start > WINDOW:
        raise BadRequest("start_date and end_date may not span more than 90 days",
                         {"end_date": ["at most 90 days after start_date"]})
    if start is None and end is None:
        start = (now or utcnow()) - WINDOW
    elif start is None:
        start = end - WINDOW
    elif end is None:
        end = start + WINDOW
    # the answer's cases picked from their own columns first, then only their rows joined to what a
    # request shows (sorting the window's whole rows spilled to disk: 90 days are ~120,000 cases at 1M)
    page = select(Case.id).where(Case.reported_at >= start,
                                 Case.category_code.in_(select(Category.code).where(Category.public.is_(True))))
    if end is not None:
        page = page.where(Case.reported_at <= end)
    if args.get("service_code"):
        page = page.where(Case.category_code.in_(args["service_code"]))
    statuses = set(args.get("status") or [])
    if statuses == {"open"}:
        page = page.where(Case.status.in_(OPEN))
    elif statuses == {"closed"}:
        page = page.where(Case.status.not_in(OPEN))
    limit = int(current_app.config.get("OPEN311_MAX_REQUESTS", 1000))
    page = page.order_by(*newest_first).limit(limit)
    return _requests(_published().where(Case.id.in_(page.scalar_subquery())).order_by(*newest_first), en)


def request_one(service_request_id: str, en: bool) -> list[dict]:
    found = _requests(_published().where(Case.number == service_request_id), en)
    if not found:
        raise NotFound(f"service_request_id {service_request_id!r} not found")
    return found


def request_for_token(token: str) -> list[dict]:
    number = db.session.execute(
        select(Case.number).join(ServiceRequest, ServiceRequest.case_id == Case.id)
        .where(ServiceRequest.token == token)).scalar_one_or_none()
    if number is None:
        raise NotFound(f"token {token!r} not found")
    return [{"service_request_id": number, "token": token}]


# ---------------------------------------------------------------- keys

def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_for(secret: str | None) -> ApiKey:
    """The live key for a secret: 403 when it is missing, unknown or revoked."""
    if not secret or not secret.strip():
        raise Forbidden("api_key is missing: ask the administrator for a key")
    key = db.session.execute(select(ApiKey).where(ApiKey.key_hash == _hash(secret.strip()),
                                                  ApiKey.revoked_at.is_(None))).scalar_one_or_none()
    if key is None:
        raise Forbidden("api_key is not valid (unknown or revoked)")
    return key


def count_use(key: ApiKey) -> None:
    """Record one POST with the key; 429 when the last minute already holds the limit.

    Its own short transaction, serialised per key by an advisory lock: the count is shared by every
    server process and a failed request still counts.
    """
    limit = int(current_app.config.get("OPEN311_REQUESTS_PER_MINUTE", 60))
    uses = KeyUse.__table__
    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"open311:{key.id}"})
        recent = conn.execute(select(func.count()).select_from(uses).where(
            uses.c.api_key_id == key.id, uses.c.at > func.now() - timedelta(minutes=1))).scalar_one()
        if recent >= limit:
            over = True
        else:
            over = False
            conn.execute(uses.insert().values(api_key_id=key.id))
            conn.execute(delete(uses).where(uses.c.api_key_id == key.id, uses.c.at < func.now() - timedelta(hours=1)))
    if over:
        raise RateLimited(f"This api_key may post {limit} requests a minute; wait a minute",
                          headers={"Retry-After": "60"})


def create_key(*, name: str, actor, scope: list[str] | None = None) -> tuple[str, ApiKey]:
    """A new key; the secret is returned this once and only its hash is kept."""
    scope = list(dict.fromkeys(scope or actor.scope))
    outside = [c for c in scope if not code_in_scope(actor.scope, c)]
    if outside:
        raise invalid("scope", f"outside your own scope: {', '.join(outside)}")
    secret = secrets.token_urlsafe(32)
    key = ApiKey(name=name, key_hash=_hash(secret), scope=scope, created_by=actor.id)
    db.session.add(key)
    db.session.flush()
    return secret, key


def visible_keys(actor) -> list[ApiKey]:
    keys = db.session.execute(select(ApiKey).order_by(ApiKey.id)).scalars()
    return [k for k in keys if any(area_overlaps_scope(actor.scope, c) for c in k.scope)]


def revoke_key(key_id: int, actor) -> None:
    key = db.session.get(ApiKey, key_id)
    if key is None or not any(area_overlaps_scope(actor.scope, c) for c in key.scope):
        raise NotFound(f"No Open311 key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()


# ---------------------------------------------------------------- posting a request

@dataclass(frozen=True)
class KeyReporter:
    """The reporter `cases.report()` sees for a citizen's request: nobody signed in, no role,
    placed within the key's areas."""
    scope: list[str]
    id: None = None
    roles: list[str] = field(default_factory=list)
    team_ids: list[int] = field(default_factory=list)

    def has_role(self, *roles: str) -> bool:
        return False


def _answer(a: Attribute, answers: list[str]):
    """One attribute's answer in its datatype; ValueError with the reason when it does not fit."""
    if a.datatype == "multivaluelist":
        wrong = [v for v in answers if v not in a.keys]
        if wrong:
            raise ValueError(f"not among {', '.join(a.keys)}: {', '.join(wrong)}")
        return list(dict.fromkeys(answers))
    if len(answers) > 1:
        raise ValueError("one value is expected")
    value = answers[0].strip()
    if a.datatype == "singlevaluelist":
        if value not in a.keys:
            raise ValueError(f"one of {', '.join(a.keys)}")
        return value
    if a.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError("a number is expected") from None
        low, high = NUMBER_RANGES.get(a.code, (-math.inf, math.inf))
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"a number from {low} to {high}" if math.isfinite(low) else "a finite number")
        return number
    if a.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("an ISO 8601 date-time is expected") from None
        return moment.isoformat()
    try:
        (one_line if a.datatype == "string" else no_control_characters)(value)
    except ValidationError as err:
        raise ValueError(err.messages[0]) from None
    if len(value) > (200 if a.datatype == "string" else 4000):
        raise ValueError("too long")
    return value


def _answers(service_code: str, given: dict[str, list[str]]) -> dict:
    """The attribute answers checked against the service definition: every problem at once."""
    known = {a.code: a for a in attributes_for(service_code)}
    answers, errors = {}, {}
    for code, values in given.items():
        a = known.get(code)
        if a is None:
            errors[f"attribute[{code}]"] = [f"service {service_code} has no attribute {code}"]
        elif a.variable:
            try:
                answers[code] = _answer(a, values)
            except ValueError as exc:
                errors[f"attribute[{code}]"] = [str(exc)]
    for a in known.values():
        if a.required and a.variable and a.code not in given:
            errors[f"attribute[{a.code}]"] = ["required"]
    if errors:
        raise BadRequest("Some attributes are missing or not valid", errors)
    return answers


def _area_point(scope: list[str]) -> tuple[float, float]:
    """A stand-in point for a request located by address only: the centre of the key's grids."""
    centre = func.ST_Centroid(func.ST_Collect(Grid.geom))
    lon, lat = db.session.execute(
        select(func.ST_X(centre), func.ST_Y(centre)).where(
            scope_clause(scope, district=Grid.district_code, street=Grid.street_code,
                         community=Grid.community_code, grid=Grid.code))).one()
    if lon is None:
        raise BadRequest("This jurisdiction cannot place an address; send lat and long",
                         {"address_string": ["send lat and long"]})
    return lon, lat


def create_request(key: ApiKey, body: dict, en: bool) -> list[dict]:
    """A citizen's request becomes a `reported` case (source open311) for the dispatchers to triage."""
    category = public_category(body["service_code"])
    attributes = _answers(category.code, body.get("attributes") or {})
    address_only = "lat" not in body
    lon, lat = _area_point(key.scope) if address_only else (body["lon"], body["lat"])
    contact = {k: body[k] for k in CONTACT_FIELDS if body.get(k)}
    name = " ".join(body[k] for k in ("first_name", "last_name") if body.get(k))
    if name:
        contact["name"] = name
    case = cases.report(KeyReporter(scope=list(key.scope)), {
        "category_code": category.code, "description": body.get("description") or "", "lon": lon, "lat": lat,
        "address": body.get("address_string"), "contact": contact or None,
        "location_flags": [ADDRESS_ONLY] if address_only else [],
        # kept in the report event for the dispatch centre (the contact is not: it stays on the case)
        "open311": {"api_key": key.name, "attributes": attributes, "media_url": body.get("media_url")},
    }, source="open311")
    if address_only:
        # the stand-in point says nothing about the grid: no grid, the dispatcher places the case
        case.grid_code = case.street_code = case.community_code = None
        case.location_flags = [ADDRESS_ONLY]
    token = secrets.token_urlsafe(16)
    db.session.add(ServiceRequest(case_id=case.id, token=token, api_key_id=key.id, attributes=attributes,
                                  media_url=body.get("media_url")))
    db.session.flush()
    return [{"service_request_id": case.number, "token": token,
             "service_notice": _service_notice(category, case.urgency, en), "account_id": None}]
