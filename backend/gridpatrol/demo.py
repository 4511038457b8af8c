"""The demo district: reference data, teams of all four kinds, a user for every role, and a few
hundred cases with 60 days of history, made through the same services as real work."""
import io
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import func, select, text

from .auth import services as auth
from .auth.models import User
from .cases import services as cases
from .catalog import services as catalog
from .core.db import clock_at, utcnow
from .core.errors import Problem
from .extensions import db
from .grids import importer
from .grids import services as grids
from .photos import services as photos
from .teams import services as teams

DISTRICT = "310199"
PASSWORD = "Demo-pass-2026"


def is_loaded() -> bool:
    return db.session.execute(select(func.count()).select_from(User)).scalar_one() > 0


def load(geodata: Path, n_cases: int = 400, seed: int = 2026) -> list[dict]:
    rnd = random.Random(seed)
    grids.area_names(json.loads((geodata / "areas.json").read_text()))
    result = importer.import_grids((geodata / "demo_district.geojson").read_bytes(), "demo_district.geojson")
    if result.rejected:
        raise RuntimeError(f"demo grids rejected: {result.rejected[:3]}")
    catalog.load_catalog(json.loads((geodata / "catalog.json").read_text()))
    catalog.load_calendar(json.loads((geodata / "calendar.json").read_text()))
    admin = auth.create_user(username="admin", password=PASSWORD, display_name="系统管理员", roles=["admin"],
                             scope=["*"])
    team_rows = _teams(admin)
    users = _users(team_rows, rnd)
    db.session.flush()
    _cases(users, team_rows, n_cases, rnd)
    db.session.commit()
    return [{"username": "admin", "password": PASSWORD, "roles": ["admin"]}] + [
        {"username": u.username, "password": PASSWORD, "roles": u.roles} for u in users.values()]


def _teams(admin: User) -> dict[str, object]:
    categories = catalog.categories()
    enforcement = [c.code for c in categories if c.team_kind == "enforcement"]
    community = [c.code for c in categories if c.team_kind == "community"]
    streets = [s for s in db.session.execute(text(
        "SELECT code FROM admin_areas WHERE level = 'street' AND code LIKE :d ORDER BY code"), {"d": DISTRICT + "%"}
    ).scalars()]
    north, south = streets[: len(streets) // 2], streets[len(streets) // 2:]
    spec = [
        ("patrol", "示范区网格巡查队", ["城管", "市容"], [DISTRICT], []),
        ("enforcement", "示范区城管执法中队（北片）", ["城管", "市场监管", "公安"], north, enforcement),
        ("enforcement", "示范区城管执法中队（南片）", ["城管", "市场监管", "公安"], south, enforcement),
        ("enforcement", "示范区市政养护所", ["市政养护", "绿化市容"], [DISTRICT], enforcement[: len(enforcement) // 2]),
        ("community", "望湖路街道社区工作站", ["社区民警", "物业", "居委会"], streets[:1], community),
        ("community", "示范区物业联合管理站", ["物业", "业委会", "居委会"], streets[1:], community),
        ("supervision", "示范区督察组", ["区城运中心", "人大代表"], [DISTRICT], []),
    ]
    out = {}
    for kind, name, agencies, areas, cats in spec:
        out[name] = teams.create_team(name=name, kind=kind, agencies=agencies, area_codes=areas, grid_codes=[],
                                      category_codes=cats, actor=admin)
    return out


def _users(team_rows, rnd) -> dict[str, User]:
    grid_codes = list(db.session.execute(text("SELECT code FROM grids WHERE code LIKE :d ORDER BY code"),
                                         {"d": DISTRICT + "%"}).scalars())
    handling = [t for t in team_rows.values() if t.kind in ("enforcement", "community")]
    patrol = next(t for t in team_rows.values() if t.kind == "patrol")
    spec = [("dispatcher", "派遣员 王敏", ["dispatcher"], [], []),
            ("dispatcher2", "值班长 陈刚", ["dispatcher"], [], []),
            ("supervisor", "督察员 李华", ["supervisor"], [], [])]
    for i in range(1, 5):
        # each inspector is responsible for a block of about 40 grids
        block = grid_codes[(i - 1) * 40: i * 40]
        spec.append((f"inspector{i}", f"网格巡查员 {['张伟', '刘洋', '赵静', '孙磊'][i - 1]}", ["inspector"],
                     [patrol.id], block))
    for i, team in enumerate(handling, 1):
        spec.append((f"handler{i}", f"处置员 {team.name[:6]}{i}", ["handler"], [team.id], []))
    users = {}
    for username, name, roles, team_ids, block in spec:
        users[username] = auth.create_user(username=username, password=PASSWORD, display_name=name, roles=roles,
                                           scope=[DISTRICT], team_ids=team_ids, grid_codes=block)
    return users


def _photo(rnd, label: str) -> bytes:
    img = Image.new("RGB", (320, 240), tuple(rnd.randrange(40, 220) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rnd.randrange(320), rnd.randrange(240)
        draw.rectangle([x, y, x + rnd.randrange(20, 90), y + rnd.randrange(20, 60)],
                       fill=tuple(rnd.randrange(256) for _ in range(3)))
    draw.text((10, 10), label, fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


# how far each demo case goes through the loop, with weights
_PATHS = [
    (["report"], 8), (["report", "register"], 7), (["report", "reject"], 6), (["report", "merge"], 2),
    (["report", "register", "dispatch"], 9), (["report", "register", "dispatch", "accept"], 10),
    (["report", "register", "dispatch", "return"], 4),
    (["report", "register", "dispatch", "accept", "suspend"], 3),
    (["report", "register", "dispatch", "accept", "handle"], 8),
    (["report", "register", "dispatch", "accept", "handle", "verify_pass"], 33),
    (["report", "register", "dispatch", "accept", "handle", "verify_fail", "accept", "handle", "verify_pass"], 7),
    (["report", "register", "dispatch", "accept", "request_extension", "decide_extension", "handle"], 3),
]


# how old, at most, a demo case that stopped at this step may be (days)
_AGE_DAYS = {"report": 0.3, "register": 0.6, "dispatch": 3, "accept": 8, "return": 1, "suspend": 20, "handle": 1}


def _cases(users, team_rows, n_cases, rnd):
    inspectors = [u for u in users.values() if "inspector" in u.roles]
    dispatcher = users["dispatcher"]
    categories = [c for c in catalog.categories() if c.active]
    points = db.session.execute(text("""
        SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat FROM (
          SELECT code, ST_PointOnSurface(geom) AS p FROM grids WHERE code LIKE :d ORDER BY code) g
    """), {"d": DISTRICT + "%"}).all()
    handlers_by_team = {}
    for u in users.values():
        for t in u.team_ids:
            handlers_by_team.setdefault(t, u)
    now = utcnow()
    paths = [p for p, w in _PATHS for _ in range(w)]
    open_parents = []
    for i in range(n_cases):
        path = rnd.choice(paths)
        # work still waiting is recent, as in a working office; finished work spreads over 60 days
        t = now - timedelta(days=rnd.uniform(0.02, _AGE_DAYS.get(path[-1], 60)))
        if now - t > timedelta(days=1):
            t = t.replace(hour=rnd.randrange(0, 10), minute=rnd.randrange(60))  # 08:00–18:00 Beijing time
        inspector = rnd.choice(inspectors)
        category = rnd.choice(categories)
        p = rnd.choice(points)
        body = {"category_code": category.code, "description": f"{category.name_zh}：巡查发现（演示案件 {i + 1}）",
                "lon": p.lon + rnd.uniform(-0.0002, 0.0002), "lat": p.lat + rnd.uniform(-0.0002, 0.0002),
                "accuracy_m": rnd.choice([4, 6, 8, 12, 25]), "observed_at": t - timedelta(minutes=3),
                "urgency": rnd.choices("ABC", [1, 6, 2])[0]}
        try:
            with clock_at(t):
                case = cases.report(inspector, body)
                photos.add_photo(case.id, inspector, "before", _photo(rnd, case.number), t)
            _walk(case, path[1:], t, users, dispatcher, inspector, handlers_by_team, team_rows, open_parents, rnd, now)
        except Problem as exc:  # a demo case that cannot go further stays where it is
            db.session.rollback()
            raise RuntimeError(f"demo case {i}: {exc.detail}") from exc
        if case.status in ("registered", "dispatched", "in_progress"):
            open_parents.append(case)
        if case.is_open and rnd.random() < 0.08:  # the supervision team presses on some open cases (督办)
            with clock_at(min(now, case.updated_at + timedelta(hours=rnd.randrange(2, 48)))):
                cases.act(case.id, "escalate", {"level": rnd.choice([1, 1, 2, 3]), "note": "请加快处置"},
                          users["supervisor"], case.version)
        db.session.flush()


def _walk(case, steps, t, users, dispatcher, inspector, handlers_by_team, team_rows, open_parents, rnd, now):
    verifier = next(u for u in users.values() if "inspector" in u.roles and u.id != inspector.id)
    for action in steps:
        t = t + timedelta(minutes=rnd.randrange(20, 60 * 30))
        if t >= now:
            return
        body, actor = {}, dispatcher
        if action == "register":
            pass
        elif action == "reject":
            body = {"reason": "不符合立案条件"}
        elif action == "merge":
            parent = next((c for c in reversed(open_parents) if c.id != case.id and c.status in
                           ("registered", "dispatched", "in_progress")), None)
            if parent is None:
                return
            body = {"parent_id": parent.id}
        elif action == "dispatch":
            ranked = [s for s in teams.suggestions(case, dispatcher.scope) if s["team_id"] in handlers_by_team]
            body = {"team_id": ranked[0]["team_id"]}
        elif action in ("accept", "return", "request_extension"):
            actor = handlers_by_team[case.lead_team_id]
            body = {"return": {"reason_code": "not_competent", "note": "不属于本单位职责"},
                    "request_extension": {"hours": 8, "reason": "需协调物业配合"}}.get(action, {})
        elif action == "decide_extension":
            body = {"approve": rnd.random() < 0.7}
        elif action == "handle":
            actor = handlers_by_team[case.lead_team_id]
            with clock_at(t):
                photo = photos.add_photo(case.id, actor, "after", _photo(rnd, f"after {case.number}"), t)
            body = {"note": "已处置完毕", "photo_ids": [photo.id]}
        elif action in ("verify_pass", "verify_fail"):
            actor = verifier
            with clock_at(t):
                photo = photos.add_photo(case.id, actor, "verification", _photo(rnd, f"check {case.number}"), t)
            lon, lat = cases.lonlat(case)
            body = ({"photo_ids": [photo.id], "lon": lon, "lat": lat, "accuracy_m": 6} if action == "verify_pass"
                    else {"reason": "现场仍有问题，需返工", "photo_ids": [photo.id]})
        elif action == "suspend":
            body = {"reason": "等待权属单位确认"}
        with clock_at(t):
            cases.act(case.id, action, body, actor, case.version)
