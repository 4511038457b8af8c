"""Exports as files other offices open: cases (GeoJSON, CSV), grids (GeoJSON, GeoPackage) and a day's
patrol tracks (GeoJSON).

The queries are built while the request is being answered, so that a bad filter or an unknown area is
still a problem+json; the rows are read afterwards, while the body streams, from a server-side cursor
in batches: a year of cases never sits in memory. The request boundary has rolled the session back by
then (GET), so the stream reads in a transaction of its own, on plain columns (never on ORM objects
of the request, which the rollback expired), and the session is removed, its connection returned to
the pool, when the stream ends or the client goes away (stream_with_context keeps the app context
until then).
"""
import csv
import io
import itertools
import json
import os
import shutil
import tempfile
from datetime import date, datetime
from typing import Iterable, Iterator

from sqlalchemy import false, func, or_, select, text
from sqlalchemy.orm import aliased

from ..auth.models import User
from ..cases import services as cases
from ..cases.models import Case
from ..catalog import services as catalog
from ..catalog.models import Category
from ..core.db import utcnow
from ..extensions import db
from ..grids.models import AdminArea, Grid
from ..kpis import services as kpis
from ..patrols import services as patrols
from ..teams.models import Team

BATCH = 1000  # rows per round trip of the cursor, and per chunk of the body
IDLE_LIMIT_S = 120  # a download whose client reads nothing for this long is cut off by the database

_STREET, _COMMUNITY, _DISTRICT = aliased(AdminArea), aliased(AdminArea), aliased(AdminArea)
# the columns of a case export, in order: what a receiving office needs, never a citizen's contact
# details (nor anything of a photo); lon and lat are the geometry in GeoJSON
CASE_FIELDS = {
    "number": Case.number, "id": Case.id, "status": Case.status, "category_code": Case.category_code,
    "category_name": Category.name_zh, "category_name_en": Category.name_en, "urgency": Case.urgency,
    "source": Case.source, "district_code": Case.district_code, "street_code": Case.street_code,
    "street_name": _STREET.name, "community_code": Case.community_code, "community_name": _COMMUNITY.name,
    "grid_code": Case.grid_code, "grid_name": Grid.name, "address": Case.address, "description": Case.description,
    "lon": func.ST_X(Case.location), "lat": func.ST_Y(Case.location), "accuracy_m": Case.accuracy_m,
    "location_flags": Case.location_flags, "observed_at": Case.observed_at, "reported_at": Case.reported_at,
    "registered_at": Case.registered_at, "dispatched_at": Case.dispatched_at, "handled_at": Case.handled_at,
    "closed_at": Case.closed_at, "deadline_register": Case.deadline_register,
    "deadline_dispatch": Case.deadline_dispatch, "deadline_handle": Case.deadline_handle,
    "deadline_verify": Case.deadline_verify, "stage_deadline": Case.stage_deadline, "overdue": cases._overdue(),
    "lead_team_id": Case.lead_team_id, "lead_team_name": Team.name, "assisting_team_ids": Case.assisting_team_ids,
    "rework_count": Case.rework_count, "extension_hours": Case.extension_hours,
    "escalation_level": Case.escalation_level, "escalation_note": Case.escalation_note,
    "parent_id": Case.parent_id, "updated_at": Case.updated_at,
}
CASE_COLUMNS = tuple(CASE_FIELDS)
GRID_COLUMNS = ("code", "name", "district_code", "district_name", "street_code", "street_name",
                "community_code", "community_name", "area_m2")
# a spreadsheet reads a cell starting with one of these as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# ------------------------------------------------------------------ cases

def case_query(user: User, args: dict):
    """The cases GET /cases lists for these filters, in its order, as plain columns."""
    args = dict(args)
    if "from_" in args:
        args["from"] = args.pop("from_")
    if args.get("kpi"):
        args["ids"] = kpis.case_ids(user, args)
    if args.get("queue"):
        args = {**args, **cases.QUEUES[args["queue"]]}
    q = (select(*(column.label(name) for name, column in CASE_FIELDS.items())).select_from(Case)
         .join(Category, Category.code == Case.category_code)
         .outerjoin(Team, Team.id == Case.lead_team_id)
         .outerjoin(Grid, Grid.code == Case.grid_code)
         .outerjoin(_STREET, _STREET.code == Case.street_code)
         .outerjoin(_COMMUNITY, _COMMUNITY.code == Case.community_code)
         .where(cases.scoped(user)))
    q = cases._filters(q, args)
    return q.order_by(*cases.list_order(Case.reported_at, Case.id, args.get("sort")))


def cases_geojson(query, tz) -> Iterator[bytes]:
    """A FeatureCollection of points, written a batch of cases at a time."""
    properties = [c for c in CASE_COLUMNS if c not in ("lon", "lat")]

    def feature(row) -> dict:
        values = row._mapping
        return {"type": "Feature", "id": values["id"],
                "geometry": {"type": "Point", "coordinates": [values["lon"], values["lat"]]},
                "properties": {name: _json_value(values[name], tz) for name in properties}}

    return _feature_collection(_rows(query), feature)


def cases_csv(query, tz) -> Iterator[bytes]:
    """CSV for spreadsheets: UTF-8 with a byte order mark (Excel then reads Chinese text), a header row,
    formulas neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CASE_COLUMNS)
    yield _take(buffer)
    for batch in _rows(query):
        writer.writerows([_csv_value(v, tz) for v in row] for row in batch)
        yield _take(buffer)


# ------------------------------------------------------------------ grids

def grid_query(user: User, args: dict, geometry: str):
    """The grids of the caller's scope (within `area` and meeting `bbox` when given), with their areas'
    names; the polygon as GeoJSON text or as WKB (`geometry`)."""
    patterns = patrols._area_patterns(args.get("area"), user.scope)
    shape = func.ST_AsGeoJSON(Grid.geom, 7) if geometry == "geojson" else func.ST_AsBinary(Grid.geom)
    q = (select(Grid.code, Grid.name, Grid.district_code, _DISTRICT.name.label("district_name"),
                Grid.street_code, _STREET.name.label("street_name"), Grid.community_code,
                _COMMUNITY.name.label("community_name"), Grid.area_m2, shape.label("geometry"))
         .join(_DISTRICT, _DISTRICT.code == Grid.district_code)
         .join(_STREET, _STREET.code == Grid.street_code)
         .join(_COMMUNITY, _COMMUNITY.code == Grid.community_code)
         .where(or_(false(), *(Grid.code.like(p) for p in patterns))))
    if args.get("bbox"):
        x1, y1, x2, y2 = args["bbox"]
        q = q.where(Grid.geom.op("&&")(func.ST_MakeEnvelope(x1, y1, x2, y2, 4326)))
    return q.order_by(Grid.code)


def grids_geojson(query) -> Iterator[bytes]:
    def feature(row) -> str:
        values = row._mapping
        props = json.dumps({name: _grid_value(row, name) for name in GRID_COLUMNS}, ensure_ascii=False)
        # the geometry is GeoJSON text from PostGIS already: written as it is, not parsed again
        return (f'{{"type":"Feature","id":{json.dumps(values["code"])},"geometry":{values["geometry"]},'
                f'"properties":{props}}}')

    return _feature_collection(_rows(query), feature)


def grids_gpkg(query) -> io.BufferedReader:
    """A GeoPackage (layer `grids`, EPSG:4326) written through GDAL a batch at a time to a temporary
    file; answered as an open file whose name is already gone, so nothing is left behind on disk."""
    import numpy as np
    import pyogrio

    def write(path, batch, append):
        geometry = np.array([bytes(row.geometry) for row in batch], dtype=object)
        data = [np.array([_grid_value(row, name) for row in batch], dtype=float if name == "area_m2" else object)
                for name in GRID_COLUMNS]
        pyogrio.raw.write(path, geometry, data, list(GRID_COLUMNS), layer="grids", driver="GPKG",
                          geometry_type="Polygon", crs="EPSG:4326", append=append)

    folder = tempfile.mkdtemp(prefix="gridpatrol-export-")
    try:
        path = os.path.join(folder, "grids.gpkg")
        batches = _rows(query)
        write(path, next(batches, []), append=False)  # the layer, even without a grid
        for batch in batches:
            write(path, batch, append=True)
        return open(path, "rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _grid_value(row, name):
    value = row._mapping[name]
    return round(value, 1) if name == "area_m2" else value


# ------------------------------------------------------------------ patrols

def day_patrols(user: User, args: dict) -> list[dict]:
    """The patrols GET /patrols lists for the day (same scope, same filters)."""
    return patrols.patrols(args["date"], args.get("inspector"), args.get("area"), user)


def patrols_geojson(items: list[dict], tz) -> Iterator[bytes]:
    """One LineString per patrol, its points in the order recorded (batch, then place in the batch: the
    order of the stored track), with the time of each point; no line below two points."""
    def batches():
        groups = itertools.groupby(_point_rows([p["id"] for p in items]), key=lambda r: r.patrol_id)
        pending = next(groups, None)
        for patrol in items:
            fixes = []
            if pending is not None and pending[0] == patrol["id"]:
                fixes = list(pending[1])
                pending = next(groups, None)
            yield [(patrol, fixes)]

    def feature(pair) -> dict:
        patrol, fixes = pair
        line = [[f.lon, f.lat] for f in fixes]
        return {"type": "Feature", "id": patrol["id"],
                "geometry": {"type": "LineString", "coordinates": line} if len(line) >= 2 else None,
                "properties": {
                    "id": patrol["id"], "inspector_id": patrol["inspector_id"],
                    "inspector_name": patrol["inspector_name"],
                    "started_at": _json_value(patrol["started_at"], tz),
                    "ended_at": _json_value(patrol["ended_at"], tz),
                    "length_m": round(float(patrol["length_m"] or 0), 1), "point_count": len(fixes),
                    "grid_codes": list(patrol["grid_codes"]),
                    "recorded_at": [_json_value(f.recorded_at, tz) for f in fixes]}}

    return _feature_collection(batches(), feature)


def _point_rows(patrol_ids: list[int]) -> Iterator:
    """The points of these patrols, patrol by patrol in the given order, from a server-side cursor."""
    if not patrol_ids:
        return iter(())
    query = text("""
        SELECT pt.patrol_id, ST_X(pt.geom) AS lon, ST_Y(pt.geom) AS lat, pt.recorded_at
        FROM patrol_points pt JOIN unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS o(id, n) ON o.id = pt.patrol_id
        ORDER BY o.n, pt.seq, pt.idx
    """).bindparams(ids=patrol_ids)
    return (row for batch in _rows(query) for row in batch)


# ------------------------------------------------------------------ shared

def local_tz():
    """The deployment's time zone: days are local days, times are written in it."""
    return catalog.work_calendar().tz


def filename(stem: str, suffix: str, tz) -> str:
    return f"{stem}-{utcnow().astimezone(tz):%Y%m%d-%H%M}.{suffix}"


def _rows(query) -> Iterator[list]:
    """The rows of `query` in batches from a server-side cursor; the cursor is closed however the
    iteration ends."""
    # a client that stops reading must not hold a connection and its snapshot for ever; a download is
    # the way to the large reads, and once its 200 is sent a cancelled statement could only cut it short:
    # it runs without the served statement limit (REQUEST_STATEMENT_TIMEOUT_S)
    db.session.execute(text(f"SELECT set_config('idle_in_transaction_session_timeout', '{IDLE_LIMIT_S}s', true),"
                            " set_config('statement_timeout', '0', true)"))
    result = db.session.execute(query.execution_options(yield_per=BATCH))
    try:
        yield from result.partitions()
    finally:
        result.close()


def _feature_collection(batches: Iterable[list], feature) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection, one chunk per batch of features."""
    yield b'{"type":"FeatureCollection","features":['
    separator = ""
    for batch in batches:
        if not batch:
            continue
        parts = [f if isinstance(f, str) else json.dumps(f, ensure_ascii=False) for f in map(feature, batch)]
        yield (separator + ",".join(parts)).encode()
        separator = ","
    yield b"]}"


def _take(buffer: io.StringIO) -> bytes:
    out = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return out


def _json_value(value, tz):
    """Times in the deployment's time zone, with their offset (the office reads local time)."""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv_value(value, tz) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    elif not isinstance(value, str):
        return str(_json_value(value, tz))
    return "'" + value if value.startswith(FORMULA_STARTS) else value
