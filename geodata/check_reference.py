#!/usr/bin/env python3
"""Sanity checks for the hand-maintained reference data: catalog.json and calendar.json.

Run: python geodata/check_reference.py   (stdlib only; exits non-zero on the first failure)
These files are edited by people, so the checks encode the rules a reviewer would
otherwise have to remember.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent

PART_MAJORS = {f"{m:02d}" for m in range(1, 7)}
EVENT_MAJORS = {f"{m:02d}" for m in range(7, 13)}
TEAM_KINDS = {"enforcement", "community"}
# Statutory paid holidays per year under the 2025 revision of 《全国年节及纪念日放假办法》:
# 元旦1 + 春节4 + 清明1 + 劳动节2 + 端午1 + 中秋1 + 国庆3.
STATUTORY_DAYS = 13
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours(limit: dict) -> float:
    """Rough size of a limit in hours, only for ordering A <= B <= C (a working day ~ 8 h)."""
    per_day = 24 if limit["clock"] else 8
    return limit["amount"] * (per_day if limit["unit"] == "day" else 1)


def check_catalog() -> Counter:
    cat = json.loads((HERE / "catalog.json").read_text(encoding="utf-8"))
    assert isinstance(cat["version"], int) and cat["version"] >= 1
    items = cat["items"]
    codes = [i["code"] for i in items]
    assert len(codes) == len(set(codes)), "duplicate category codes"
    major_names: dict[str, tuple[str, str]] = {}
    for i in items:
        c = i["code"]
        assert re.fullmatch(r"\d{4}", c), c
        assert i["major"] == c[:2], c
        assert i["kind"] in ("part", "event"), c
        assert c[:2] in (PART_MAJORS if i["kind"] == "part" else EVENT_MAJORS), f"{c}: major vs kind"
        assert i["team_kind"] in TEAM_KINDS, c
        for key in ("name_zh", "name_en", "major_name_zh", "major_name_en",
                    "filing_condition", "closure_condition"):
            assert isinstance(i[key], str) and i[key].strip(), f"{c}: {key}"
        names = (i["major_name_zh"], i["major_name_en"])
        assert major_names.setdefault(i["major"], names) == names, f"{c}: major name differs"
        lim = i["limits"]
        assert set(lim) == {"A", "B", "C"}, c
        for cls, l in lim.items():
            assert set(l) == {"amount", "unit", "clock"}, f"{c}/{cls}"
            assert isinstance(l["amount"], int) and l["amount"] > 0, f"{c}/{cls}"
            assert l["unit"] in ("hour", "day") and isinstance(l["clock"], bool), f"{c}/{cls}"
        # A is the urgent/safety class: always counted on the clock, at most 2 hours.
        assert lim["A"]["clock"] and lim["A"]["unit"] == "hour" and lim["A"]["amount"] <= 2, c
        assert hours(lim["A"]) <= hours(lim["B"]) <= hours(lim["C"]), f"{c}: limits not ordered"
        if not lim["C"]["clock"]:
            assert lim["C"]["unit"] == "day" and 5 <= lim["C"]["amount"] <= 20, f"{c}: C limit"
    assert len({i["name_zh"] for i in items}) == len(items), "duplicate zh names"
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 45 and kinds["part"] and kinds["event"]
    return kinds


def check_calendar() -> dict:
    cal = json.loads((HERE / "calendar.json").read_text(encoding="utf-8"))
    assert cal["timezone"] == "Asia/Shanghai"
    for day, periods in cal["work_periods"].items():
        assert day in WEEKDAYS, day
        for start, end in periods:
            assert re.fullmatch(r"\d\d:\d\d", start) and re.fullmatch(r"\d\d:\d\d", end) and start < end
    entries = cal["days"]
    dates = [e["date"] for e in entries]
    assert dates == sorted(dates) and len(dates) == len(set(dates)), "days must be sorted and unique"

    special = {}
    for e in entries:
        d = dt.date.fromisoformat(e["date"])
        assert isinstance(e["workday"], bool) and e["name"], e
        if e["workday"]:
            assert d.weekday() >= 5, f"{d}: a swapped working day must be a weekend day"
        special[d] = e["workday"]

    provisional_years = {e["date"][:4] for e in entries if e.get("provisional")}
    if provisional_years:
        assert cal.get("notes"), "provisional days need a notes string saying so"

    summary = {}
    for year in sorted({d.year for d in special}):
        day, streak, longest, off_weekdays, swaps = dt.date(year, 1, 1), 0, 0, 0, 0
        while day.year == year:
            weekend = day.weekday() >= 5
            working = special.get(day, not weekend)
            off_weekdays += (not weekend and not working)
            swaps += (weekend and working)
            streak = streak + 1 if working else 0
            longest = max(longest, streak)
            day += dt.timedelta(days=1)
        # Each statutory day costs one weekday; swaps pay back the extra bridge days.
        assert off_weekdays - swaps == STATUTORY_DAYS, f"{year}: {off_weekdays} off - {swaps} swaps"
        assert longest <= 7, f"{year}: {longest} consecutive working days"
        summary[year] = {"provisional": str(year) in provisional_years, "longest_work_streak": longest,
                         "weekday_holidays": off_weekdays, "swapped_workdays": swaps}
    return summary


def main():
    kinds = check_catalog()
    print(f"catalog: {kinds['part']} parts, {kinds['event']} events")
    for year, info in check_calendar().items():
        print(f"calendar {year}: {info}")


if __name__ == "__main__":
    main()
