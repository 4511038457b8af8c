"""`gridpatrol catalog load-categories` and `load-calendar`: a deployment's catalog and working calendar
from files (the shipped ones by default: the national catalog of parts and events, the year's holidays),
as the demo loads them, without the demo's district, users and cases."""
import json
from pathlib import Path

import click
from flask import current_app
from marshmallow import EXCLUDE, ValidationError

from ..core.errors import Problem
from ..extensions import db
from . import services
from .routes import blp
from .schemas import CategoryIn, WorkPeriodsIn


def _document(path: str | None, name: str) -> tuple[Path, dict]:
    source = Path(path) if path else Path(current_app.config["GEODATA_DIR"]) / name
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{source}: {exc}")
    if not isinstance(doc, dict):
        raise click.ClickException(f"{source}: a JSON object is expected")
    return source, doc


def _checked_catalog(source: Path, doc: dict) -> dict:
    """The catalog document with each item as the API takes a category (CategoryIn: defaults filled,
    values of the right types), or every fault named by item and field: nothing is written unless the
    whole file is right."""
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        raise click.ClickException(f"{source}: nothing loaded; \"items\" must be a non-empty list of categories")
    faults, loaded = {}, []
    version, note = doc.get("version", 1), doc.get("note")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2 ** 31:
        faults["version"] = ["a whole number from 1: the catalog version the file is (at least)"]
    if note is not None and not isinstance(note, str):
        faults["note"] = ["a text"]
    for i, item in enumerate(items):
        label = f"item {i} ({item.get('code')})" if isinstance(item, dict) else f"item {i}"
        try:
            category = CategoryIn().load(item, unknown=EXCLUDE)  # e.g. `major`: the code's first two digits
        except ValidationError as exc:
            faults[label] = exc.messages
            continue
        if any(category["code"] == other["code"] for other in loaded):
            faults[label] = {"code": [f"{category['code']} is listed twice"]}
        loaded.append(category)
    if faults:
        raise click.ClickException(f"{source}: nothing loaded; "
                                   + json.dumps(faults, ensure_ascii=False, sort_keys=True))
    return {"version": version, "note": note, "items": loaded}


@blp.cli.command("load-categories")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def load_categories(path):
    """Load the category catalog from PATH (default: the shipped geodata/catalog.json) as a new catalog
    version: categories are added or changed by code, those the file leaves out are retired (they stay
    readable, and reports made against an older version are still taken)."""
    source, doc = _document(path, "catalog.json")
    catalog = _checked_catalog(source, doc)
    known = {c.code: c.active for c in services.categories()}
    version = services.load_catalog(catalog)
    db.session.commit()
    listed = {item["code"] for item in catalog["items"]}
    back = sorted(code for code in listed if known.get(code) is False)
    retired = sorted(code for code, active in known.items() if active and code not in listed)
    click.echo(f"catalog version {version}: {len(listed)} categories ({len(listed - known.keys())} new"
               + (f", {len(back)} back from retirement: {', '.join(back)}" if back else "")
               + f"), {len(retired)} retired" + (f": {', '.join(retired)}" if retired else ""))


@blp.cli.command("load-calendar")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def load_calendar(path):
    """Load the working calendar from PATH (default: the shipped geodata/calendar.json): the working
    periods of each weekday, and holidays and swapped working days (added or changed by date; days
    the file leaves out stay as they are)."""
    source, doc = _document(path, "calendar.json")
    try:  # the week as PUT /calendar/work-periods takes it
        doc = {**doc, "work_periods": WorkPeriodsIn().load(doc.get("work_periods") or {})}
    except ValidationError as exc:
        raise click.ClickException(f"{source}: nothing loaded; "
                                   + json.dumps({"work_periods": exc.messages}, ensure_ascii=False))
    try:
        services.load_calendar(doc)
    except Problem as exc:
        db.session.rollback()
        raise click.ClickException(f"{source}: nothing loaded; "
                                   + (json.dumps(exc.errors, ensure_ascii=False) if exc.errors else exc.detail))
    except (ValueError, KeyError, TypeError) as exc:
        db.session.rollback()
        raise click.ClickException(f"{source}: nothing loaded; {exc}")
    db.session.commit()
    days = doc.get("days") or []
    click.echo(f"calendar: working periods for {len(doc['work_periods'])} weekdays, {len(days)} listed days")
