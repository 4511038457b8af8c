"""KPIs (综合评价) as a read model: one SQL over cases and their event log, as of a moment.

A case counts in period P by when it was registered (reports and rejections by their own
moment); every flag is read from the event log up to `as_of`, so a figure for a past moment
does not move when later events arrive. Each count goes to whoever acted at that step: under
`team`, a return, a feedback or a failed verification counts for the team that returned or
handled. `case_ids()` runs the same SQL for one figure, which is how every figure drills down to
the cases behind it.
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
    "team": None,  # a row per team the case was dispatched to: _TEAM_ROWS
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
# each count's condition on the facts of one (case, group key) row. Under group_by=team a case has a
# row for every team it was dispatched to: what a team did (returned, handled, had its handling
# failed) counts for that team; the case's own outcome (registered, closed, overdue) counts for the
# team responsible for it as of the moment (`current`), so a figure never counts a case twice.
FIGURES = {
    "reports": "current AND in_reports",
    "registered": "current AND in_p",
    "rejected": "current AND rejected_in_p",
    "dispatched": "in_p AND dispatch_at IS NOT NULL",
    "returned": "in_p AND returned",
    "handled": "in_p AND handle_at IS NOT NULL",
    "reworked": "in_p AND reworked",
    "closed": "current AND in_p AND closed",
    "closed_on_time": "current AND in_p AND closed AND last_handle_at <= deadline_handle",
    # open, in the handling stage (dispatched and not returned since), not paused, past the handling
    # deadline, and without a feedback given in time since the last dispatch
    "open_overdue": "current AND in_p AND NOT ended AND NOT suspended"
                    " AND last_dispatch_at > coalesce(last_return_at, '-infinity')"
                    " AND deadline_handle < :as_of"
                    " AND NOT coalesce(last_handle_at > last_dispatch_at AND last_handle_at <= deadline_handle, false)",
}

_FACTS = """
WITH ev AS (
  SELECT e.case_id,
         min(e.at) FILTER (WHERE e.action = 'register') AS registered_at,
         min(e.at) FILTER (WHERE e.action = 'reject') AS rejected_at,
         min(e.at) FILTER (WHERE e.action = 'dispatch') AS first_dispatch_at,
         max(e.at) FILTER (WHERE e.action IN ('dispatch', 'verify_fail')) AS last_dispatch_at,
         max(e.at) FILTER (WHERE e.action = 'return') AS last_return_at,
         min(e.at) FILTER (WHERE e.action = 'handle') AS first_handle_at,
         max(e.at) FILTER (WHERE e.action = 'handle') AS last_handle_at,
         bool_or(e.action = 'return') AS returned,
         bool_or(e.action = 'verify_fail') AS reworked,
         bool_or(e.action = 'verify_pass') AS closed,
         bool_or(e.action IN ('reject', 'merge', 'verify_pass')) AS ended,
         coalesce((array_agg(e.action ORDER BY e.seq DESC)
                   FILTER (WHERE e.action IN ('suspend', 'resume')))[1] = 'suspend', false) AS suspended,
         (array_agg((e.payload->>'team_id')::int ORDER BY e.seq DESC)
            FILTER (WHERE e.action = 'dispatch'))[1] AS team_id
  FROM cases c JOIN case_events e ON e.case_id = c.id
  WHERE c.reported_at < :to AND e.at <= :as_of AND {scope}
  GROUP BY e.case_id
),
te AS (
  -- each team a case was dispatched to, and what that team did with it: its returns and feedback
  -- (events carry the acting team), and the failed verifications of its feedback
  SELECT d.case_id, d.team_id, min(d.at) AS dispatch_at,
         bool_or(x.action = 'return') AS returned,
         min(x.at) FILTER (WHERE x.action = 'handle') AS handle_at,
         bool_or(x.action = 'verify_fail') AS reworked
  FROM (SELECT e.case_id, (e.payload->>'team_id')::int AS team_id, e.at
        FROM case_events e JOIN ev ON ev.case_id = e.case_id
        WHERE e.action = 'dispatch' AND e.at <= :as_of) d
  LEFT JOIN LATERAL (
    SELECT e.action, e.at FROM case_events e
    WHERE e.case_id = d.case_id AND e.at <= :as_of
      AND ((e.action IN ('return', 'handle') AND e.team_id = d.team_id)
           OR (e.action = 'verify_fail'
               AND (SELECT h.team_id FROM case_events h WHERE h.case_id = e.case_id AND h.action = 'handle'
                    AND h.seq < e.seq ORDER BY h.seq DESC LIMIT 1) = d.team_id))
  ) x ON true
  GROUP BY d.case_id, d.team_id
),
rows AS (
  {rows}
),
facts AS (
  SELECT c.id, r.key, r.current, r.dispatch_at, r.handle_at, r.returned, r.reworked, c.deadline_handle,
         ev.registered_at, ev.rejected_at, ev.last_dispatch_at, ev.last_return_at, ev.last_handle_at,
         ev.closed, ev.ended, ev.suspended,
         (c.reported_at >= :from AND c.reported_at < :to AND c.reported_at <= :as_of) AS in_reports,
         coalesce(ev.registered_at >= :from AND ev.registered_at < :to, false) AS in_p,
         coalesce(ev.rejected_at >= :from AND ev.rejected_at < :to, false) AS rejected_in_p
  FROM cases c JOIN ev ON ev.case_id = c.id JOIN rows r ON r.case_id = c.id
)
"""

# one row per case and group key: under team, a row per team dispatched (and one without a team for
# a case never dispatched); else the case's own column
_TEAM_ROWS = """
  SELECT te.case_id, te.team_id::text AS key, te.team_id IS NOT DISTINCT FROM ev.team_id AS current,
         te.dispatch_at, te.handle_at, te.returned, te.reworked
  FROM te JOIN ev ON ev.case_id = te.case_id
  UNION ALL
  SELECT ev.case_id, NULL, true, NULL, NULL, false, false FROM ev WHERE ev.team_id IS NULL
"""
_CASE_ROWS = """
  SELECT ev.case_id, {key} AS key, true AS current, ev.first_dispatch_at AS dispatch_at,
         ev.first_handle_at AS handle_at, ev.returned, ev.reworked
  FROM ev JOIN cases c ON c.id = ev.case_id
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
    rows = _TEAM_ROWS if group_by == "team" else _CASE_ROWS.format(key=GROUP_KEYS[group_by])
    return _FACTS.format(scope=scope_sql, rows=rows), params


def kpis(user: User, group_by: str, args: dict) -> dict:
    start, to, as_of = period(args)
    facts, params = _facts(user, group_by)
    counts = ",\n".join(f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in FIGURES.items())
    params.update({"from": start, "to": to, "as_of": as_of})
    rows = db.session.execute(text(facts + f"""
        SELECT key, {counts},
               array_agg(ARRAY[extract(epoch FROM dispatch_at), extract(epoch FROM handle_at)])
                 FILTER (WHERE in_p AND handle_at IS NOT NULL AND dispatch_at IS NOT NULL) AS spans
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
    sql = facts + f"SELECT DISTINCT id FROM facts WHERE ({FIGURES[args['kpi']]}) {key_cond}"
    return list(db.session.execute(text(sql), params).scalars())
