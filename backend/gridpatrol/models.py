"""Every model, imported in one place so that the metadata (and Alembic) sees every table."""
from .auth.models import LoginAttempt, Token, User, user_teams  # noqa: F401
from .cases.models import Case, CaseEvent  # noqa: F401
from .catalog.models import CalendarDay, CatalogVersion, Category, Setting  # noqa: F401
from .core.idempotency_model import IdempotencyKey  # noqa: F401
from .grids.models import AdminArea, Grid  # noqa: F401
from .open311.models import ApiKey, KeyUse, ServiceRequest  # noqa: F401
from .patrols.models import GridVisit, Patrol, PatrolPoint  # noqa: F401
from .photos.models import Photo  # noqa: F401
from .teams.models import Team  # noqa: F401
from .webhooks.models import Delivery, Webhook  # noqa: F401
