"""Database helpers shared by the modules."""
import contextvars
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import DateTime, func
from sqlalchemy.orm import mapped_column


_frozen_now: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("frozen_now", default=None)


def utcnow() -> datetime:
    return _frozen_now.get() or datetime.now(timezone.utc)


@contextmanager
def clock_at(moment: datetime):
    """Run services as if it were `moment` (the demo builds 60 days of history this way)."""
    token = _frozen_now.set(moment)
    try:
        yield
    finally:
        _frozen_now.reset(token)


def created_at_column():
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def check_in(column: str, values) -> str:
    """SQL for a CHECK that a text column holds one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def check_subset(column: str, values) -> str:
    """SQL for a CHECK that a text[] column holds only `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} <@ ARRAY[{quoted}]::text[]"
