from flask.views import MethodView

from ..core.api import Blueprint
from ..core.authz import current_user, requires
from . import services
from .schemas import (CalendarOut, CalendarQuery, CatalogOut, CategoryIn, CategoryOut, CategoryPatch, DayIn, DayOut,
                      WorkPeriodsIn, WorkWeekOut)

blp = Blueprint("catalog", __name__, description="Categories of parts and events, and the working calendar")


@blp.route("/categories")
class CategoriesView(MethodView):
    @requires()
    @blp.response(200, CatalogOut)
    def get(self):
        """The category catalog, retired categories included (marked inactive)"""
        return {"version": services.current_version(), "items": services.categories()}

    @requires("admin")
    @blp.arguments(CategoryIn)
    @blp.response(201, CategoryOut)
    def post(self, body):
        """Add a category, in a new catalog version (the code of a retired one brings it back) (admin)"""
        return services.create_category(current_user(), **body)


@blp.route("/categories/<code>")
class CategoryView(MethodView):
    @requires("admin")
    @blp.arguments(CategoryPatch)
    @blp.response(200, CategoryOut)
    def patch(self, body, code):
        """Change a category, in a new catalog version; limits apply to stages started from now (admin)"""
        return services.update_category(current_user(), code, body)

    @requires("admin")
    @blp.response(204)
    def delete(self, code):
        """Retire a category in a new catalog version: it stays readable, reports made against an older
        catalog version are still taken (admin)"""
        services.retire_category(current_user(), code)


@blp.route("/calendar")
class CalendarView(MethodView):
    @requires()
    @blp.arguments(CalendarQuery, location="query")
    @blp.response(200, CalendarOut)
    def get(self, args):
        """The working calendar: time zone, working periods per weekday, holidays and swapped working days"""
        return services.calendar(args.get("year"))


@blp.route("/calendar/days/<day>")
class CalendarDayView(MethodView):
    @requires("admin")
    @blp.arguments(DayIn)
    @blp.response(200, DayOut)
    def put(self, body, day):
        """List a day (YYYY-MM-DD) as a holiday or a swapped working day (admin)"""
        row = services.set_day(day, body["workday"], body["name"])
        return {"date": row.day, "workday": row.workday, "name": row.name}

    @requires("admin")
    @blp.response(204)
    def delete(self, day):
        """Unlist a day: it follows the weekly working periods again (admin)"""
        services.delete_day(day)


@blp.route("/calendar/work-periods")
class WorkPeriodsView(MethodView):
    @requires("admin")
    @blp.arguments(WorkPeriodsIn)
    @blp.response(200, WorkWeekOut)
    def put(self, body):
        """Replace the working periods of the week, e.g. {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]} (admin).
        Deadlines set from now on count with them. The handling hours the KPIs keep for cases handled before
        are counted again afterwards, in batches, by the KPI worker (`gridpatrol kpis compact`), as after
        any rewrite of the whole working clock: until it is done, handling-hour percentiles mix the old
        week and the new"""
        return services.set_work_periods(body)


from . import cli  # noqa: E402,F401  (registers `gridpatrol catalog load-categories` and `load-calendar`)
