"""KPIs (综合评价) as a read model: one SQL over cases and their event log, as of a moment.

A case counts in period P by when it was registered (reports and rejections by their own
moment); every flag is read from the event log up to `as_of`, so a figure for a past moment
does not move when later events arrive. `case_ids()` runs the same SQL for one figure, which
is how every figure drills down to the cases behind it.
"""
import statistics
from datetime import datetime, timedelta

from sqlalchemy import text

from ..auth.models import User
from ..catalog import services as catalog
from ..core.authz import case_scope_sql
from ..core.db import utcnow
from ..core.errors import invalid
from ..extensions import db

GROUP_KEYS = {
    "team": "c.lead_team_id::text",
    "grid": "c.grid_code",
    "street": "c.street_code",
    "community": "c.community_code",
    "category": "c.category_code",
    "inspector": "c.reporter_id::text",
}
LABELS = {
    "team": "SELECT id::text AS key, name AS label FROM teams",
    "grid": "SELECT code AS key, name AS label FROM grids WHERE code = ANY(:keys)",
    "street": "SELECT code AS key, name AS label FROM admin_areas WHERE code = ANY(:keys)",
    "community": "SELECT code AS key, name AS label FROM admin_areas WHERE code = ANY(:keys)",
    "category": "SELECT code AS key, name_zh AS label FROM categories",
    "inspector": "SELECT id::text AS key, display_name AS label FROM users",
}
# each count's condition on the per-case facts
FIGURES = {
    "reports": "in_reports",
    "registered": "in_p",
    "rejected": "rejected_in_p",
    "dispatched": "in_p AND dispatched",
    "returned": "in_p AND returned",
    "handled": "in_p AND first_handle_at IS NOT NULL",
    "reworked": "in_p AND reworked",
    "closed": "in_p AND closed",
    "closed_on_time": "in_p AND closed AND last_handle_at <= deadline_handle",
    "open_overdue": "in_p AND NOT ended AND dispatched AND deadline_handle < :as_of",
}

_FACTS = """
WITH ev AS (
  SELECT e.case_id,
         min(e.at) FILTER (WHERE e.action = 'register') AS registered_at,
         min(e.at) FILTER (WHERE e.action = 'reject') AS rejected_at,
         bool_or(e.action = 'dispatch') AS dispatched,
         min(e.at) FILTER (WHERE e.action = 'dispatch') AS first_dispatch_at,
         bool_or(e.action = 'return') AS returned,
         min(e.at) FILTER (WHERE e.action = 'handle') AS first_handle_at,
         max(e.at) FILTER (WHERE e.action = 'handle') AS last_handle_at,
         bool_or(e.action = 'verify_fail') AS reworked,
         bool_or(e.action = 'verify_pass') AS closed,
         bool_or(e.action IN ('reject', 'merge', 'verify_pass')) AS ended
  FROM cases c JOIN case_events e ON e.case_id = c.id
  WHERE c.reported_at < :to AND e.at <= :as_of AND {scope}
  GROUP BY e.case_id
),
facts AS (
  SELECT c.id, {key} AS key, c.deadline_handle, ev.*,
         (c.reported_at >= :from AND c.reported_at < :to AND c.reported_at <= :as_of) AS in_reports,
         coalesce(ev.registered_at >= :from AND ev.registered_at < :to, false) AS in_p,
         coalesce(ev.rejected_at >= :from AND ev.rejected_at < :to, false) AS rejected_in_p
  FROM cases c JOIN ev ON ev.case_id = c.id
)
"""


def period(args: dict) -> tuple[datetime, datetime, datetime]:
    as_of = args.get("as_of") or utcnow()
    to = args.get("to") or as_of
    start = args.get("from") or to - timedelta(days=30)
    if start >= to:
        raise invalid("from", "from must be before to")
    return start, to, as_of


def _facts(user: User, group_by: str) -> tuple[str, dict]:
    scope_sql, params = case_scope_sql(user.scope)
    return _FACTS.format(scope=scope_sql, key=GROUP_KEYS[group_by]), params


def kpis(user: User, group_by: str, args: dict) -> dict:
    start, to, as_of = period(args)
    facts, params = _facts(user, group_by)
    counts = ",\n".join(f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in FIGURES.items())
    params.update({"from": start, "to": to, "as_of": as_of})
    rows = db.session.execute(text(facts + f"""
        SELECT key, {counts},
               array_agg(ARRAY[extract(epoch FROM first_dispatch_at), extract(epoch FROM first_handle_at)])
                 FILTER (WHERE in_p AND first_handle_at IS NOT NULL AND first_dispatch_at IS NOT NULL) AS spans
        FROM facts GROUP BY key
        HAVING count(*) FILTER (WHERE in_reports OR in_p OR rejected_in_p) > 0
        ORDER BY key NULLS LAST
    """), params).mappings().all()
    labels = _labels(group_by, [r["key"] for r in rows if r["key"] is not None])
    cal = catalog.work_calendar()
    out = []
    for r in rows:
        row = {"key": r["key"], "label": labels.get(r["key"], "—" if r["key"] is None else r["key"])}
        row.update({name: r[name] for name in FIGURES})
        row.update(rates(row))
        hours = sorted(cal.working_hours_between(datetime.fromtimestamp(float(a), tz=start.tzinfo),
                                                 datetime.fromtimestamp(float(b), tz=start.tzinfo))
                       for a, b in (r["spans"] or []))
        row["handling_hours_p50"] = round(statistics.median(hours), 2) if hours else None
        row["handling_hours_p90"] = round(_p90(hours), 2) if hours else None
        out.append(row)
    return {"group_by": group_by, "from": start, "to": to, "as_of": as_of, "rows": out}


def _p90(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def rates(r: dict) -> dict:
    def ratio(a, b):
        return round(a / b, 4) if b else None
    return {
        "valid_report_rate": ratio(r["registered"], r["registered"] + r["rejected"]),
        "closure_rate": ratio(r["closed"], r["registered"]),
        "on_time_rate": ratio(r["closed_on_time"], r["closed"] + r["open_overdue"]),
        "rework_rate": ratio(r["reworked"], r["handled"]),
        "accurate_dispatch_rate": (round(1 - r["returned"] / r["dispatched"], 4) if r["dispatched"] else None),
    }


def _labels(group_by: str, keys: list[str]) -> dict:
    return dict(db.session.execute(text(LABELS[group_by]), {"keys": keys}).all())


def case_ids(user: User, args: dict) -> list[int]:
    """The cases behind one figure: same SQL, same period, one group key."""
    group_by = args.get("group_by") or "team"
    start, to, as_of = period(args)
    facts, params = _facts(user, group_by)
    params.update({"from": start, "to": to, "as_of": as_of})
    key_cond = ""
    if "key" in args:
        key_cond = "AND key IS NULL" if args["key"] in ("", "null", "None") else "AND key = :key"
        params["key"] = args["key"]
    return list(db.session.execute(text(facts + f"SELECT id FROM facts WHERE ({FIGURES[args['kpi']]}) {key_cond}"),
                                   params).scalars())
