"""The working calendar held as data: read by everyone, changed by an administrator, and the
deadlines set after a change count with it.

The calendar is the deployment's own: the tests here change days far from the ones other tests use,
and put back the working periods they change."""
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpers import put, sql, work_periods

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFFICE = [["09:00", "12:00"], ["13:00", "18:00"]]


def listed_days(app):
    return sql(app, "SELECT day, workday, name FROM calendar_days ORDER BY day")


def stored_periods(app):
    return sql(app, "SELECT value FROM settings WHERE key = 'work_periods'")


def test_everyone_reads_the_calendar_of_a_year(make_user):
    for role in ("inspector", "handler", "dispatcher", "supervisor", "admin"):
        r = make_user(role).get("/api/v1/calendar?year=2026")
        assert r.status_code == 200, role
    body = r.get_json()
    assert body["timezone"] == "Asia/Shanghai"
    assert body["work_periods"] == {**{d: OFFICE for d in WEEKDAYS[:5]}, "sat": [], "sun": []}
    days = body["days"]
    assert days and all(d["date"].startswith("2026-") for d in days)
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    by_date = {d["date"]: d for d in days}
    assert by_date["2026-01-01"] == {"date": "2026-01-01", "workday": False, "name": "元旦"}
    assert by_date["2026-01-04"]["workday"] is True and by_date["2026-01-04"]["name"]
    later = make_user("inspector").get("/api/v1/calendar?year=2027").get_json()["days"]
    assert later and all(d["date"].startswith("2027-") for d in later)
    every = make_user("inspector").get("/api/v1/calendar").get_json()["days"]
    assert len(every) >= len(days) + len(later)


def test_the_calendar_needs_a_signed_in_user(anon):
    assert anon.get("/api/v1/calendar").status_code == 401
    assert anon.client.put("/api/v1/calendar/days/2031-06-09", json={"workday": False}).status_code == 401


@pytest.mark.parametrize("query", ["year=26x", "year=1800", "year=3000"])
def test_bad_calendar_queries_are_422(make_user, query):
    r = make_user("inspector").get(f"/api/v1/calendar?{query}")
    assert r.status_code == 422 and "year" in r.get_json()["errors"]


def test_an_admin_lists_changes_and_unlists_a_day(app, make_user):
    admin = make_user("admin")
    r = put(admin, "/api/v1/calendar/days/2031-06-09", {"workday": False, "name": "测试假日"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"date": "2031-06-09", "workday": False, "name": "测试假日"}
    days = make_user("inspector").get("/api/v1/calendar?year=2031").get_json()["days"]
    assert {"date": "2031-06-09", "workday": False, "name": "测试假日"} in days
    # the same day again: changed in place
    r = put(admin, "/api/v1/calendar/days/2031-06-14", {"workday": True})
    assert r.status_code == 200 and r.get_json() == {"date": "2031-06-14", "workday": True, "name": ""}
    r = put(admin, "/api/v1/calendar/days/2031-06-09", {"workday": True, "name": "调休"})
    assert r.get_json()["workday"] is True
    assert [d for d in listed_days(app) if d.day.year == 2031] == [(date(2031, 6, 9), True, "调休"),
                                                                    (date(2031, 6, 14), True, "")]
    for day in ("2031-06-09", "2031-06-14"):
        r = admin.delete(f"/api/v1/calendar/days/{day}")
        assert r.status_code == 204 and r.data == b""
    assert [d for d in listed_days(app) if d.day.year == 2031] == []
    assert admin.delete("/api/v1/calendar/days/2031-06-09").status_code == 404


@pytest.mark.parametrize("roles", [("dispatcher",), ("supervisor",), ("handler",), ("inspector",)])
def test_only_an_admin_changes_the_calendar(app, make_user, roles):
    api = make_user(*roles)
    days, periods = listed_days(app), stored_periods(app)
    assert put(api, "/api/v1/calendar/days/2031-06-10", {"workday": False}).status_code == 403
    assert api.delete("/api/v1/calendar/days/2026-01-01").status_code == 403
    assert put(api, "/api/v1/calendar/work-periods", {"mon": [["00:00", "24:00"]]}).status_code == 403
    assert listed_days(app) == days and stored_periods(app) == periods


@pytest.mark.parametrize("day, body, field", [
    ("2031-02-30", {"workday": False}, "date"),
    ("tomorrow", {"workday": False}, "date"),
    ("2031-6-9", {"workday": False}, "date"),
    ("2031-06-11", {}, "workday"),
    ("2031-06-11", {"workday": "yes"}, "workday"),
    ("2031-06-11", {"workday": None}, "workday"),
    ("2031-06-11", {"workday": False, "name": "x" * 101}, "name"),
    ("2031-06-11", {"workday": False, "kind": "holiday"}, "kind"),
])
def test_invalid_days_are_422_naming_the_field(app, make_user, day, body, field):
    admin = make_user("admin")
    days = listed_days(app)
    r = put(admin, f"/api/v1/calendar/days/{day}", body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"], r.get_json()
    assert listed_days(app) == days
    assert admin.delete(f"/api/v1/calendar/days/{day}").status_code in (404, 422)
    assert listed_days(app) == days


def test_the_working_periods_are_replaced_and_read_back(make_user):
    admin = make_user("admin")
    week = {"mon": [["8:30", "12:00"], ["13:00", "17:30"]], "tue": OFFICE, "sat": [["10:00", "24:00"]], "sun": []}
    with work_periods(admin, week) as answer:
        expected = {"mon": [["08:30", "12:00"], ["13:00", "17:30"]], "tue": OFFICE, "wed": [], "thu": [], "fri": [],
                    "sat": [["10:00", "24:00"]], "sun": []}
        assert answer == {"timezone": "Asia/Shanghai", "work_periods": expected}
        assert make_user("inspector").get("/api/v1/calendar").get_json()["work_periods"] == expected
    assert make_user("inspector").get("/api/v1/calendar").get_json()["work_periods"] == {
        **{d: OFFICE for d in WEEKDAYS[:5]}, "sat": [], "sun": []}


@pytest.mark.parametrize("body, field", [
    ({"mon": [["18:00", "09:00"]]}, "mon"),
    ({"tue": [["09:00", "12:00"], ["11:00", "18:00"]]}, "tue"),
    ({"wed": [["09:00", "25:00"]]}, "wed"),
    ({"thu": [["24:00", "10:00"]]}, "thu"),
    ({"fri": [["09:00"]]}, "fri"),
    ({"fri": [["nine", "five"]]}, "fri"),
    ({"sat": "09:00-18:00"}, "sat"),
    ({"funday": [["09:00", "12:00"]]}, "funday"),
    ({}, "work_periods"),
    ({"mon": [], "sun": None}, "work_periods"),
])
def test_invalid_working_periods_are_422_and_change_nothing(app, make_user, body, field):
    admin = make_user("admin")
    periods = stored_periods(app)
    r = put(admin, "/api/v1/calendar/work-periods", body)
    assert r.status_code == 422, r.get_json()
    assert any(k == field or k.startswith(field + ".") for k in r.get_json()["errors"]), r.get_json()
    assert stored_periods(app) == periods


def test_deadlines_set_after_a_change_count_with_it(make_user, district):
    admin = make_user("admin")
    inspector = make_user("inspector", scope=[district["code"]])
    lon, lat = district["point"](2)
    around_the_clock = {d: [["00:00", "24:00"]] for d in WEEKDAYS}
    with work_periods(admin, around_the_clock):
        case = inspector.report(lon=lon, lat=lat)
        reported = datetime.fromisoformat(case["reported_at"])
        if reported.astimezone(SHANGHAI).date().isoformat() not in {
                d["date"] for d in admin.get("/api/v1/calendar").get_json()["days"] if not d["workday"]}:
            # every hour is a working hour: the hour to register is an hour of the clock
            assert datetime.fromisoformat(case["deadlines"]["register"]) - reported == timedelta(hours=1)
        # the day of the next report made a holiday: its hour starts when the day is over
        today = datetime.now(SHANGHAI).date()
        listed_before = {d["date"]: d for d in admin.get(f"/api/v1/calendar?year={today.year}").get_json()["days"]}
        assert put(admin, f"/api/v1/calendar/days/{today.isoformat()}", {"workday": False, "name": "测试"}
                   ).status_code == 200
        try:
            case = inspector.report(lon=lon, lat=lat)
        finally:
            before = listed_before.get(today.isoformat())
            if before:
                put(admin, f"/api/v1/calendar/days/{before['date']}", {"workday": before["workday"],
                                                                        "name": before["name"]})
            else:
                assert admin.delete(f"/api/v1/calendar/days/{today.isoformat()}").status_code == 204
        reported = datetime.fromisoformat(case["reported_at"]).astimezone(SHANGHAI)
        deadline = datetime.fromisoformat(case["deadlines"]["register"])
        if reported.date() == today:
            next_day = datetime.combine(today + timedelta(days=1), time(0), tzinfo=SHANGHAI)
            assert deadline == next_day + timedelta(hours=1)
        else:  # the report was made after midnight: the holiday was over
            assert deadline - reported == timedelta(hours=1)


def test_the_openapi_document_describes_the_calendar(app):
    from gridpatrol.catalog.schemas import DayIn, WorkPeriodsIn

    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert {"get"} <= set(spec["paths"]["/api/v1/calendar"])
    day = spec["paths"]["/api/v1/calendar/days/{day}"]
    ref = day["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]) == set(DayIn().load_fields)
    assert "204" in day["delete"]["responses"]
    ref = spec["paths"]["/api/v1/calendar/work-periods"]["put"]["requestBody"]["content"]["application/json"][
        "schema"]["$ref"]
    assert set(spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]) == set(WorkPeriodsIn().load_fields)
    assert set(WorkPeriodsIn().load_fields) == set(WEEKDAYS)
