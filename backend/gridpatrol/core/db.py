"""Database helpers shared by the modules."""
import contextvars
import functools
import select
from contextlib import contextmanager
from datetime import datetime, timezone
from time import sleep

import psycopg
from psycopg import pq
from sqlalchemy import DateTime, event, func, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import mapped_column

from ..extensions import db


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


@functools.lru_cache(maxsize=1024)
def driver_sql(sql: str) -> str:
    """SQL written with `:name` parameters, as `text()` takes it, in psycopg's own `%(name)s` style, for
    `Connection.exec_driver_sql()`: a statement on a hot path then skips SQLAlchemy's compilation and
    parameter processing (~0.06 ms a statement; the engine's events still see it)."""
    return str(text(sql).compile(dialect=_DIALECT))


_DIALECT = PGDialect_psycopg()


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


# ---------------------------------------------------------------- pooled connections

class KeepPreparedConnection(psycopg.Connection):
    """psycopg's connection, keeping its prepared statements across a plain ROLLBACK.

    psycopg prepares a statement on a connection once it has run there 5 times, and forgets every
    prepared statement at ROLLBACK (the transaction might have created what they name). Every read
    request ends with a rollback, so its statements were parsed and planned anew each time. The
    application's connections change no schema (its role may not), so after the rollback of a
    healthy transaction the statements stay valid, and PostgreSQL re-plans them by itself when a
    migration elsewhere changes a table. A failed transaction still clears them as psycopg does:
    that also cures a statement a migration made stale ("cached plan must not change result type")
    after one failed request."""

    def rollback(self) -> None:
        if self.pgconn.transaction_status != pq.TransactionStatus.INTRANS:
            return super().rollback()
        kept, self._prepared = self._prepared, type(self._prepared)()
        try:
            super().rollback()
        finally:
            self._prepared = kept


def hung_up(dbapi_connection) -> bool:
    """Has the server closed this idle pooled connection (a restart, pg_terminate_backend, an idle
    timeout)? A server sends nothing to an idle connection except its last words before it goes,
    so a quiet socket needs no round trip; one with something waiting is pinged to be sure."""
    pgconn = dbapi_connection.pgconn
    if dbapi_connection.closed or dbapi_connection.broken or pgconn.status != pq.ConnStatus.OK:
        return True
    try:
        waiting = select.poll()  # poll, not select: select fails on descriptors past 1023
        waiting.register(pgconn.socket, select.POLLIN)
        if not waiting.poll(0):
            return False
        pgconn.consume_input()
        dbapi_connection.execute(";")
    except (psycopg.Error, OSError, ValueError):
        return True
    return False


def watch_connections(engine) -> None:
    """Pooled connections for serving: psycopg connections that keep their prepared statements,
    and a dead pooled connection replaced at checkout (instead of `pool_pre_ping`, which costs a
    round trip on every checkout). A connection that dies after its checkout fails that request
    with 503 (core.api.database_problem) and the pool replaces every older connection."""

    @event.listens_for(engine, "do_connect")
    def connect(dialect, record, cargs, cparams):
        return KeepPreparedConnection.connect(*cargs, **cparams)

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, record, proxy):
        if hung_up(dbapi_connection):
            raise DisconnectionError("the database closed this connection")


# ---------------------------------------------------------------- background loops

def keep_running(name: str, step, every: float, report) -> None:
    """`step()` every `every` seconds, at once again when it answers True (more to do): the loop of the
    workers deployed beside the app servers (`kpis compact --every`, `purge-keys --every`). A database
    that does not answer (restarting, a connection it closed) is reported through `report` and tried
    again at the next round; anything else ends the loop."""
    while True:
        try:
            more = step()
        except (OperationalError, InterfaceError) as exc:
            report(f"{name}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
            try:
                db.session.rollback()
            except (OperationalError, InterfaceError):
                db.session.close()
            more = False
        sleep(0 if more else every)
