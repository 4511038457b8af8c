import datetime

from marshmallow import fields, validate

from ..cases.schemas import CaseQuery
from ..core.schemas import AREA_CODE, Schema
from ..grids.schemas import BBoxField
from ..patrols.schemas import PatrolQuery


class CaseExportQuery(CaseQuery):
    """The filters of GET /cases, without paging: an export holds every case that matches."""
    class Meta(CaseQuery.Meta):
        exclude = ("page", "per_page")


class GridExportQuery(Schema):
    bbox = BBoxField(metadata={"description": "minlon,minlat,maxlon,maxlat: the grids meeting it"})
    area = fields.String(validate=AREA_CODE, metadata={"description": "a district, street, community or grid code"})


class PatrolExportQuery(PatrolQuery):
    """The query of GET /patrols; the day after `date` must exist too (the local day ends at its start)."""
    date = fields.Date(required=True, validate=validate.Range(max=datetime.date(9999, 12, 30)),
                       metadata=PatrolQuery._declared_fields["date"].metadata)
