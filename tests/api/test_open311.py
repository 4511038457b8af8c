"""The Open311 GeoReport v2 door, through the whole app: both formats, the errors, the keys,
and a citizen's request followed by token and id from its posting to its closure."""
import hashlib
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

BASE = "/open311/v2"
FORMATS = ("json", "xml")
CONTAINERS = {"services", "service_requests", "errors", "attributes", "values", "endpoints", "formats"}
CONTACT = {"first_name": "Meiling", "last_name": "Zhoufang", "email": "meiling.zhoufang@example.org",
           "phone": "+86 139 1234 5678", "device_id": "device-7f3a9c", "account_id": "acct-55219"}


# ------------------------------------------------------------------ helpers

def from_xml(element):
    """GeoReport XML read back by the Spark convention: containers are lists, leaves are text."""
    if element.tag in CONTAINERS:
        return [from_xml(child) for child in element]
    if len(element):
        return {child.tag: from_xml(child) for child in element}
    return element.text


def as_xml_text(value):
    """What a JSON value reads as in XML (every leaf is text; null is an empty element)."""
    if isinstance(value, list):
        return [as_xml_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_xml_text(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None or value == "" else str(value)


def body(r, fmt):
    """The parsed body, after checking the content type and, for XML, the declaration and root."""
    if fmt == "json":
        assert r.headers["Content-Type"] == "application/json; charset=utf-8", r.headers["Content-Type"]
        return json.loads(r.data)
    assert r.headers["Content-Type"] == "text/xml; charset=utf-8", r.headers["Content-Type"]
    assert r.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return from_xml(ET.fromstring(r.data))


def root_tag(r) -> str:
    return ET.fromstring(r.data).tag


def errors(r, status, fmt):
    """An error answer in the specification's format: the HTTP status and a list of {code, description}."""
    assert r.status_code == status, (r.status_code, r.data[:500])
    items = body(r, fmt)
    if fmt == "xml":
        assert root_tag(r) == "errors"
    assert isinstance(items, list) and items, items
    for item in items:
        assert set(item) == {"code", "description"}
        assert str(item["code"]) == str(status) and item["description"]
    return [item["description"] for item in items]


def sql(app, statement, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        result = db.session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        db.session.commit()
        return rows


@pytest.fixture
def door(client, make_user, make_team, district):
    """A district of its own with an admin, an Open311 key for it, and the people who work its cases."""
    admin = make_user("admin", scope=[district["code"]])
    r = admin.post("/api/v1/open311/keys", json={"name": f"citizen app {uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.get_json()
    team_name = f"城管中队 {uuid.uuid4().hex[:6]}"
    team = make_team(kind="enforcement", area_codes=[district["code"]], name=team_name)

    class Door:
        pass
    d = Door()
    d.district, d.admin, d.key, d.key_id = district, admin, r.get_json()["api_key"], r.get_json()["id"]
    d.team, d.team_name = team, team_name
    d.dispatcher = make_user("dispatcher", scope=[district["code"]])
    d.handler = make_user("handler", scope=[district["code"]], teams=[team])
    d.inspector = make_user("inspector", scope=[district["code"]])

    def post(fmt="json", key=None, **fields):
        lon, lat = district["point"](4)
        form = {"api_key": d.key if key is None else key, "service_code": "0701", "lat": str(lat), "long": str(lon),
                "description": "路边有暴露垃圾 exposed garbage by the road"}
        form.update(fields)
        return client.post(f"{BASE}/requests.{fmt}", data={k: v for k, v in form.items() if v is not None})
    d.post = post
    return d


def post_ok(door, fmt="json", **fields) -> dict:
    r = door.post(fmt, **fields)
    assert r.status_code == 201, r.data[:500]
    answer = body(r, fmt)
    if fmt == "xml":
        assert root_tag(r) == "service_requests"
    assert isinstance(answer, list) and len(answer) == 1
    return answer[0]


def case_by_number(api, number) -> dict:
    r = api.get("/api/v1/cases", query_string={"q": number})
    assert r.status_code == 200, r.get_json()
    found = [c for c in r.get_json()["items"] if c["number"] == number]
    assert len(found) == 1, r.get_json()
    return found[0]


def published(client, number, fmt="json", **query) -> dict:
    r = client.get(f"{BASE}/requests/{number}.{fmt}", query_string=query)
    assert r.status_code == 200, r.data[:500]
    items = body(r, fmt)
    assert len(items) == 1 and items[0]["service_request_id"] == number
    return items[0]


# ------------------------------------------------------------------ discovery and services

@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_names_the_endpoint_and_both_formats(client, fmt):
    r = client.get(f"{BASE}/discovery.{fmt}")
    assert r.status_code == 200
    doc = body(r, fmt)
    if fmt == "xml":
        assert root_tag(r) == "discovery"
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert doc["changeset"] and doc["contact"] and doc["key_service"]


def test_services_are_the_public_active_categories_in_both_formats(client, app):
    as_json = body(client.get(f"{BASE}/services.json"), "json")
    as_xml = client.get(f"{BASE}/services.xml")
    assert root_tag(as_xml) == "services"
    assert body(as_xml, "xml") == as_xml_text(as_json)

    categories = {r.code: r for r in sql(app, "SELECT code, name_zh, name_en, major_name_zh, public, "
                                              "retired_in_version FROM categories")}
    expected = sorted(c for c, r in categories.items() if r.public and r.retired_in_version is None)
    assert [s["service_code"] for s in as_json] == expected and len(expected) > 50
    by_code = {s["service_code"]: s for s in as_json}
    garbage = by_code["0701"]
    assert set(garbage) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert garbage["service_name"] == categories["0701"].name_zh
    assert garbage["group"] == categories["0701"].major_name_zh
    assert garbage["type"] == "realtime" and garbage["metadata"] is False
    assert by_code["0109"]["metadata"] is True and by_code["1007"]["metadata"] is True

    english = {s["service_code"]: s for s in body(client.get(f"{BASE}/services.json?locale=en"), "json")}
    assert english["0701"]["service_name"] == categories["0701"].name_en


def test_a_category_that_is_not_public_is_no_service(client, app, door):
    sql(app, "UPDATE categories SET public = false WHERE code = '0115'")
    try:
        codes = [s["service_code"] for s in body(client.get(f"{BASE}/services.json"), "json")]
        assert "0115" not in codes and "0114" in codes
        errors(client.get(f"{BASE}/services/0115.xml"), 404, "xml")
        errors(door.post("json", service_code="0115"), 404, "json")
    finally:
        sql(app, "UPDATE categories SET public = true WHERE code = '0115'")


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_lists_the_attributes(client, fmt):
    r = client.get(f"{BASE}/services/0109.{fmt}")
    assert r.status_code == 200
    definition = body(r, fmt)
    if fmt == "xml":
        assert root_tag(r) == "service_definition"
    assert definition["service_code"] == "0109"
    (attribute,) = definition["attributes"]
    assert attribute["code"] == "LIGHT_FAULT"
    assert attribute["datatype"] == "singlevaluelist"
    assert str(attribute["required"]).lower() == "true" and str(attribute["variable"]).lower() == "true"
    assert str(attribute["order"]) == "1" and attribute["description"]
    assert [v["key"] for v in attribute["values"]] == ["dark", "flicker", "daytime", "damaged"]
    assert all(v["name"] for v in attribute["values"])

    noise = body(client.get(f"{BASE}/services/1007.{fmt}?locale=en"), fmt)
    assert [a["datatype"] for a in noise["attributes"]] == ["multivaluelist", "datetime"]
    assert noise["attributes"][0]["description"].startswith("Where does the noise")
    plain = body(client.get(f"{BASE}/services/0701.{fmt}"), fmt)
    assert plain["service_code"] == "0701" and plain["attributes"] == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_service_is_404(client, fmt):
    (description,) = errors(client.get(f"{BASE}/services/9999.{fmt}"), 404, fmt)
    assert "9999" in description


# ------------------------------------------------------------------ posting requests

def test_a_posted_request_becomes_a_reported_case_for_the_dispatchers(client, door):
    answer = post_ok(door, "json", service_code="0109", **{"attribute[LIGHT_FAULT]": "flicker"},
                     address_string="中山东一路 1 号", media_url="https://photos.example.org/p/1.jpg", **CONTACT)
    assert set(answer) == {"service_request_id", "token", "service_notice", "account_id"}
    assert answer["account_id"] is None and "工作" in answer["service_notice"]

    case = case_by_number(door.dispatcher, answer["service_request_id"])
    assert case["status"] == "reported" and case["source"] == "open311"
    assert case["category_code"] == "0109" and case["reporter_id"] is None
    assert case["grid_code"] == door.district["grids"][4] and case["address"] == "中山东一路 1 号"
    assert case["contact"] == {**CONTACT, "name": "Meiling Zhoufang"}
    assert "register" in case["allowed_actions"]
    # the dispatch centre sees who sent it and what was answered; others never see the contact
    (event,) = door.dispatcher.get(f"/api/v1/cases/{case['id']}/events").get_json()["items"]
    assert event["action"] == "report" and event["actor_id"] is None
    assert event["payload"]["open311"]["attributes"] == {"LIGHT_FAULT": "flicker"}
    assert event["payload"]["open311"]["media_url"] == "https://photos.example.org/p/1.jpg"
    assert "contact" not in event["payload"] and CONTACT["email"] not in json.dumps(event)
    assert "contact" not in door.inspector.case(case["id"])


def test_a_request_posted_in_xml_answers_in_xml(door):
    answer = post_ok(door, "xml", service_code="1007",
                     **{"attribute[NOISE_SOURCE][]": ["music", "shop"], "attribute[NOISE_SINCE]": "2026-11-26T22:00:00+08:00"})
    assert answer["service_request_id"] and answer["token"] and answer["account_id"] is None
    case = case_by_number(door.dispatcher, answer["service_request_id"])
    assert case["category_code"] == "1007" and case["source"] == "open311"


def test_a_request_located_by_address_only_waits_for_the_dispatcher_to_place_it(client, door):
    answer = post_ok(door, "json", lat=None, long=None, address_string="南京西路 100 弄 3 号门口")
    case = case_by_number(door.dispatcher, answer["service_request_id"])
    assert case["grid_code"] is None and case["location_flags"] == ["address_only"]
    assert case["district_code"] == door.district["code"]
    for fmt in FORMATS:
        request = published(client, answer["service_request_id"], fmt)
        assert request["address"] == "南京西路 100 弄 3 号门口"
        assert request["lat"] is None and request["long"] is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_key_is_required_valid_and_live(client, door, fmt):
    (missing,) = errors(door.post(fmt, key=""), 403, fmt)
    assert "api_key" in missing
    (wrong,) = errors(door.post(fmt, key="not-a-key-" + uuid.uuid4().hex), 403, fmt)
    assert "api_key" in wrong
    post_ok(door, fmt)
    assert door.admin.delete(f"/api/v1/open311/keys/{door.key_id}").status_code == 204
    errors(door.post(fmt), 403, fmt)
    # a key given in the query string (as some clients send it) is read the same way
    r = client.post(f"{BASE}/requests.{fmt}?api_key={door.key}", data={"service_code": "0701", "lat": "30", "long": "100"})
    errors(r, 403, fmt)


BAD_FIELDS = [
    ({"service_code": None}, 400, "service_code"),
    ({"service_code": ""}, 400, "service_code"),
    ({"service_code": "9999"}, 404, "9999"),
    ({"lat": "north"}, 400, "lat"),
    ({"lat": "91"}, 400, "lat"),
    ({"long": "-181"}, 400, "long"),
    ({"lat": "nan"}, 400, "lat"),
    ({"long": None}, 400, "long"),
    ({"lat": None, "long": None}, 400, "location"),
    ({"lat": None, "long": None, "address_id": "A-17"}, 400, "address_id"),
    ({"email": "not an address"}, 400, "email"),
    ({"phone": "call me maybe"}, 400, "phone"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"description": "x" * 4001}, 400, "description"),
    ({"description": "nul \x00 inside"}, 400, "description"),
    ({"first_name": "two\nlines"}, 400, "first_name"),
    ({"service_code": "0109"}, 400, "LIGHT_FAULT"),
    ({"service_code": "0109", "attribute[LIGHT_FAULT]": "exploded"}, 400, "LIGHT_FAULT"),
    ({"service_code": "0701", "attribute[COLOUR]": "red"}, 400, "COLOUR"),
    ({"service_code": "1103", "attribute[TRAPPED]": "no", "attribute[DEPTH_CM]": "deep"}, 400, "DEPTH_CM"),
    ({"service_code": "1103", "attribute[TRAPPED]": "no", "attribute[DEPTH_CM]": "900"}, 400, "DEPTH_CM"),
    ({"service_code": "1007", "attribute[NOISE_SOURCE]": "aliens"}, 400, "NOISE_SOURCE"),
    ({"service_code": "1007", "attribute[NOISE_SOURCE]": "music", "attribute[NOISE_SINCE]": "yesterday"},
     400, "NOISE_SINCE"),
]


@pytest.mark.parametrize("fields,status,named", BAD_FIELDS)
def test_bad_fields_are_refused_and_create_nothing(app, door, fields, status, named):
    for fmt in FORMATS:
        descriptions = errors(door.post(fmt, **fields), status, fmt)
        assert any(named in d for d in descriptions), descriptions
    assert sql(app, "SELECT count(*) FROM open311_requests WHERE api_key_id = :k", k=door.key_id)[0][0] == 0


def test_every_field_problem_is_listed_at_once(door):
    descriptions = errors(door.post("json", lat="north", email="nope", media_url="ftp://x"), 400, "json")
    assert {d.split(":")[0] for d in descriptions} >= {"lat", "email", "media_url"}


def test_a_json_body_is_refused(client, door):
    r = client.post(f"{BASE}/requests.json", json={"api_key": door.key, "service_code": "0701", "lat": 30, "long": 100})
    errors(r, 400, "json")


def test_text_is_escaped_in_xml_and_kept_as_sent(client, door):
    tricky = 'a <b>bold</b> & "quoted" \'claim\' ]]> <![CDATA[x]]> 第二行\nline'
    answer = post_ok(door, "json", description=tricky, address_string="<script>alert(1)</script> & 1号")
    xml_request = published(client, answer["service_request_id"], "xml")
    json_request = published(client, answer["service_request_id"], "json")
    assert xml_request["description"] == json_request["description"] == tricky
    assert xml_request["address"] == "<script>alert(1)</script> & 1号"
    assert b"<script>" not in client.get(f"{BASE}/requests/{answer['service_request_id']}.xml").data


# ------------------------------------------------------------------ following a request

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_request_is_followed_by_token_and_id_through_to_closure(client, door, fmt):
    seen = []  # every Open311 answer, to check that no contact detail is ever published

    def get(path, **query):
        r = client.get(f"{BASE}/{path}.{fmt}", query_string=query)
        assert r.status_code == 200, r.data[:500]
        seen.append(r.data)
        return body(r, fmt)

    def request(number):
        (item,) = get(f"requests/{number}")
        assert item["service_request_id"] == number
        listed = get("requests", service_request_id=number)
        assert listed == [item]
        return item

    r = door.post(fmt, service_code="1004", **{"attribute[BLOCKING]": "fire_lane", "attribute[PLATE]": "沪A12345"},
                  **CONTACT)
    assert r.status_code == 201
    seen.append(r.data)
    (posted,) = body(r, fmt)
    (resolved,) = get(f"tokens/{posted['token']}")
    assert resolved == {"service_request_id": posted["service_request_id"], "token": posted["token"]}
    number = resolved["service_request_id"]

    item = request(number)
    assert item["status"] == "open" and item["status_notes"] == "已受理，等待立案审核"
    assert item["service_code"] == "1004" and item["agency_responsible"] is None
    assert item["expected_datetime"] is None and item["description"].startswith("路边有暴露垃圾")
    lon, lat = door.district["point"](4)
    assert abs(float(item["lat"]) - lat) < 1e-6 and abs(float(item["long"]) - lon) < 1e-6
    requested = datetime.fromisoformat(item["requested_datetime"])
    assert requested.tzinfo is not None and abs(requested - datetime.now(timezone.utc)) < timedelta(minutes=5)
    english = get(f"requests/{number}", locale="en")[0]
    assert english["status_notes"] == "Received; awaiting review"

    case = case_by_number(door.dispatcher, number)
    door.dispatcher.act(case["id"], "register", {"urgency": "B"})
    assert request(number)["status_notes"] == "已立案，等待派遣"
    dispatched = door.dispatcher.act(case["id"], "dispatch", {"team_id": door.team})
    item = request(number)
    assert item["status"] == "open" and item["agency_responsible"] == door.team_name
    assert item["status_notes"] == f"已派遣至{door.team_name}"
    assert (datetime.fromisoformat(item["expected_datetime"])
            == datetime.fromisoformat(dispatched["deadlines"]["handle"]).replace(microsecond=0))

    door.handler.act(case["id"], "accept")
    assert request(number)["status_notes"] == f"{door.team_name}正在处置"
    after = door.handler.photo(case["id"], "after")
    door.handler.act(case["id"], "handle", {"note": "车辆已拖离，消防通道已畅通", "photo_ids": [after["id"]]})
    item = request(number)
    assert item["status"] == "open" and item["status_notes"] == "已处置，等待现场核查：车辆已拖离，消防通道已畅通"

    check = door.inspector.photo(case["id"], "verification")
    closed = door.inspector.act(case["id"], "verify_pass", {"photo_ids": [check["id"]], "lon": lon, "lat": lat,
                                                            "accuracy_m": 5})
    assert closed["status"] == "closed"
    item = request(number)
    assert item["status"] == "closed"
    assert item["status_notes"] == "已核查结案：车辆已拖离，消防通道已畅通"
    assert item["agency_responsible"] == door.team_name
    assert datetime.fromisoformat(item["updated_datetime"]) == datetime.fromisoformat(closed["closed_at"]).replace(microsecond=0)
    assert [i["service_request_id"] for i in get("requests", status="closed", service_code="1004")].count(number) == 1
    assert number not in [i["service_request_id"] for i in get("requests", status="open", service_code="1004")]

    published_text = b"".join(seen).decode()
    for value in CONTACT.values():
        assert value not in published_text, value
    assert "沪A12345" not in published_text  # attribute answers stay with the dispatch centre too


def test_rejected_and_merged_requests_are_closed_with_the_reason(client, door):
    rejected = post_ok(door)["service_request_id"]
    door.dispatcher.act(case_by_number(door.dispatcher, rejected)["id"], "reject", {"reason": "位于私人小区内，由物业处理"})
    item = published(client, rejected)
    assert item["status"] == "closed" and item["status_notes"] == "不予立案：位于私人小区内，由物业处理"

    parent = post_ok(door)["service_request_id"]
    duplicate = post_ok(door)["service_request_id"]
    door.dispatcher.act(case_by_number(door.dispatcher, duplicate)["id"], "merge",
                        {"parent_id": case_by_number(door.dispatcher, parent)["id"]})
    item = published(client, duplicate, "xml", locale="en")
    assert item["status"] == "closed" and item["status_notes"] == f"Duplicate of request {parent}"
    assert published(client, parent)["status"] == "open"


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_requests_and_tokens_are_404(client, fmt):
    errors(client.get(f"{BASE}/requests/1999010100001.{fmt}"), 404, fmt)
    errors(client.get(f"{BASE}/tokens/{uuid.uuid4().hex}.{fmt}"), 404, fmt)


# ------------------------------------------------------------------ listing requests

def test_requests_are_filtered_by_ids_service_status_and_dates(client, door):
    a = post_ok(door, service_code="0701")["service_request_id"]
    b = post_ok(door, service_code="0702")["service_request_id"]
    c = post_ok(door, service_code="0703")["service_request_id"]
    door.dispatcher.act(case_by_number(door.dispatcher, c)["id"], "reject", {"reason": "重复上报"})

    def ids(fmt="json", **query):
        r = client.get(f"{BASE}/requests.{fmt}", query_string=query)
        assert r.status_code == 200, r.data[:300]
        return [i["service_request_id"] for i in body(r, fmt)]

    for fmt in FORMATS:
        assert sorted(ids(fmt, service_request_id=f"{a},{c}")) == sorted([a, c])
        # several ids override every other filter
        assert sorted(ids(fmt, service_request_id=f"{a},{b}", status="closed", service_code="0703")) == sorted([a, b])
    both = set(ids(service_code="0701,0702,0703"))
    assert {a, b, c} <= both
    assert c in ids(service_code="0703", status="closed") and c not in ids(service_code="0703", status="open")
    assert a in ids(service_code="0701", status="open,closed")
    assert a not in ids(service_code="0702")
    now = datetime.now(timezone.utc)
    assert a in ids(start_date=(now - timedelta(hours=1)).isoformat(), end_date=(now + timedelta(hours=1)).isoformat())
    assert a not in ids(start_date=(now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        end_date=(now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    # newest first
    listed = ids(service_request_id=f"{a},{b},{c}")
    assert listed == [c, b, a]


@pytest.mark.parametrize("query,named", [
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2026-13-01T00:00:00Z"}, "end_date"),
    ({"status": "pending"}, "status"),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}, "90 days"),
    ({"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-02-01T00:00:00Z"}, "start_date"),
])
def test_bad_filters_are_400(client, query, named):
    for fmt in FORMATS:
        descriptions = errors(client.get(f"{BASE}/requests.{fmt}", query_string=query), 400, fmt)
        assert any(named in d for d in descriptions), descriptions


def _insert_cases(app, district: str, category: str, moments: list[datetime]) -> list[str]:
    """Cases made cheaply in SQL (no events), reported at the given moments; their numbers."""
    rows = sql(app, """
        INSERT INTO cases (number, status, category_code, urgency, description, location, district_code, source,
                           reported_at, updated_at, version)
        SELECT 'T' || lpad(nextval('case_number_seq')::text, 12, '0'), 'reported', :category, 'B', 'bulk',
               ST_SetSRID(ST_MakePoint(100, 30), 4326), :district, 'hotline', m, m, 1
        FROM unnest(CAST(:moments AS timestamptz[])) AS m
        RETURNING number""", category=category, district=district, moments=moments)
    return [r.number for r in rows]


def test_the_default_window_is_the_last_90_days(app, client, district):
    now = datetime.now(timezone.utc)
    inside, outside = _insert_cases(app, district["code"], "0902", [now - timedelta(days=89), now - timedelta(days=91)])
    for fmt in FORMATS:
        r = client.get(f"{BASE}/requests.{fmt}", query_string={"service_code": "0902"})
        listed = [i["service_request_id"] for i in body(r, fmt)]
        assert inside in listed and outside not in listed
    # an explicit window reaches back further; a start alone covers the 90 days after it
    start = (now - timedelta(days=100)).isoformat()
    listed = [i["service_request_id"] for i in body(client.get(
        f"{BASE}/requests.json", query_string={"service_code": "0902", "start_date": start}), "json")]
    assert outside in listed and inside in listed
    end = (now - timedelta(days=90, hours=12)).isoformat()
    listed = [i["service_request_id"] for i in body(client.get(
        f"{BASE}/requests.json", query_string={"service_code": "0902", "end_date": end}), "json")]
    assert outside in listed and inside not in listed


def test_at_most_1000_requests_are_answered_newest_first(app, client, district):
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    moments = [start + timedelta(minutes=i) for i in range(1005)]
    numbers = _insert_cases(app, district["code"], "0903", moments)
    query = {"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-02-01T00:00:00Z"}
    for fmt in FORMATS:
        listed = [i["service_request_id"] for i in body(client.get(f"{BASE}/requests.{fmt}", query_string=query), fmt)]
        assert len(listed) == 1000
        assert listed == list(reversed(numbers))[:1000]


# ------------------------------------------------------------------ limits and jurisdiction

def test_posts_are_rate_limited_per_key(app, door, monkeypatch):
    monkeypatch.setitem(app.config, "OPEN311_REQUESTS_PER_MINUTE", 3)
    post_ok(door)
    errors(door.post("json", service_code=""), 400, "json")  # a refused post counts too
    post_ok(door, "xml")
    (description,) = errors(door.post("json"), 429, "json")
    assert "3" in description
    r = door.post("xml")
    errors(r, 429, "xml")
    assert r.headers["Retry-After"] == "60"
    other = door.admin.post("/api/v1/open311/keys", json={"name": "another app"}).get_json()["api_key"]
    post_ok(door, key=other)


@pytest.mark.parametrize("fmt", FORMATS)
def test_jurisdiction_id_is_checked_when_configured(app, client, door, monkeypatch, fmt):
    assert client.get(f"{BASE}/services.{fmt}?jurisdiction_id=anything.example").status_code == 200
    monkeypatch.setitem(app.config, "OPEN311_JURISDICTION_ID", "gridpatrol.example.cn")
    assert client.get(f"{BASE}/services.{fmt}?jurisdiction_id=gridpatrol.example.cn").status_code == 200
    assert client.get(f"{BASE}/services.{fmt}").status_code == 200
    (description,) = errors(client.get(f"{BASE}/requests.{fmt}?jurisdiction_id=elsewhere.gov"), 404, fmt)
    assert "jurisdiction_id" in description
    errors(door.post(fmt, jurisdiction_id="elsewhere.gov"), 404, fmt)
    post_ok(door, fmt, jurisdiction_id="gridpatrol.example.cn")


@pytest.mark.parametrize("method,path,status", [
    ("get", "/open311/v2/nothing.json", 404),
    ("get", "/open311/v2/requests", 404),
    ("get", "/open311/v2/requests.csv", 404),
    ("delete", "/open311/v2/requests.json", 405),
    ("post", "/open311/v2/services.xml", 405),
])
def test_unknown_resources_and_methods_answer_in_the_error_format(client, method, path, status):
    r = getattr(client, method)(path)
    fmt = "json" if path.endswith(".json") else "xml"
    errors(r, status, fmt)
    if status == 405:
        assert r.headers["Allow"]


# ------------------------------------------------------------------ the admin's keys

def test_admins_issue_list_and_revoke_keys(app, make_user, district):
    admin = make_user("admin", scope=[district["code"]])
    r = admin.post("/api/v1/open311/keys", json={"name": "街道随手拍"})
    assert r.status_code == 201
    created = r.get_json()
    assert {"id", "name", "api_key"} <= set(created) and created["name"] == "街道随手拍"
    assert created["scope"] == [district["code"]] and len(created["api_key"]) >= 32
    (stored,) = sql(app, "SELECT key_hash FROM open311_keys WHERE id = :id", id=created["id"])
    assert stored.key_hash == hashlib.sha256(created["api_key"].encode()).hexdigest()
    everything = sql(app, "SELECT row_to_json(k)::text AS row FROM open311_keys k WHERE id = :id", id=created["id"])
    assert created["api_key"] not in everything[0].row

    listed = admin.get("/api/v1/open311/keys").get_json()
    mine = [k for k in listed["items"] if k["id"] == created["id"]]
    assert mine and mine[0]["revoked_at"] is None
    assert "api_key" not in json.dumps(listed) and "key_hash" not in json.dumps(listed)

    assert admin.delete(f"/api/v1/open311/keys/{created['id']}").status_code == 204
    assert admin.delete(f"/api/v1/open311/keys/{created['id']}").status_code == 204  # already revoked: the same
    listed = admin.get("/api/v1/open311/keys").get_json()
    assert [k for k in listed["items"] if k["id"] == created["id"]][0]["revoked_at"] is not None
    r = admin.delete("/api/v1/open311/keys/999999999")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_keys_are_for_admins_within_their_scope(make_user, district):
    dispatcher = make_user("dispatcher", scope=[district["code"]])
    r = dispatcher.post("/api/v1/open311/keys", json={"name": "x"})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert dispatcher.get("/api/v1/open311/keys").status_code == 403
    admin = make_user("admin", scope=[district["code"]])
    r = admin.post("/api/v1/open311/keys", json={"name": "x", "scope": ["310199"]})
    assert r.status_code == 422 and "scope" in r.get_json()["errors"]
    assert admin.post("/api/v1/open311/keys", json={}).status_code == 422
    other_admin = make_user("admin", scope=["310199"])
    theirs = other_admin.post("/api/v1/open311/keys", json={"name": "elsewhere"}).get_json()
    assert admin.delete(f"/api/v1/open311/keys/{theirs['id']}").status_code == 404
    assert theirs["id"] not in [k["id"] for k in admin.get("/api/v1/open311/keys").get_json()["items"]]
    assert "/api/v1/open311/keys" in admin.get("/api/v1/openapi.json").get_json()["paths"]
