"""The Open311 door as an outside app meets it: `gridpatrol serve` over HTTP, read with the
`georeport` client library from PyPI (written by others against the public specification), and
written with plain form POSTs, in JSON and in XML."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
import xmltodict
from georeport import GeoReport

FORMATS = ("json", "xml")
CONTACT = {"first_name": "Jianguo", "last_name": "Wuxiang", "email": "jianguo.wuxiang@example.net",
           "phone": "13800138000", "device_id": "ios-3b8e41", "account_id": "citizen-90817"}


def as_list(value):
    """xmltodict reads a container of one as the item itself."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parsed(r: requests.Response, fmt: str):
    if fmt == "json":
        assert r.headers["Content-Type"] == "application/json; charset=utf-8"
        return r.json()
    assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
    return xmltodict.parse(r.content)


@pytest.fixture
def city(live_server, make_user, make_team, district):
    """A district served by the live server, with a key issued by its admin and the people who work it."""
    admin = make_user("admin", scope=[district["code"]])
    key = admin.post("/api/v1/open311/keys", json={"name": "市民随手拍"}).get_json()["api_key"]
    team_name = f"市容所 {uuid.uuid4().hex[:6]}"
    team = make_team(kind="community", area_codes=[district["code"]], name=team_name)

    class City:
        root = live_server + "/open311/v2"
    c = City()
    c.district, c.key, c.team, c.team_name = district, key, team, team_name
    c.dispatcher = make_user("dispatcher", scope=[district["code"]])
    c.handler = make_user("handler", scope=[district["code"]], teams=[team])
    c.inspector = make_user("inspector", scope=[district["code"]])

    def post(fmt, **fields):
        lon, lat = district["point"](2)
        form = {"api_key": key, "service_code": "0701", "lat": f"{lat:.7f}", "long": f"{lon:.7f}",
                "description": "小区门口垃圾堆积"}
        form.update(fields)
        return requests.post(f"{c.root}/requests.{fmt}", data={k: v for k, v in form.items() if v is not None},
                             timeout=10)
    c.post = post
    return c


def test_the_client_reads_services_and_definitions_in_both_formats(city):
    by_format = {fmt: GeoReport(city.root, output_format=fmt) for fmt in FORMATS}
    services = {fmt: client.get_service_list() for fmt, client in by_format.items()}
    assert [s["service_code"] for s in services["json"]] == [s["service_code"] for s in services["xml"]]
    for as_json, as_xml in zip(services["json"], services["xml"]):
        assert as_json["service_name"] == as_xml["service_name"] and as_json["group"] == as_xml["group"]
        assert str(as_json["metadata"]).lower() == as_xml["metadata"] and as_xml["type"] == "realtime"
    light = next(s for s in services["json"] if s["service_code"] == "0109")
    assert light["metadata"] is True

    as_json = by_format["json"].get_service_definition("1101")
    as_xml = by_format["xml"].get_service_definition("1101")
    assert as_json["service_code"] == as_xml["service_code"] == "1101"
    xml_attributes = as_list(as_xml["attributes"]["attribute"])
    assert [a["code"] for a in as_json["attributes"]] == [a["code"] for a in xml_attributes] == \
        ["SAFETY", "MARKED", "DETAILS"]
    assert as_json["attributes"][0]["variable"] is False and xml_attributes[0]["variable"] == "false"
    assert [v["key"] for v in as_list(xml_attributes[1]["values"]["value"])] == ["yes", "no"]

    for client in by_format.values():
        with pytest.raises(requests.HTTPError) as caught:
            client.get_service_definition("9999")
        assert caught.value.response.status_code == 404


@pytest.mark.parametrize("fmt", FORMATS)
def test_posts_with_and_without_a_valid_key_and_with_bad_fields(city, fmt):
    def error(r, status):
        assert r.status_code == status, r.text[:300]
        doc = parsed(r, fmt)
        items = doc if fmt == "json" else as_list(doc["errors"]["error"])
        assert items and all(str(i["code"]) == str(status) and i["description"] for i in items)
        return [i["description"] for i in items]

    error(city.post(fmt, api_key=None), 403)
    error(city.post(fmt, api_key="made-up"), 403)
    error(city.post(fmt, service_code="0000"), 404)
    assert any("lat" in d for d in error(city.post(fmt, lat="thirty"), 400))
    assert any("location" in d for d in error(city.post(fmt, lat=None, long=None), 400))
    assert any("MARKED" in d for d in error(city.post(fmt, service_code="1101"), 400))

    r = city.post(fmt, service_code="1101", **{"attribute[MARKED]": "no", "attribute[DETAILS]": "井口约60厘米"})
    assert r.status_code == 201, r.text[:300]
    doc = parsed(r, fmt)
    (answer,) = doc if fmt == "json" else as_list(doc["service_requests"]["request"])
    assert answer["service_request_id"] and answer["token"] and answer["service_notice"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_posted_request_is_followed_by_token_and_id_through_to_closure(city, fmt):
    client = GeoReport(city.root, output_format=fmt)
    raw = []  # every answer as sent, to check that no contact detail is ever published

    r = city.post(fmt, **CONTACT)
    assert r.status_code == 201, r.text[:300]
    raw.append(r.text)
    doc = parsed(r, fmt)
    (posted,) = doc if fmt == "json" else as_list(doc["service_requests"]["request"])

    r = requests.get(f"{city.root}/tokens/{posted['token']}.{fmt}", timeout=10)
    assert r.status_code == 200
    raw.append(r.text)
    doc = parsed(r, fmt)
    (resolved,) = doc if fmt == "json" else as_list(doc["service_requests"]["request"])
    assert resolved["token"] == posted["token"]
    number = resolved["service_request_id"]
    assert number == posted["service_request_id"]

    def read():
        item = client.get_service_request(number)
        listed = as_list(client.get_service_requests(service_request_id=number))
        assert [i["service_request_id"] for i in listed] == [number]
        raw.append(repr(item))
        return item

    item = read()
    assert item["status"] == "open" and item["service_code"] == "0701"
    assert item["description"] == "小区门口垃圾堆积"
    today = datetime.now(timezone.utc)
    window = as_list(client.get_service_requests(
        service_code="0701", status="open", start_date=(today - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_date=(today + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert number in [i["service_request_id"] for i in window]

    case = next(c for c in city.dispatcher.get("/api/v1/cases", query_string={"q": number}).get_json()["items"]
                if c["number"] == number)
    assert case["source"] == "open311" and case["status"] == "reported"
    city.dispatcher.act(case["id"], "register")
    city.dispatcher.act(case["id"], "dispatch", {"team_id": city.team})
    item = read()
    assert item["status"] == "open" and item["agency_responsible"] == city.team_name and item["expected_datetime"]
    city.handler.act(case["id"], "accept")
    photo = city.handler.photo(case["id"], "after")
    city.handler.act(case["id"], "handle", {"note": "垃圾已清运", "photo_ids": [photo["id"]]})
    lon, lat = city.district["point"](2)
    check = city.inspector.photo(case["id"], "verification")
    city.inspector.act(case["id"], "verify_pass", {"photo_ids": [check["id"]], "lon": lon, "lat": lat})

    item = read()
    assert item["status"] == "closed"
    assert item["status_notes"] == "已核查结案：垃圾已清运"
    assert item["agency_responsible"] == city.team_name
    closed = as_list(client.get_service_requests(service_code="0701", status="closed"))
    assert number in [i["service_request_id"] for i in closed]
    raw.append(requests.get(f"{city.root}/requests.{fmt}", params={"service_code": "0701"}, timeout=10).text)

    published = "\n".join(raw)
    for value in CONTACT.values():
        assert value not in published, value
