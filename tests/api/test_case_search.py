"""The case list's free text (`q`): a case number by its beginning or its end, a description or an
address holding the text anywhere, letters in any case."""
import pytest

from helpers import office  # noqa: F401  (office is a fixture)


def _all(api, **params):
    r = api.get("/api/v1/cases", query_string={"per_page": 100, **params})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["total"] == len(body["items"])
    return {c["id"] for c in body["items"]}


def _matches(case, text_):
    """The rule, written out: what each case of the district must answer to."""
    return (case["number"].startswith(text_) or case["number"].endswith(text_)
            or text_.lower() in (case["description"] or "").lower() or text_.lower() in (case["address"] or "").lower())


@pytest.fixture
def cases(office):
    o = office
    lon, lat = o.district["point"](4)
    made = [o.inspector.report(lon=lon, lat=lat, description=d) for d in
            ("井盖破损", "垃圾满溢 see case 20261126_4711 %done", "路灯不亮")]
    made.append(o.inspector.report(lon=lon, lat=lat, description="占道经营", address="漕溪北路 88 号"))
    return [o.dispatcher.case(c["id"]) for c in made]


def test_a_number_is_found_whole_by_its_beginning_and_by_its_end(office, cases):
    d = office.dispatcher
    first = cases[0]["number"]
    texts = [first, first[:-1], first[:8], first[-3:], first[-1:], cases[2]["number"][-4:],
             first[3:9],                       # a middle alone is not a number search
             "4711", "20261126_4711", "%done", "漕溪北路", "see CASE", "nothing like it"]
    for text_ in texts:
        expected = {c["id"] for c in cases if _matches(c, text_)}
        assert _all(d, q=text_) == expected, text_
    assert _all(d, q=first) == {cases[0]["id"]}
    assert cases[0]["id"] in _all(d, q=first[-3:])
    # the middle of a number is found when it is also a beginning or an end of one: not here
    middle = first[3:9]
    if not any(_matches(c, middle) for c in cases):
        assert _all(d, q=middle) == set()


def test_like_wildcards_are_literal_at_both_ends(office, cases):
    d = office.dispatcher
    first = cases[0]["number"]
    assert _all(d, q="_") == {cases[1]["id"]}          # the one underscore, not any character
    assert _all(d, q="%") == {cases[1]["id"]}
    # as wildcards these would find the first case by its number's end or beginning
    for text_ in ("_" + first[-4:], "%" + first[-2:], first[:3] + "_", first[:2] + "%"):
        assert cases[0]["id"] not in _all(d, q=text_), text_
        assert _all(d, q=text_) == {c["id"] for c in cases if _matches(c, text_)}, text_
