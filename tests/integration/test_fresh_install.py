"""A deployment on a database of its own, set up by the README's commands alone (no demo), then the
HTTP contract's happy path walked against it by the contract's smoke script (tests/contract/smoke.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from helpers import served

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("fresh_admin", "Fresh-admin-2026!")


@pytest.fixture(scope="module")
def fresh(empty_database):
    """(owner url, app role url, run): an empty database migrated by `gridpatrol db upgrade`, with the
    app role made by `gridpatrol db app-role`; `run(*args, role=...)` runs `gridpatrol` in a process of
    its own as that role (the owner by default)."""
    owner, app = empty_database("fresh_install")

    def run(*args, role=owner):
        env = dict(os.environ, DATABASE_URL=role, MIGRATE_DATABASE_URL=owner)
        return subprocess.run([sys.executable, "-m", "gridpatrol.cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    role = make_url(app)
    for args in (("db", "upgrade"), ("db", "app-role", role.username, "--password", role.password)):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    return owner, app, run


def _rows(owner: str, sql: str, *params) -> list[tuple]:
    """The rows of one statement in the fresh database, read as its owner."""
    with psycopg.connect(owner.replace("+psycopg", "")) as c:
        return c.execute(sql, params).fetchall()


def _catalog(owner: str) -> tuple[int, list[tuple[str, bool]]]:
    return (_rows(owner, "SELECT coalesce(max(version), 0) FROM catalog_versions")[0][0],
            _rows(owner, "SELECT code, retired_in_version IS NULL FROM categories ORDER BY code"))


def _calendar_days(owner: str) -> list[tuple[str, bool]]:
    return _rows(owner, "SELECT to_char(day, 'YYYY-MM-DD'), workday FROM calendar_days ORDER BY day")


def _work_periods(owner: str):
    return _rows(owner, "SELECT value FROM settings WHERE key = 'work_periods'")


def test_a_catalog_file_with_a_fault_loads_nothing_and_names_it(fresh, tmp_path):
    owner, app, run = fresh
    shipped = json.loads((ROOT / "geodata" / "catalog.json").read_text())
    shipped["items"][3]["limits"].pop("B")
    shipped["items"][5]["code"] = "51"
    shipped["items"][7] = "0101"
    shipped["version"] = "two"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(shipped, ensure_ascii=False))
    before = _catalog(owner)
    done = run("catalog", "load-categories", str(path), role=app)
    assert done.returncode == 1
    assert "nothing loaded" in done.stderr
    assert f'"item 3 ({shipped["items"][3]["code"]})": {{"limits": {{"B": ["Missing data for required field."]}}}}' \
        in done.stderr
    assert '"item 5 (51)": {"code": ["a category code of 4 digits"]}' in done.stderr
    assert '"item 7": {"_schema": ["Invalid input type."]}' in done.stderr
    assert '"version": ["a whole number from 1' in done.stderr
    assert _catalog(owner) == before

    days, week = _calendar_days(owner), _work_periods(owner)
    for doc, fault in (
            ({"work_periods": {"mon": [["09:00", "12:00"]]},
              "days": [{"date": "2026-10-01", "workday": False}, {"date": "2026-13-01"}]}, "2026-13-01"),
            ({"work_periods": {"mon": [], "tue": []}, "days": [{"date": "2026-10-01", "workday": False}]},
             "the week needs at least one working period"),
            ({"work_periods": {"mon": [["09:00", "25:00"]], "tue": [["18:00", "09:00"]]}}, '"tue"'),
            ({"work_periods": {"monday": [["09:00", "12:00"]]}}, '{"monday": ["Unknown field."]}'),
            ({"work_periods": {"mon": [["09:00", "12:00"]]}, "days": [{"date": "2026-10-01", "name": None}]},
             "2026-10-01: a name is a text"),
            ({"days": []}, "work_periods")):
        calendar = tmp_path / "calendar.json"
        calendar.write_text(json.dumps(doc))
        done = run("catalog", "load-calendar", str(calendar), role=app)
        assert done.returncode == 1 and "nothing loaded" in done.stderr and fault in done.stderr, done.stderr
        assert (_calendar_days(owner), _work_periods(owner)) == (days, week)


def test_the_shipped_catalog_and_calendar_load_and_a_category_left_out_is_retired(fresh, tmp_path):
    owner, app, run = fresh
    shipped = json.loads((ROOT / "geodata" / "catalog.json").read_text())
    codes = sorted(item["code"] for item in shipped["items"])
    _, before = _catalog(owner)
    done = run("catalog", "load-categories", role=app)
    assert done.returncode == 0, done.stderr
    version, rows = _catalog(owner)
    assert f"catalog version {version}: {len(codes)} categories ({len(codes) - len(before)} new), 0 retired" \
        in done.stdout
    assert rows == [(code, True) for code in codes]
    # an office's own file without one category: a new version, that category retired and kept; its
    # values as the API takes them (a number given as text is a number)
    shipped["items"] = [item for item in shipped["items"] if item["code"] != codes[0]]
    shipped["items"][0]["limits"]["B"]["amount"] = "6"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(shipped, ensure_ascii=False))
    done = run("catalog", "load-categories", str(path), role=app)
    assert done.returncode == 0, done.stderr
    assert f"catalog version {version + 1}: {len(codes) - 1} categories (0 new), 1 retired: {codes[0]}" in done.stdout
    assert _catalog(owner) == (version + 1, [(codes[0], False)] + [(code, True) for code in codes[1:]])
    assert _rows(owner, "SELECT limits->'B'->'amount' FROM categories WHERE code = %s",
                 shipped["items"][0]["code"]) == [(6,)]
    done = run("catalog", "load-categories", role=app)  # the shipped file again brings it back
    assert done.returncode == 0, done.stderr
    assert f"{len(codes)} categories (0 new, 1 back from retirement: {codes[0]}), 0 retired" in done.stdout
    assert _catalog(owner) == (version + 2, [(code, True) for code in codes])

    calendar = json.loads((ROOT / "geodata" / "calendar.json").read_text())
    done = run("catalog", "load-calendar", role=app)
    assert done.returncode == 0, done.stderr
    assert f"{len(calendar['days'])} listed days" in done.stdout
    assert _calendar_days(owner) == sorted((d["date"], bool(d["workday"])) for d in calendar["days"])


AREAS = [{"code": "990101", "name": "冒烟区", "name_en": "Smoke District"},
         {"code": "990101001", "name": "冒烟街道"}, {"code": "990101001001", "name": "冒烟社区"}]


def _areas(owner: str) -> list[tuple]:
    return _rows(owner, "SELECT code, level, name, name_en, parent_code FROM admin_areas"
                        " WHERE code LIKE '990101%%' ORDER BY code")


def test_areas_are_named_from_a_file_and_a_file_with_a_fault_names_none(fresh, tmp_path):
    owner, app, run = fresh
    path = tmp_path / "areas.json"
    path.write_text(json.dumps(AREAS[1:] + [{"code": "990101001002", "name": "社区", "level": "street"},
                                            {"code": "99010100100", "name": ""}, {"code": ["1"], "name": "x"},
                                            {"code": "990101001", "name": "又一个"}], ensure_ascii=False))
    done = run("import-areas", str(path), role=app)
    assert done.returncode == 1 and "nothing loaded" in done.stderr
    assert '"item 0 (990101001)": {"code": ["990101 is neither in the file nor known"]}' in done.stderr
    assert '"level": ["a code of 12 digits is a community"]}' in done.stderr
    assert '"item 3 (99010100100)": {"code": ["6 digits' in done.stderr and '"name": ["a name of 1' in done.stderr
    assert '"item 4 ([\'1\'])": {"code": ["6 digits' in done.stderr
    assert '"item 5 (990101001)": {"code": ["990101001 is listed twice"]}' in done.stderr
    assert _areas(owner) == []
    path.write_text(json.dumps(AREAS, ensure_ascii=False))
    done = run("import-areas", str(path), role=app)
    assert done.returncode == 0 and "3 areas: 3 added, 0 renamed" in done.stdout, done.stderr
    assert _areas(owner) == [("990101", "district", "冒烟区", "Smoke District", None),
                             ("990101001", "street", "冒烟街道", None, "990101"),
                             ("990101001001", "community", "冒烟社区", None, "990101001")]


def test_the_contract_smoke_walks_the_closed_loop_on_a_fresh_install(fresh, tmp_path):
    owner, app, run = fresh
    areas = tmp_path / "areas.json"
    areas.write_text(json.dumps(AREAS, ensure_ascii=False))
    for args in (("catalog", "load-categories"), ("catalog", "load-calendar"), ("import-areas", str(areas)),
                 ("create-user", "--username", ADMIN[0], "--password", ADMIN[1], "--role", "admin",
                  "--scope", "990101")):
        done = run(*args, role=app)
        assert done.returncode == 0, done.stderr
    with served(app, str(tmp_path / "photos"), tmp_path, "gridpatrol-fresh", workers=2) as base:
        smoke = subprocess.run([sys.executable, str(ROOT / "tests" / "contract" / "smoke.py"), "--base", base,
                                "--admin", ":".join(ADMIN)], capture_output=True, text=True, timeout=300)
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert smoke.stdout.splitlines()[-1] == "smoke: the happy path of the contract holds"
        # its grids were imported into the areas named before (their names kept)
        assert [name for _, _, name, _, _ in _areas(owner)] == ["冒烟区", "冒烟街道", "冒烟社区"]
        assert "BAD" not in smoke.stdout
        # what the walk left: one case, closed after one rework, its team's KPIs counting it
        token = requests.post(base + "/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]},
                              timeout=10).json()["access_token"]
        cases = requests.get(base + "/api/v1/cases", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).json()
    assert [(c["status"], c["rework_count"], c["grid_code"]) for c in cases["items"]] \
        == [("closed", 1, "990101001001002")]
