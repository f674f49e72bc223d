"""Engines and session factories, built once per process in the app lifespan or a CLI command.

On PostgreSQL each role of connection (``service.db.timeouts.Role``: requests, the event worker,
jobs) has an engine of its own: its own pool, so a hung background statement never holds a
request's connection, and its own time limits, set when a connection opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import Error as DriverError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from service.config import Settings
from service.db.timeouts import KEEPALIVES, PING_SECONDS, BoundedConnection, Limits, Role, limits

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(settings: Settings, role: Role = Role.jobs) -> Engine:
    """``hide_parameters``: a database error's text quotes the statement's parameters (customer
    ids, event properties, attribute values); logged or stored as a job's error, it must not.
    The default role suits the command-line tools, which run as long as their work takes."""
    if settings.is_sqlite:
        engine = create_engine(
            settings.database_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    bounds = limits(settings, role)
    engine = create_engine(
        settings.database_url,
        pool_size=bounds.pool_size,
        max_overflow=bounds.max_overflow,
        pool_timeout=bounds.pool_timeout,
        hide_parameters=True,
    )
    event.listen(engine, "do_connect", _connector(settings, role, bounds))
    event.listen(engine.pool, "connect", _fresh)
    event.listen(engine.pool, "checkout", _ping)
    return engine


def make_engines(settings: Settings) -> dict[Role, Engine]:
    """An engine per role; SQLite, which has no server to hang, shares one among them."""
    if settings.is_sqlite:
        engine = make_engine(settings)
        return dict.fromkeys(Role, engine)
    return {role: make_engine(settings, role) for role in Role}


def dispose(engines: Mapping[Role, Engine]) -> None:
    for engine in {id(e): e for e in engines.values()}.values():
        engine.dispose()


def _connector(settings: Settings, role: Role, bounds: Limits) -> Any:
    """Opens the role's connections: at most ``db_connect_timeout_seconds`` to connect, the
    server-side limits in ``options`` (after any the URL sets), keepalives, and the client-side
    wait limit."""

    def connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        options = " ".join(filter(None, (cparams.get("options"), bounds.server_options())))
        params = {
            **KEEPALIVES,
            "application_name": f"clv-{role}",
            **cparams,
            "connect_timeout": settings.db_connect_timeout_seconds,
            "options": options,
        }
        connection = BoundedConnection.connect(*cargs, **params)
        connection.wait_limit = bounds.wait
        return connection

    return connect


def _fresh(_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["fresh"] = True


def _ping(connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    """SQLAlchemy's ``pool_pre_ping``, with a time limit: a pooled connection (not one just
    opened) that does not answer within ``PING_SECONDS`` is replaced by a new one, so a request
    on a hung server spends ping + connect timeout, not its statement limit, before its 503."""
    if record.info.pop("fresh", False):
        return
    try:
        connection.ping(PING_SECONDS)
    except DriverError as error:
        raise DisconnectionError(f"pooled connection failed its check: {error}") from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the single writer; busy_timeout makes writers queue instead of
    failing at once with "database is locked"; foreign keys are off by default in SQLite."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
