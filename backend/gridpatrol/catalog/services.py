"""The category catalog and the working calendar, held as data."""
from datetime import date

from flask import current_app, g
from sqlalchemy import func, select

from ..core.errors import invalid
from ..core.worktime import WorkCalendar
from ..extensions import db
from .models import CalendarDay, CatalogVersion, Category, Setting

WORK_PERIODS_KEY = "work_periods"


def current_version() -> int:
    return db.session.execute(select(func.coalesce(func.max(CatalogVersion.version), 0))).scalar_one()


def categories(include_retired: bool = True) -> list[Category]:
    q = select(Category).order_by(Category.code)
    if not include_retired:
        q = q.where(Category.retired_in_version.is_(None))
    return list(db.session.execute(q).scalars())


def category_for_report(code: str, catalog_version: int | None) -> Category:
    category = db.session.get(Category, code)
    if category is None:
        raise invalid("category_code", f"unknown category {code}")
    if not category.accepts_reports_from(catalog_version):
        raise invalid("category_code", f"category {code} was retired in catalog version {category.retired_in_version}")
    return category


def load_catalog(doc: dict) -> int:
    """Load a catalog document (geodata/catalog.json): a new version; categories missing from it
    are retired, not deleted, so old cases stay readable."""
    version = max(int(doc.get("version", 1)), current_version() + 1)
    db.session.add(CatalogVersion(version=version, note=doc.get("note")))
    db.session.flush()
    seen = set()
    for item in doc["items"]:
        seen.add(item["code"])
        row = db.session.get(Category, item["code"]) or Category(code=item["code"], since_version=version)
        row.kind, row.name_zh, row.name_en = item["kind"], item["name_zh"], item["name_en"]
        row.major_name_zh, row.major_name_en = item.get("major_name_zh"), item.get("major_name_en")
        row.team_kind, row.limits = item["team_kind"], item["limits"]
        row.filing_condition = item.get("filing_condition", "")
        row.closure_condition = item.get("closure_condition", "")
        row.public = item.get("public", True)
        row.retired_in_version = None
        db.session.add(row)
    for row in categories():
        if row.code not in seen and row.retired_in_version is None:
            row.retired_in_version = version
    db.session.flush()
    return version


def load_calendar(doc: dict) -> None:
    """Load working periods and the year's holidays and swapped working days (geodata/calendar.json)."""
    WorkCalendar.from_dict(doc)  # refuse a malformed calendar before writing any of it
    setting = db.session.get(Setting, WORK_PERIODS_KEY) or Setting(key=WORK_PERIODS_KEY)
    setting.value = {"timezone": doc.get("timezone"), "work_periods": doc["work_periods"]}
    db.session.add(setting)
    for day in doc.get("days", []):
        d = date.fromisoformat(day["date"])
        row = db.session.get(CalendarDay, d) or CalendarDay(day=d)
        row.workday, row.name = bool(day["workday"]), day.get("name", "")
        db.session.add(row)
    db.session.flush()
    g.pop("work_calendar", None)


def work_calendar() -> WorkCalendar:
    """The deployment's calendar, read once per request."""
    if "work_calendar" not in g:
        setting = db.session.get(Setting, WORK_PERIODS_KEY)
        days = db.session.execute(select(CalendarDay)).scalars().all()
        doc = {"timezone": current_app.config["TIMEZONE"],
               "days": [{"date": d.day.isoformat(), "workday": d.workday} for d in days]}
        if setting is not None:
            doc["work_periods"] = setting.value["work_periods"]
        g.work_calendar = WorkCalendar.from_dict(doc)
    return g.work_calendar
