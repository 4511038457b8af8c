"""KPIs (综合评价) as a read model: one SQL over cases and their event log, as of a moment.

A case counts in period P by when it was registered (reports and rejections by their own
moment); every flag is read from the event log up to `as_of`, so a figure for a past moment
does not move when later events arrive. Each count goes to whoever acted at that step: under
`team`, a return, a feedback or a failed verification counts for the team that returned or
handled. `case_ids()` runs the same SQL for one figure, which is how every figure drills down to
the cases behind it.
"""
from bisect import bisect_right
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from threading import Event
from time import monotonic

from flask import current_app
from sqlalchemy import text

from ..auth.models import User
from ..catalog import services as catalog
from ..core.authz import EVERYWHERE, case_scope_sql, like_patterns, scope_within
from ..core.db import keep_running, utcnow
from ..core.errors import NotFound, invalid
from ..extensions import db

GROUP_KEYS = {
    "team": "c.team_id::text",  # a row per team the case was dispatched to (facts of kind 't')
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

# every figure as a count over the facts CTE (kpis() and trend() from the facts)
_FIGURE_COUNTS = ",\n".join(f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in FIGURES.items())

_FACTS = """
WITH {source},
facts AS (
  SELECT c.case_id AS id, {key} AS key, c.current, c.dispatch_at, c.handle_at, c.returned, c.reworked,
         c.deadline_handle, c.registered_at, c.rejected_at, c.last_dispatch_at, c.last_return_at, c.last_handle_at,
         c.closed, c.ended, c.suspended, c.handling_hours,
         (c.reported_at >= :from AND c.reported_at < :to AND c.reported_at <= :as_of) AS in_reports,
         coalesce(c.registered_at >= :from AND c.registered_at < :to, false) AS in_p,
         coalesce(c.rejected_at >= :from AND c.rejected_at < :to, false) AS rejected_in_p
  FROM f c WHERE c.kind = :kind
)
"""
# as of now: the facts kept by the event log's trigger (migration 0009), those of the period's cases
_ROLLUP = """
f AS (
  SELECT * FROM kpi_facts c
  WHERE {scope} AND c.kind = :kind
    AND ((c.reported_at >= :from AND c.reported_at < :to)
         OR (c.registered_at >= :from AND c.registered_at < :to)
         OR (c.rejected_at >= :from AND c.rejected_at < :to))
)"""
# as of any moment: the same facts worked out from the event log of every case reported, registered or
# rejected in the period (only those can count in a figure)
_RAW = """
cand AS (
  SELECT c.id FROM cases c WHERE c.reported_at >= :from AND c.reported_at < :to AND {scope}
  UNION
  SELECT c.id FROM case_events r JOIN cases c ON c.id = r.case_id
  WHERE r.action IN ('register', 'reject') AND r.at >= :from AND r.at < :to AND c.reported_at < :to AND {scope}
),
f AS (SELECT * FROM kpi_case_facts(ARRAY(SELECT id FROM cand), :as_of))"""


def rebuild(batch: int = 100_000, jobs: int = 1) -> int:
    """The kept facts of every case worked out again, `batch` cases per transaction, then their daily sums;
    the fact rows written. `jobs` connections of the pool (which must hold them) share the batches: a
    database's cores each work one. A batch that fails stops the others after their current batch."""
    top = db.session.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar()
    db.session.commit()  # no snapshot held while the batches commit
    # a recount of handling hours under way waits meanwhile (its batches would take the rows these
    # rewrite in another order), and goes on afterwards (finding little to change)
    turn = db.engine.connect()
    turn.execute(text(f"SELECT pg_advisory_lock({catalog.HOURS_RECOUNT_LOCK})"))
    turn.commit()  # the lock is the session's: no transaction held open meanwhile
    batches = [(lo, lo + batch - 1) for lo in range(0, top + 1, batch)]
    jobs = min(jobs, len(batches))
    engine, failed = db.engine, Event()

    def work(share) -> int:
        written = 0
        try:
            with engine.connect() as conn:
                for lo, hi in share:
                    if failed.is_set():
                        break
                    # no log for the daily sums: they are summed again from all the facts below
                    written += conn.execute(text("SELECT kpi_facts_rebuild(:lo, :hi, logged => false)"),
                                            {"lo": lo, "hi": hi}).scalar()
                    conn.commit()
        except BaseException:
            failed.set()
            raise
        return written

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            written = sum(pool.map(work, [batches[i::jobs] for i in range(jobs)]))
    finally:
        turn.execute(text(f"SELECT pg_advisory_unlock({catalog.HOURS_RECOUNT_LOCK})"))
        turn.commit()
        turn.close()
    rebuild_daily()
    db.session.commit()
    return written


def rebuild_daily(conn=None) -> int:
    """Every day's sums again from the kept facts, in the deployment's time zone; the rows written."""
    conn = conn or db.session
    return conn.execute(text("SELECT kpi_daily_rebuild(:tz)"), {"tz": current_app.config["TIMEZONE"]}).scalar()


def compact() -> int:
    """Fold the facts' change log into the daily sums (readers add what is not folded, so this is for
    speed, not for correctness); the log rows folded. 0 while another compaction runs."""
    n = db.session.execute(text("SELECT kpi_daily_compact()")).scalar()
    db.session.commit()
    return n


def recount_hours(seconds: float = float("inf")) -> tuple[int, bool]:
    """Batches of the handling hours' recount under way after a change of the working week
    (catalog.recount_handling_hours) until it ends, or for about `seconds`: (facts changed, whether
    some are still to count)."""
    changed, until = 0, monotonic() + seconds
    while monotonic() < until:
        step = catalog.recount_handling_hours()
        if step is None:
            return changed, False
        changed += step
    return changed, True


def keep_compacting(every: float, report) -> None:
    """compact() every `every` seconds, at once again while the log is long, and between two rounds the
    handling hours' recount under way, if any, for up to `every` seconds; a database that does not
    answer (restarting) is reported through `report` and tried again at the next round."""
    def step() -> bool:
        n = compact()
        _, more = recount_hours(every)
        return n >= 10_000 or more
    keep_running("kpis compact", step, every, report)


def fact_cases() -> int:
    return db.session.execute(text("SELECT count(DISTINCT case_id) FROM kpi_facts")).scalar()


DEFAULT_DAYS = 30


def period(args: dict) -> tuple[datetime, datetime, datetime]:
    """[from, to) and as_of of a KPI request. Without `from`: the DEFAULT_DAYS local days that end with
    the day of `to` (a `to` at midnight ends the day before), as the console's "30 days" asks for them."""
    as_of = args.get("as_of") or utcnow()
    to = args.get("to") or as_of
    try:
        if args.get("from"):
            start = args["from"]
        else:
            tz = catalog.work_calendar().tz
            last_day = (to - timedelta(microseconds=1)).astimezone(tz).date()
            start = datetime.combine(last_day - timedelta(days=DEFAULT_DAYS - 1), time(0), tzinfo=tz)
    except OverflowError:
        raise invalid("to" if args.get("to") else "as_of",
                      f"too early: the {DEFAULT_DAYS} days before it are not a date")
    if start >= to:
        raise invalid("from", "from must be before to")
    return start, to, as_of


def _facts(user: User, group_by: str, live: bool) -> tuple[str, dict]:
    """The facts CTE for one grouping. `live`: as of now, from the kept facts (`kpi_facts`); otherwise
    worked out from the event log as of `:as_of`. Both are `kpi_case_facts()`, so they agree."""
    scope_sql, params = case_scope_sql(user.scope)
    source = (_ROLLUP if live else _RAW).format(scope=scope_sql)
    params["kind"] = "t" if group_by == "team" else "c"
    return _FACTS.format(source=source, key=GROUP_KEYS[group_by]), params


def _aggregate_in_memory(from_sums: bool = False) -> None:
    """A KPI query groups every fact of its period: room to do it in memory (the default 4 MB sorts a
    whole history on disk), for this transaction only. `from_sums`: the read is answered from the daily
    sums, whose SQL functions inlined into its statements took ~5 ms to plan for each request's values
    at 10M cases, about as long as they take to run: this transaction's statements get generic plans,
    made once per connection (from the driver's fifth use of a statement, when it prepares it) for any
    values. Their paths do not turn on the values: ranges of the sums' indexes, and of kpi_facts' indexes
    for the period's ends, its open cases (a partial index) and, up to KPI_EXACT_PERCENTILE_ROWS, its
    registrations. A read answered from the facts or the event log keeps plans made for its values: a
    period's length there picks between an index and a scan."""
    generic = ", set_config('plan_cache_mode', 'force_generic_plan', true)" if from_sums else ""
    db.session.execute(text(f"SELECT set_config('work_mem', '64MB', true){generic}"))


class _Within:
    """The caller, seeing only the part of its scope inside an area (core.authz.scope_within)."""

    def __init__(self, user: User, area: str):
        self._user, self.scope = user, scope_within(user.scope, area)

    def __getattr__(self, name):
        return getattr(self._user, name)


def within(user: User, area: str | None) -> User:
    """The caller as KPIs of `area` see it (a KPI request's `area`); no area: the caller."""
    return _Within(user, area) if area else user


def source(args: dict) -> str:
    """Where a figure comes from: the kept facts when asked as of now (no `as_of`), else the event log."""
    return "events" if args.get("as_of") else "rollup"


def kpis(user: User, group_by: str, args: dict) -> dict:
    user = within(user, args.get("area"))
    start, to, as_of = period(args)
    params = {"from": start, "to": to, "as_of": as_of}
    live = source(args) == "rollup"
    # the kept facts' time zone and whether their handling hours are being counted again, in one read
    kept_tz, recounting = db.session.execute(text(
        "SELECT (SELECT tz FROM kpi_daily_state), EXISTS (SELECT 1 FROM settings WHERE key = :key)"),
        {"key": catalog.HOURS_RECOUNT_KEY}).one() if live else (None, False)
    daily = _daily(user, group_by, live, start, to, as_of, kept_tz=kept_tz if live else _UNREAD)
    _aggregate_in_memory(from_sums=bool(daily))
    rows, binned = (_kpis_daily(user, group_by, daily, params) if daily
                    else (_kpis_facts(user, group_by, args, params), False))
    labels = _labels(group_by, [r["key"] for r in rows if r["key"] is not None])
    out = []
    for r in rows:
        row = {"key": r["key"], "label": labels.get(r["key"], "—" if r["key"] is None else r["key"])}
        row.update({name: r[name] for name in FIGURES})
        row.update(rates(row))
        row["handling_hours_p50"] = round(r["p50"], 2) if r["p50"] is not None else None
        row["handling_hours_p90"] = round(r["p90"], 2) if r["p90"] is not None else None
        out.append(row)
    return {"group_by": group_by, "area": args.get("area"), "from": start, "to": to, "as_of": as_of,
            "source": source(args), "percentiles": "buckets" if binned else "exact",
            "hours_recounting": recounting, "rows": out}


def _kpis_facts(user: User, group_by: str, args: dict, params: dict) -> list:
    facts, more = _facts(user, group_by, source(args) == "rollup")
    return db.session.execute(text(facts + f"""
        SELECT key, {_FIGURE_COUNTS},
               percentile_cont(0.5) WITHIN GROUP (ORDER BY handling_hours) FILTER (WHERE in_p) AS p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY handling_hours) FILTER (WHERE in_p) AS p90
        FROM facts GROUP BY key
        HAVING count(*) FILTER (WHERE in_reports OR in_p OR rejected_in_p) > 0
        ORDER BY key NULLS LAST
    """), {**params, **more}).mappings().all()


# ------------------------------------------------------------------ the daily sums (migration 0011)

DAILY_GROUPS = ("team", "category", "street")
DISTRICT_CODE_LENGTH = 6
# the open cases in the handling stage that are past their deadline now (FIGURES["open_overdue"] on the
# facts, in the form of the partial index ix_kpi_facts_open_handling)
_OPEN_OVERDUE = """
  SELECT {key} AS key, {period} AS period_start, count(*) AS open_overdue
  FROM kpi_facts c
  WHERE c.kind = :kind AND {scope} AND c.registered_at >= :from AND c.registered_at < :to
    AND NOT c.ended AND NOT c.suspended AND c.last_dispatch_at > coalesce(c.last_return_at, '-infinity')
    AND c.current AND c.deadline_handle < :as_of
    AND NOT coalesce(c.last_handle_at > c.last_dispatch_at AND c.last_handle_at <= c.deadline_handle, false)
  GROUP BY 1, 2"""


_UNREAD = object()  # _daily()'s kept_tz when the caller has not read it


def _daily(user: User, group_by: str, live: bool, start: datetime, to: datetime, as_of: datetime,
           months: bool = True, kept_tz=_UNREAD) -> dict | None:
    """The arguments of kpi_daily_read() when the daily sums can answer: as of now, a grouping they keep,
    a caller who sees whole districts (or everything), sums kept in this deployment's time zone, and at
    least one whole local day in the period. Otherwise None: the facts answer. `months`: whole local
    months may come from the monthly sums (not for a caller who puts each row's day in a week).
    `kept_tz`: the sums' time zone (None: no sums kept yet) when the caller has read it already."""
    if not live or group_by not in DAILY_GROUPS:
        return None
    if EVERYWHERE in user.scope:
        districts = None
    elif all(len(code) == DISTRICT_CODE_LENGTH for code in user.scope):
        districts = list(user.scope)
    else:
        return None
    zone = current_app.config["TIMEZONE"]
    if kept_tz is _UNREAD:
        kept_tz = db.session.execute(text("SELECT tz FROM kpi_daily_state")).scalar()
    if kept_tz != zone:
        return None
    bounds = sum_bounds(start, to, as_of, catalog.work_calendar().tz, months)
    if bounds is None:
        return None
    return {"g": group_by, "districts": districts, **bounds, "zone": zone}


# what a month of the monthly sums weighs in rows against a day of the daily ones, for sum_bounds()'s
# choice: the handling hours' buckets of the team grouping, most of a read's rows, at 10M cases 3,220
# rows a month against 935 a day (at 1M, whose days are sparser: 2,418 against 265)
MONTH_IN_DAYS = 4


def sum_bounds(start: datetime, to: datetime, as_of: datetime, tz, months: bool) -> dict | None:
    """Which sums kpi_daily_read() takes for the period [start, to) as of `as_of`: the days [d0, d1), the
    whole months [m0, m1) of the monthly sums (none: m0 = m1) with the days [d0, m0) and [m1, d1) added,
    or [m0, d0) and [d1, m1) taken away where a month begins before the days or ends after them
    (migration 0029); None without a whole local day."""
    def midnight(moment: datetime, up: bool | None = None) -> date:
        """The local midnight nearest to `moment` (`up`: the next one, unless it is one)."""
        day = moment.astimezone(tz).date()
        since = moment - datetime.combine(day, time(0), tzinfo=tz)
        if since and (up or (up is None and since >= timedelta(hours=12))):
            day += timedelta(days=1)
        return day

    # the days [d0, d1) come from the sums; the facts between them and the period's ends are added or
    # taken away (kpi_daily_read), so the nearest midnights read the fewest facts. A period up to now
    # ends its days at the next midnight: nothing is dated after now, so that end reads no fact.
    d0 = midnight(start)
    d1 = midnight(as_of, up=True) if to >= as_of else midnight(to)
    if d0 >= d1:
        return None
    best = {"d0": d0, "d1": d1, "m0": d0, "m1": d0}
    if not months:
        return best
    # the months: from the first day of d0's month or of the next, to the first day of d1's month or of
    # the next, whichever reads the fewest rows. Up to now the days end with the month (nothing is
    # dated after now: those days read nothing, and the last day's rows are the month's).
    cost = (d1 - d0).days
    up_to_now = to >= as_of
    last = d1 - timedelta(days=1)
    for m0 in (d0.replace(day=1), _next_month(d0 - timedelta(days=1))):
        for m1 in (_next_month(last),) if up_to_now else (d1.replace(day=1), _next_month(last)):
            n = (m1.year - m0.year) * 12 + m1.month - m0.month
            if n <= 0:
                continue
            c = abs((m0 - d0).days) + (0 if up_to_now else abs((d1 - m1).days)) + MONTH_IN_DAYS * n
            if c < cost:
                cost, best = c, {"d0": d0, "d1": m1 if up_to_now else d1, "m0": m0, "m1": m1}
    return best


def _next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


DAILY_SUMS = ("n_rep", "reports", "n_reg", "registered", "dispatched", "returned", "handled", "reworked", "closed",
              "closed_on_time", "n_rej", "rejected")


def _daily_counts(user: User, group_by: str, daily: dict, params: dict, period: str | None) -> tuple[list, dict]:
    """The figures from the daily sums (kpi_daily_read) and open_overdue from the facts, per key, and per
    period when `period` (SQL of a period's start from a local day `{day}`) is given; with the
    statement's parameters."""
    scope_sql, scope = case_scope_sql(user.scope)
    params = {**params, **daily, **scope, "kind": "t" if group_by == "team" else "c"}
    sums = ", ".join(f"sum(d.{name})::bigint AS {name}" for name in DAILY_SUMS)
    day_period = period.format(day="d.day::timestamp") if period else "NULL::timestamptz"
    fact_period = period.format(day="(c.registered_at AT TIME ZONE :tz)") if period else "NULL::timestamptz"
    rows = db.session.execute(text(f"""
        WITH d AS (
          SELECT d.key, {day_period} AS period_start, {sums}
          FROM kpi_daily_read(:g, :districts, :d0, :d1, :m0, :m1, :from, :to, :as_of, :zone) d
          GROUP BY 1, 2 HAVING sum(d.n_rep) + sum(d.n_reg) + sum(d.n_rej) > 0
        ),
        o AS ({_OPEN_OVERDUE.format(key=GROUP_KEYS[group_by], period=fact_period, scope=scope_sql)})
        SELECT d.*, coalesce(o.open_overdue, 0) AS open_overdue
        FROM d LEFT JOIN o ON o.key IS NOT DISTINCT FROM d.key AND o.period_start IS NOT DISTINCT FROM d.period_start
        ORDER BY d.key NULLS LAST
    """), params).mappings().all()
    return rows, params


def _kpis_daily(user: User, group_by: str, daily: dict, params: dict) -> tuple[list, bool]:
    """kpis() from the daily sums: the same rows as from the facts; the handling-hour percentiles exact
    up to KPI_EXACT_PERCENTILE_ROWS registrations in the period, beyond that from the hours' buckets
    (then True with the rows)."""
    rows, params = _daily_counts(user, group_by, daily, params, None)
    scope_sql = case_scope_sql(user.scope)[0]
    binned = sum(r["n_reg"] for r in rows) > current_app.config["KPI_EXACT_PERCENTILE_ROWS"]
    rows = [dict(r, p50=None, p90=None) for r in rows]
    by_key = {r["key"]: r for r in rows}
    if not binned:
        exact = db.session.execute(text(f"""
            SELECT {GROUP_KEYS[group_by]} AS key,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY c.handling_hours) AS p50,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY c.handling_hours) AS p90
            FROM kpi_facts c
            WHERE c.kind = :kind AND {scope_sql} AND c.registered_at >= :from AND c.registered_at < :to
            GROUP BY 1
        """), params).mappings().all()
        for r in exact:
            if r["key"] in by_key:
                by_key[r["key"]].update(p50=r["p50"], p90=r["p90"])
    else:
        # a key's parts of its buckets' counts as one array of (bucket, n) pairs (thousands of rows one by
        # one cost the request milliseconds), summed and put in order here
        for key, parts in db.session.execute(text(
                "SELECT key, array_agg(ARRAY[bucket, n]) "
                "FROM kpi_daily_hours_read(:g, :districts, :d0, :d1, :m0, :m1, :from, :to, :zone) GROUP BY key"),
                params):
            if key in by_key:
                summed = defaultdict(int)
                for bucket, n in parts:
                    summed[bucket] += n
                counts = sorted((bucket, n) for bucket, n in summed.items() if n)
                by_key[key].update(p50=percentile_of_buckets(counts, 0.5), p90=percentile_of_buckets(counts, 0.9))
    return rows, binned


def _trend_daily(user: User, group_by: str, daily: dict, params: dict) -> list:
    """trend() from the daily sums: per key and period, the same figures as from the facts."""
    return _daily_counts(user, group_by, daily, params, "date_trunc(:interval, {day}) AT TIME ZONE :tz")[0]


def hours_bucket_bounds(bucket: int) -> tuple[float, float]:
    """[low, high) hours of a bucket of kpi_hours_bucket(): a tenth of an hour up to a day, an hour up to
    10 days, 10 hours beyond."""
    if bucket < 240:
        return bucket / 10, (bucket + 1) / 10
    if bucket < 456:
        return 24 + (bucket - 240), 25 + (bucket - 240)
    return 240 + 10 * (bucket - 456), 250 + 10 * (bucket - 456)


def percentile_of_buckets(counts: list[tuple[int, int]], p: float) -> float | None:
    """percentile_cont(p) of values known by bucket (ascending (bucket, count)), each bucket's values taken
    as spread evenly over it: within one bucket's width of the exact figure."""
    ends = list(accumulate(k for _, k in counts))  # how many values lie in each bucket or below it
    n = ends[-1] if ends else 0
    if n <= 0:
        return None

    def value(i):  # the i-th smallest value (from 0)
        at = bisect_right(ends, i)
        bucket, k = counts[at]
        low, high = hours_bucket_bounds(bucket)
        return low + (i - (ends[at] - k) + 0.5) / k * (high - low)

    pos = p * (n - 1)
    i = int(pos)
    lower = value(i)
    return lower if i + 1 >= n else lower + (pos - i) * (value(i + 1) - lower)


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
    """The cases behind one figure: same SQL, same period, same area, one group key."""
    user = within(user, args.get("area"))
    group_by = args.get("group_by") or "team"
    start, to, as_of = period(args)
    facts, params = _facts(user, group_by, source(args) == "rollup")
    params.update({"from": start, "to": to, "as_of": as_of})
    key_cond = ""
    if "key" in args:
        key_cond = "AND key IS NULL" if args["key"] in ("", "null", "None") else "AND key = :key"
        params["key"] = args["key"]
    sql = facts + f"SELECT DISTINCT id FROM facts WHERE ({FIGURES[args['kpi']]}) {key_cond}"
    return list(db.session.execute(text(sql), params).scalars())


# ------------------------------------------------------------------ trend

INTERVALS = ("week", "month")
MAX_PERIODS = 520
DEFAULT_PERIODS = 12


def _period_start(moment: datetime, interval: str, tz) -> datetime:
    """The local start of the week (Monday) or month holding `moment`."""
    day = moment.astimezone(tz).date()
    day = day - timedelta(days=day.weekday()) if interval == "week" else day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def _next_period(start: datetime, interval: str, tz) -> datetime:
    day = start.date()
    if interval == "week":
        day += timedelta(days=7)
    else:
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return datetime.combine(day, time(0), tzinfo=tz)


def periods(args: dict, interval: str) -> tuple[list[datetime], datetime]:
    """Whole local weeks or months covering [from, to): their starts, and the end of the last one.
    Without `from`, the twelve periods up to `to` (default: now)."""
    tz = catalog.work_calendar().tz
    as_of = args.get("as_of") or utcnow()
    to = args.get("to") or as_of
    try:
        first = _period_start(args["from"] if args.get("from") else to, interval, tz)
        if not args.get("from"):
            for _ in range(DEFAULT_PERIODS - 1):
                first = _period_start(first - timedelta(days=1), interval, tz)
    except (OverflowError, ValueError):
        raise invalid("from" if args.get("from") else "to", "out of the calendar's range")
    if args.get("from") and args["from"] >= to:
        raise invalid("from", "from must be before to")
    starts = [first]
    while True:
        end = _next_period(starts[-1], interval, tz)
        if end >= to:
            return starts, end
        if len(starts) == MAX_PERIODS:
            raise invalid("from", f"at most {MAX_PERIODS} periods of a {interval}")
        starts.append(end)


def trend(user: User, group_by: str, interval: str, args: dict) -> dict:
    """KPIs per week or month: one query over the same facts as `kpis()`, each case in the period of its
    registration, so the point of a period is the row `kpis()` gives for that period (as of the same moment).
    A series for every group `kpis()` has a row for over the whole range; a period without registrations
    is a point of zeros."""
    user = within(user, args.get("area"))
    as_of = args.get("as_of") or utcnow()
    starts, end = periods({**args, "as_of": as_of}, interval)
    tz = catalog.work_calendar().tz
    params = {"from": starts[0], "to": end, "as_of": as_of, "interval": interval, "tz": tz.key}
    daily = _daily(user, group_by, source(args) == "rollup", starts[0], end, as_of, months=interval == "month")
    _aggregate_in_memory(from_sums=bool(daily))
    if daily:
        rows = _trend_daily(user, group_by, daily, params)
    else:
        facts, more = _facts(user, group_by, source(args) == "rollup")
        rows = db.session.execute(text(facts + f"""
            SELECT key, CASE WHEN in_p THEN date_trunc(:interval, registered_at AT TIME ZONE :tz) AT TIME ZONE :tz END
                        AS period_start,
                   {_FIGURE_COUNTS}
            FROM facts WHERE in_reports OR in_p OR rejected_in_p
            GROUP BY 1, 2
        """), {**params, **more}).mappings().all()
    keys = sorted({r["key"] for r in rows}, key=lambda k: (k is None, k))
    found = {(r["key"], r["period_start"]): r for r in rows if r["period_start"] is not None}
    labels = _labels(group_by, [k for k in keys if k is not None])
    bounds = list(zip(starts, starts[1:] + [end]))
    zero = dict.fromkeys(FIGURES, 0)
    series = []
    for key in keys:
        points = []
        for start, stop in bounds:
            row = found.get((key, start))
            figures = {k: row[k] for k in FIGURES} if row else zero
            r = rates(figures)
            points.append({"period_start": start, "period_end": stop, "registered": figures["registered"],
                           "closed": figures["closed"], "closure_rate": r["closure_rate"],
                           "on_time_rate": r["on_time_rate"], "rework_rate": r["rework_rate"]})
        series.append({"key": key, "label": labels.get(key, "—" if key is None else key), "points": points})
    return {"group_by": group_by, "area": args.get("area"), "interval": interval, "from": starts[0], "to": end,
            "as_of": as_of, "source": source(args), "series": series}


# ------------------------------------------------------------------ inspectors

def inspectors(user: User, args: dict) -> dict:
    """Per inspector for a period: their reports (as `kpis()` by inspector), their verifications and how
    many were made before the verification deadline, and the coverage of their responsibility grids by
    their own tracks. Rows for every active inspector the caller oversees, and for anyone who reported or
    verified in the caller's scope in the period. `inspector_verifications()` and `inspector_coverage()`
    give the verifications and grid-days behind each row's figures, from the same SQL."""
    start, to, as_of = period(args)
    reports, verifications, people = _inspector_facts(user, start, to, as_of, live=not args.get("as_of"))
    first_day, last_day, days = _days(start, to, as_of)
    grids = _grid_days(user, [int(p["key"]) for p in people], first_day, last_day)
    out = []
    for p in people:
        r = reports.get(p["key"], {})
        made = verifications.get(p["key"], [])
        on_time = sum(1 for v in made if v["on_time"])
        registered, rejected = r.get("registered", 0), r.get("rejected", 0)
        theirs = grids.get(p["key"], [])
        visited = sum(len(g["visited_days"]) for g in theirs)
        out.append({
            "key": p["key"], "label": p["label"], "reports": r.get("reports", 0), "registered": registered,
            "rejected": rejected, "valid_report_rate": _ratio(registered, registered + rejected),
            "verifications": len(made), "verifications_on_time": on_time,
            "verification_timely_rate": _ratio(on_time, len(made)),
            "responsibility_grids": len(theirs),
            "coverage_rate": _ratio(visited, len(theirs) * days),
        })
    return {"from": start, "to": to, "as_of": as_of, "days": days, "rows": out}


def inspector_verifications(user: User, inspector_id: int, args: dict) -> dict:
    """The verifications behind an inspector's `verifications` (and, with `on_time`, behind
    `verifications_on_time` or the rest): one item per verify_pass or verify_fail, with its case."""
    start, to, as_of = period(args)
    _, verifications, people = _inspector_facts(user, start, to, as_of, only=inspector_id)
    person = _one(people, inspector_id)
    items = verifications.get(person["key"], [])
    if args.get("on_time") is not None:
        items = [v for v in items if v["on_time"] == args["on_time"]]
    return {"from": start, "to": to, "as_of": as_of, "inspector_id": inspector_id, "label": person["label"],
            "total": len(items), "items": items}


def inspector_coverage(user: User, inspector_id: int, args: dict) -> dict:
    """The grid-days behind an inspector's `coverage_rate`: each responsibility grid in the caller's scope,
    the days of the period a track of theirs visited it, and those patrols."""
    start, to, as_of = period(args)
    _, _, people = _inspector_facts(user, start, to, as_of, only=inspector_id)
    person = _one(people, inspector_id)
    first_day, last_day, days = _days(start, to, as_of)
    grids = _grid_days(user, [inspector_id], first_day, last_day).get(person["key"], [])
    visited = sum(len(g["visited_days"]) for g in grids)
    return {"from": start, "to": to, "as_of": as_of, "inspector_id": inspector_id, "label": person["label"],
            "days": days, "first_day": first_day, "last_day": last_day, "responsibility_grids": len(grids),
            "visited_grid_days": visited, "coverage_rate": _ratio(visited, len(grids) * days), "grids": grids}


def _one(people: list[dict], inspector_id: int) -> dict:
    if not people:
        raise NotFound(f"No inspector {inspector_id}")
    return people[0]


def _days(start: datetime, to: datetime, as_of: datetime):
    """The local days of the period, up to `as_of`: first, last, how many."""
    tz = catalog.work_calendar().tz
    first_day = start.astimezone(tz).date()
    last_day = (min(to, as_of) - timedelta(microseconds=1)).astimezone(tz).date()
    return first_day, last_day, max(0, (last_day - first_day).days + 1)


def _inspector_facts(user: User, start: datetime, to: datetime, as_of: datetime, only: int | None = None,
                     live: bool = False):
    """(reports by inspector, verifications by inspector, the people with a row): everyone the caller
    oversees or who acted in the caller's scope in the period; with `only`, that one person or nobody."""
    period_args = {"from": start, "to": to, **({} if live else {"as_of": as_of})}  # live: from the rollup
    reports = {r["key"]: r for r in kpis(user, "inspector", period_args)["rows"] if r["key"] is not None}
    verifications = _verifications(user, start, to, as_of)
    scope = like_patterns(user.scope)
    people = db.session.execute(text(f"""
        SELECT u.id::text AS key, u.display_name AS label
        FROM users u
        WHERE (u.id::text = ANY(CAST(:acted AS text[]))
               OR (u.active AND 'inspector' = ANY(u.roles)
                   AND (NOT EXISTS (SELECT 1 FROM unnest(u.scope) AS s(code)
                                    WHERE NOT s.code LIKE ANY(CAST(:scope AS text[])))
                        OR EXISTS (SELECT 1 FROM unnest(u.grid_codes) AS g(code)
                                   WHERE g.code LIKE ANY(CAST(:scope AS text[]))))))
          {"AND u.id = :only" if only is not None else ""}
        ORDER BY u.id
    """), {"scope": scope, "acted": sorted(set(reports) | set(verifications)),
           **({"only": only} if only is not None else {})}).mappings().all()
    return reports, verifications, [dict(p) for p in people]


def _grid_days(user: User, inspector_ids: list[int], first_day: date, last_day: date) -> dict[str, list[dict]]:
    """Per inspector: each of their responsibility grids in the caller's scope, with the local days in
    [first_day, last_day] their own tracks visited it and the patrols that did."""
    # the visits gathered per inspector and grid before they meet the grids' names (joined to every
    # visit, a city's month of 2.1 million visits took 9.1 s here; so 3.4 s: docs/performance.md,
    # thirteenth round)
    rows = db.session.execute(text("""
        WITH r AS (SELECT u.id, g.code FROM users u
                   CROSS JOIN LATERAL (SELECT DISTINCT code FROM unnest(u.grid_codes) AS x(code)) g
                   WHERE u.id = ANY(:ids) AND g.code LIKE ANY(CAST(:scope AS text[]))),
        v AS (SELECT v.inspector_id, v.grid_code, array_agg(DISTINCT v.day ORDER BY v.day) AS days,
                     array_agg(DISTINCT v.patrol_id ORDER BY v.patrol_id) AS patrol_ids
              FROM grid_visits v
              WHERE v.inspector_id IN (SELECT id FROM r) AND v.day BETWEEN :first_day AND :last_day
              GROUP BY v.inspector_id, v.grid_code)
        SELECT r.id::text AS key, r.code, gr.name, coalesce(v.days, '{}') AS days,
               coalesce(v.patrol_ids, '{}') AS patrol_ids
        FROM r LEFT JOIN grids gr ON gr.code = r.code
        LEFT JOIN v ON v.inspector_id = r.id AND v.grid_code = r.code
        ORDER BY r.id, r.code
    """), {"ids": inspector_ids, "scope": like_patterns(user.scope), "first_day": first_day,
           "last_day": last_day}).mappings().all()
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["key"], []).append({"code": r["code"], "name": r["name"], "visited_days": list(r["days"]),
                                             "patrol_ids": list(r["patrol_ids"])})
    return out


def _ratio(a, b):
    return round(a / b, 4) if b else None


def _verifications(user: User, start: datetime, to: datetime, as_of: datetime) -> dict[str, list[dict]]:
    """Per inspector: the verifications made in the period, each with the verification deadline then in
    force and whether it was met. The case row holds the deadline of its latest feedback; the deadline of
    an earlier feedback (before a rework) is worked out as the workflow set it: from that feedback, moved
    by any suspension."""
    scope_sql, params = case_scope_sql(user.scope)
    rows = db.session.execute(text(f"""
        SELECT e.actor_id::text AS key, e.case_id, c.number, c.status, c.category_code, e.action, e.at,
               c.deadline_verify, h.at AS handled_at, h.latest,
               (SELECT json_agg(json_build_array(s.action, s.at) ORDER BY s.seq) FROM case_events s
                WHERE s.case_id = e.case_id AND s.action IN ('suspend', 'resume') AND s.seq > h.seq
                  AND s.seq < e.seq) AS pauses
        FROM case_events e JOIN cases c ON c.id = e.case_id
        LEFT JOIN LATERAL (
          SELECT x.at, x.seq, NOT EXISTS (SELECT 1 FROM case_events y WHERE y.case_id = x.case_id
                                          AND y.action = 'handle' AND y.seq > x.seq) AS latest
          FROM case_events x WHERE x.case_id = e.case_id AND x.action = 'handle' AND x.seq < e.seq
          ORDER BY x.seq DESC LIMIT 1) h ON true
        WHERE e.action IN ('verify_pass', 'verify_fail') AND e.actor_id IS NOT NULL
          AND e.at >= :from AND e.at < :to AND e.at <= :as_of AND {scope_sql}
        ORDER BY e.at, e.case_id, e.seq
    """), {**params, "from": start, "to": to, "as_of": as_of}).mappings().all()
    cal = catalog.work_calendar()
    limit = current_app.config["VERIFY_LIMIT_HOURS"]
    out: dict[str, list[dict]] = {}
    for r in rows:
        deadline = r["deadline_verify"]
        if r["handled_at"] is not None and not r["latest"]:
            deadline = cal.deadline(r["handled_at"], limit, "hour", False)
            paused = None
            for action, at in r["pauses"] or []:
                at = datetime.fromisoformat(at)
                if action == "suspend":
                    paused = at
                elif paused is not None:
                    deadline = cal.add_working_hours(deadline, cal.working_hours_between(paused, at))
                    paused = None
        out.setdefault(r["key"], []).append({
            "case_id": r["case_id"], "number": r["number"], "status": r["status"], "category_code": r["category_code"],
            "action": r["action"], "at": r["at"], "handled_at": r["handled_at"], "deadline": deadline,
            "on_time": deadline is not None and r["at"] <= deadline})
    return out
