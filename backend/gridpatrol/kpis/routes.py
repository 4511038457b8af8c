import csv
import io

import click
from flask import Response, request
from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from ..catalog import services as catalog
from . import services
from .schemas import (InspectorCoverageOut, InspectorDrillQuery, InspectorQuery, InspectorsOut, KpiOut, KpiQuery,
                      KpiRow, TrendOut, TrendQuery, VerificationDrillQuery, VerificationsOut)

blp = Blueprint("kpis", __name__, description="KPIs (综合评价)")

COLUMNS = list(KpiRow._declared_fields)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _args(args):
    if "from_" in args:
        args["from"] = args.pop("from_")
    return args


@blp.route("/kpis")
class KpisView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(KpiQuery, location="query")
    @blp.response(200, KpiOut)
    @blp.doc(responses={200: {"description": "the rows; as CSV with `Accept: text/csv`",
                              "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, args):
        """KPIs grouped by team, grid, street, community, category or inspector for a period, as of a moment"""
        result = services.kpis(current_user(), args["group_by"], _args(args))
        if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, COLUMNS)
            writer.writeheader()
            writer.writerows(KpiRow(many=True).dump(result["rows"]))
            return Response(out.getvalue(), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="kpis-{args["group_by"]}.csv"'})
        return result


@blp.route("/kpis/export.xlsx")
class KpisXlsxView(MethodView):
    @requires("supervisor")
    @blp.arguments(KpiQuery, location="query")
    @blp.response(200, content_type=XLSX)
    @blp.doc(responses={200: {"description": "the KPI rows as a spreadsheet; its sheet `About` holds the answer's "
                                              "other fields (period, as_of, source, percentiles, hours_recounting)",
                              "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, args):
        """The KPIs as a spreadsheet"""
        from openpyxl import Workbook

        result = services.kpis(current_user(), args["group_by"], _args(args))
        wb = Workbook()
        ws = wb.active
        ws.title = f"KPIs by {args['group_by']}"
        ws.append(COLUMNS)
        for row in KpiRow(many=True).dump(result["rows"]):
            ws.append([row.get(c) for c in COLUMNS])
        # what the rows are: the period, the moment, where the figures come from, and whether the handling
        # hours were being counted again (the spreadsheet travels without the request that made it)
        about = wb.create_sheet("About")
        for name, value in KpiOut().dump({k: v for k, v in result.items() if k != "rows"}).items():
            about.append([name, value])
        buf = io.BytesIO()
        wb.save(buf)
        return Response(buf.getvalue(), mimetype=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="kpis-{args["group_by"]}.xlsx"'})


@blp.route("/kpis/trend")
class TrendView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(TrendQuery, location="query")
    @blp.response(200, TrendOut)
    def get(self, args):
        """KPIs per week or month for each group: a point equals GET /kpis for that period"""
        return services.trend(current_user(), args["group_by"], args["interval"], _args(args))


@blp.route("/kpis/inspectors")
class InspectorsView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(InspectorQuery, location="query")
    @blp.response(200, InspectorsOut)
    def get(self, args):
        """Per inspector: reports and their validity, timely verifications, patrol coverage of their grids"""
        return services.inspectors(current_user(), _args(args))


@blp.route("/kpis/inspectors/<int:inspector_id>/verifications")
class InspectorVerificationsView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(VerificationDrillQuery, location="query")
    @blp.response(200, VerificationsOut)
    def get(self, args, inspector_id):
        """The verifications behind an inspector's verification figures, each with its case and deadline"""
        return services.inspector_verifications(current_user(), inspector_id, _args(args))


@blp.route("/kpis/inspectors/<int:inspector_id>/coverage")
class InspectorCoverageView(MethodView):
    @requires("supervisor", "dispatcher")
    @blp.arguments(InspectorDrillQuery, location="query")
    @blp.response(200, InspectorCoverageOut)
    def get(self, args, inspector_id):
        """The responsibility grids behind an inspector's coverage: the days each was visited, by which patrols"""
        return services.inspector_coverage(current_user(), inspector_id, _args(args))


@blp.cli.command("rebuild")
@click.option("--batch", default=100_000, show_default=True, type=click.IntRange(min=1), help="cases per transaction")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1, max=8),
              help="database connections sharing the batches (at most 8: the pool's own, with its overflow)")
def rebuild(batch, jobs):
    """Work out the KPI facts of every case again from the event log (the log keeps them current itself,
    and a change of the work calendar recounts their handling hours: this is for a repair)."""
    click.echo(f"{services.rebuild(batch, jobs)} fact rows for {services.fact_cases()} cases")


@blp.cli.command("compact")
@click.option("--every", type=click.FloatRange(min=0.1), help="keep folding, every this many seconds")
def compact(every):
    """Fold the KPI facts' change log into the daily sums that KPI reads of long periods use (scripts/run
    keeps this running with --every; without it, reads stay right and get slower as the log grows), and
    count the kept handling hours again after a change of the working week (until then their
    percentiles mix the old week and the new)."""
    if every is None:
        folded = services.compact()
        recounted, _ = services.recount_hours()
        folded += services.compact()  # what the recount logged
        left = catalog.hours_recount_next()
        click.echo(f"{folded} log rows folded; handling hours counted again: {recounted} facts changed"
                   + (f" (another process is counting them, from case {left})" if left is not None else ""))
    else:
        services.keep_compacting(every, lambda message: click.echo(message, err=True))
