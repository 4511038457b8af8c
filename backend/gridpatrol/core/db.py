"""Database helpers shared by the modules."""
from datetime import datetime, timezone

from sqlalchemy import DateTime, func
from sqlalchemy.orm import mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
