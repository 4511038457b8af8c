"""Query and body arguments: one schema instance per schema class, across requests."""
from gridpatrol.core.api import Blueprint, OneSchemaParser
from gridpatrol.maps.schemas import TileQuery


def test_a_schema_class_is_made_once_and_serves_every_request():
    parser = Blueprint.ARGUMENTS_PARSER
    assert isinstance(parser, OneSchemaParser)
    first = parser._get_schema(TileQuery, None)
    assert isinstance(first, TileQuery)
    assert parser._get_schema(TileQuery, None) is first
    given = TileQuery()
    assert parser._get_schema(given, None) is given  # an instance is used as given


def test_the_shared_schema_still_refuses_what_it_refused(make_user):
    # the same instance answers a good request, a bad one, then a good one again: nothing of the
    # failed load stays in it
    api = make_user("supervisor")
    path = "/api/v1/tiles/cases/14/13700/6700.mvt"
    assert api.get(path + "?status=registered").status_code == 200
    bad = api.get(path + "?stauts=closed&urgency=Z")
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"stauts", "urgency.0"}, bad.get_json()
    assert api.get(path + "?urgency=A").status_code == 200
