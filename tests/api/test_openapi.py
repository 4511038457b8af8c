"""The OpenAPI document: OpenAPI 3, every endpoint of the contract, made from the validating schemas."""
import re

import pytest

PREFIX = "/api/v1"
PARAMETER_PLACES = {"query", "header", "path", "cookie"}


# (method, path) of every endpoint in the table of the HTTP contract v1 (api-contract.md, which lives
# outside this repository), path parameters as {}; the document itself and /healthz are left out
CONTRACT_ENDPOINTS = {
    ("post", "/auth/token"), ("delete", "/auth/token"), ("get", "/me"), ("post", "/users"),
    ("get", "/teams"), ("post", "/teams"), ("post", "/grids/import"), ("get", "/grids"), ("get", "/grids/locate"),
    ("get", "/categories"), ("post", "/reports"), ("post", "/cases/{}/photos"), ("get", "/photos/{}"),
    ("get", "/cases"), ("get", "/cases/{}"), ("get", "/cases/{}/events"), ("get", "/cases/{}/dispatch-suggestions"),
    ("post", "/cases/{}/actions/{}"), ("post", "/patrols"), ("post", "/patrols/{}/points"),
    ("post", "/patrols/{}/end"), ("get", "/patrols/coverage"), ("get", "/kpis"), ("get", "/kpis/export.xlsx"),
    ("post", "/open311/keys"), ("delete", "/open311/keys/{}"),
}


def contract_endpoints() -> set[tuple[str, str]]:
    return CONTRACT_ENDPOINTS


@pytest.fixture(scope="module")
def spec(app):
    r = app.test_client().get(f"{PREFIX}/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def schema_of(spec, ref: str) -> dict:
    assert ref.startswith("#/components/schemas/"), ref
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_it_is_openapi_3_and_served_without_a_token(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}


def test_the_contract_names_its_endpoints():
    endpoints = contract_endpoints()
    assert len(endpoints) >= 25
    assert ("post", "/reports") in endpoints and ("post", "/cases/{}/actions/{}") in endpoints


def test_every_endpoint_of_the_contract_is_documented(spec):
    documented = {(method, re.sub(r"\{[^}]*\}", "{}", path.removeprefix(PREFIX)))
                  for method, path, _ in operations(spec)}
    missing = sorted(contract_endpoints() - documented)
    assert missing == []


def test_every_operation_is_well_formed(spec):
    for method, path, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert any(code.startswith("2") for code in map(str, op["responses"])), where
        for parameter in op.get("parameters", []):
            assert parameter["in"] in PARAMETER_PLACES, (where, parameter)
        for name in re.findall(r"\{([^}]+)\}", path):
            assert any(p["in"] == "path" and p["name"] == name for p in op.get("parameters", []) + spec["paths"][
                path].get("parameters", [])), (where, name)


def test_bearer_auth_everywhere_but_sign_in(spec):
    assert spec["security"] == [{"bearer": []}]
    for method, path, op in operations(spec):
        if (method, path) == ("post", f"{PREFIX}/auth/token"):
            assert op["security"] == []
        else:
            assert op.get("security", spec["security"]) == [{"bearer": []}], (method, path)


def required_fields(schema_cls) -> set[str]:
    return {f.data_key or name for name, f in schema_cls().fields.items() if f.required}


def all_fields(schema_cls) -> set[str]:
    return {f.data_key or name for name, f in schema_cls().load_fields.items()}


def json_body_cases():
    from gridpatrol.auth.schemas import TokenRequest, UserIn
    from gridpatrol.cases.schemas import ReportIn
    from gridpatrol.patrols.schemas import BatchIn
    from gridpatrol.teams.schemas import TeamIn
    return [("/auth/token", TokenRequest), ("/users", UserIn), ("/teams", TeamIn), ("/reports", ReportIn),
            ("/patrols/{patrol_id}/points", BatchIn)]


@pytest.mark.parametrize("path, schema_cls", json_body_cases())
def test_json_bodies_reference_the_validating_schema(spec, path, schema_cls):
    body = spec["paths"][PREFIX + path]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{schema_cls.__name__}"
    documented = schema_of(spec, ref)
    assert set(documented["properties"]) == all_fields(schema_cls)
    assert set(documented.get("required", [])) == required_fields(schema_cls)
    assert documented.get("additionalProperties") is False  # unknown fields are refused, as documented


def test_report_in_documents_its_required_fields_and_ranges(spec):
    report = schema_of(spec, spec["paths"][f"{PREFIX}/reports"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"])
    assert {"category_code", "lon", "lat", "observed_at"} <= set(report["required"])
    assert report["properties"]["lon"]["minimum"] == -180 and report["properties"]["lon"]["maximum"] == 180
    assert report["properties"]["lat"]["minimum"] == -90 and report["properties"]["lat"]["maximum"] == 90
    assert report["properties"]["observed_at"]["format"] == "date-time"
    assert report["properties"]["urgency"]["enum"] == ["A", "B", "C"]
    header = [p for p in spec["paths"][f"{PREFIX}/reports"]["post"]["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("Idempotency-Key", True)]


@pytest.mark.parametrize("path, fields, required", [
    ("/grids/import", {"file", "code_field", "name_field"}, {"file"}),
    ("/cases/{case_id}/photos", {"file", "kind", "taken_at"}, {"file", "kind"}),
])
def test_multipart_bodies_document_every_part(spec, path, fields, required):
    op = spec["paths"][PREFIX + path]["post"]
    content = op["requestBody"]["content"]
    assert list(content) == ["multipart/form-data"]
    schema = schema_of(spec, content["multipart/form-data"]["schema"]["$ref"])
    assert fields <= set(schema["properties"])
    assert required <= set(schema["required"])
    assert schema["properties"]["file"] == {**schema["properties"]["file"], "type": "string", "format": "binary"}
    assert not [p for p in op.get("parameters", []) if p["in"] not in PARAMETER_PLACES]


def test_action_bodies_reference_the_action_schemas(spec):
    from gridpatrol.cases.schemas import ACTION_SCHEMAS

    op = spec["paths"][f"{PREFIX}/cases/{{case_id}}/actions/{{action}}"]["post"]
    refs = {r["$ref"] for r in op["requestBody"]["content"]["application/json"]["schema"]["oneOf"]}
    for action, schema_cls in ACTION_SCHEMAS.items():
        ref = f"#/components/schemas/{schema_cls.__name__}"
        assert ref in refs, action
        assert set(schema_of(spec, ref).get("required", [])) == required_fields(schema_cls), action
    assert any(p["in"] == "header" and p["name"] == "If-Match" and p["required"] for p in op["parameters"])


def test_query_parameters_come_from_the_query_schemas(spec):
    from gridpatrol.grids.schemas import GridsQuery, LocateQuery
    from gridpatrol.kpis.schemas import KpiQuery
    from gridpatrol.patrols.schemas import CoverageQuery

    for path, schema_cls in (("/grids", GridsQuery), ("/grids/locate", LocateQuery), ("/kpis", KpiQuery),
                             ("/patrols/coverage", CoverageQuery)):
        params = {p["name"]: p for p in spec["paths"][PREFIX + path]["get"]["parameters"] if p["in"] == "query"}
        assert set(params) == all_fields(schema_cls), path
        assert {n for n, p in params.items() if p.get("required")} == required_fields(schema_cls), path
    group_by = {p["name"]: p for p in spec["paths"][f"{PREFIX}/kpis"]["get"]["parameters"]}["group_by"]
    assert set(group_by["schema"]["enum"]) == {"team", "grid", "street", "community", "category", "inspector"}


def test_responses_describe_what_is_sent(spec):
    kpis = spec["paths"][f"{PREFIX}/kpis"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(kpis)
    row = schema_of(spec, schema_of(spec, kpis["application/json"]["schema"]["$ref"])["properties"]["rows"][
        "items"]["$ref"])
    assert {"key", "label", "reports", "registered", "rejected", "dispatched", "returned", "handled", "reworked",
            "closed", "closed_on_time", "open_overdue", "closure_rate", "on_time_rate", "rework_rate",
            "accurate_dispatch_rate", "handling_hours_p50", "handling_hours_p90"} <= set(row["properties"])
    xlsx = spec["paths"][f"{PREFIX}/kpis/export.xlsx"]["get"]["responses"]["200"]["content"]
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in xlsx
    assert "application/geo+json" in spec["paths"][f"{PREFIX}/grids"]["get"]["responses"]["200"]["content"]
    assert "image/jpeg" in spec["paths"][f"{PREFIX}/photos/{{photo_id}}"]["get"]["responses"]["200"]["content"]
    created = spec["paths"][f"{PREFIX}/reports"]["post"]["responses"]
    assert "201" in created
    photo = schema_of(spec, spec["paths"][f"{PREFIX}/cases/{{case_id}}/photos"]["post"]["responses"]["201"][
        "content"]["application/json"]["schema"]["$ref"])
    assert {"id", "sha256", "kind", "width", "height", "taken_at", "exif_lon", "exif_lat", "flags"} <= set(
        photo["properties"])


def test_problem_responses_are_problem_json(spec):
    problem_types = set()
    for _, _, op in operations(spec):
        for code, response in op["responses"].items():
            if str(code).startswith(("4", "5")) or code == "default":
                ref = response.get("$ref")
                if ref:
                    response = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
                problem_types |= set(response.get("content", {}))
    assert problem_types == {"application/problem+json"}
