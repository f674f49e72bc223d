"""Time limits on every wait for PostgreSQL, per role of connection.

A server that refuses is noticed at once; one that hangs is not. A frozen server process (or a
peer whose kernel still acknowledges packets) leaves a query waiting forever: the server-side
``statement_timeout`` never starts, since the query never reaches the server, and TCP keepalives
are answered. So each role has two limits on a statement: the server's own
(``statement_timeout`` and ``lock_timeout``, which end a slow query cleanly, with a usable
connection) and, ``WAIT_GRACE_SECONDS`` later, the client's (``BoundedConnection``: psycopg stops
waiting, the connection is closed, and SQLAlchemy, seeing it closed, discards it and the
request's error handling answers 503). A pooled connection's liveness check, the connect and the
wait for a free pooled connection have limits of their own; TCP keepalives find peers that died.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.abc import PQGen

from service.config import Settings

RV = TypeVar("RV")

WAIT_GRACE_SECONDS = 0.5
"""How much longer than its server-side ``statement_timeout`` the client waits for an answer: a
server that is slow but alive cancels the statement itself, cleanly, before the client gives up."""
PING_SECONDS = 1.0
"""A pooled connection checked out must answer an empty query within this, or it is replaced."""
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data unacknowledged this long ends the connection
}
"""libpq's TCP options: an idle pooled connection to a peer that died (its machine gone, a
network path cut) is noticed within about a minute instead of at its next use."""


class Role(StrEnum):
    """What a connection is for; each role has its own engine, pool and limits."""

    api = "api"
    """Requests (reads and ingestion), ``/readyz`` and ``/metrics``: must answer in seconds."""
    worker = "worker"
    """The event worker: applies events to the portrait and rescores stale customers."""
    jobs = "jobs"
    """Training, reports, rescoring everyone, and the command-line tools: may run long."""


@dataclass(frozen=True)
class Limits:
    """One role's limits, in seconds; 0 means none."""

    statement: float
    lock: float
    pool_timeout: float
    pool_size: int
    max_overflow: int

    @property
    def wait(self) -> float | None:
        """How long the client waits for any one answer (None: as long as it takes)."""
        return self.statement + WAIT_GRACE_SECONDS if self.statement else None

    def server_options(self) -> str:
        """libpq ``options``: the limits PostgreSQL applies to each statement of the session."""
        return (
            f"-c statement_timeout={round(self.statement * 1000)} "
            f"-c lock_timeout={round(self.lock * 1000)}"
        )


def limits(settings: Settings, role: Role) -> Limits:
    if role is Role.api:
        return Limits(
            statement=settings.db_api_timeout_seconds,
            lock=min(settings.db_lock_timeout_seconds, settings.db_api_timeout_seconds),
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
        )
    if role is Role.worker:
        statement = settings.db_worker_timeout_seconds
    else:
        statement = settings.db_job_timeout_seconds
    # The worker and jobs hold few connections at once (a job: its work, progress writes and
    # the heartbeat thread), and may wait for one: nothing answers to a client in the meantime.
    return Limits(
        statement=statement,
        lock=min(settings.db_lock_timeout_seconds, statement or settings.db_lock_timeout_seconds),
        pool_timeout=30.0,
        pool_size=2,
        max_overflow=4,
    )


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server (a statement, a fetch, commit,
    rollback) ends after ``wait_limit`` seconds: then the connection is closed, since the
    protocol is left mid-exchange, and OperationalError raised. Closed, it is one SQLAlchemy
    discards (``is_disconnect``) instead of returning it to the pool."""

    wait_limit: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        limit = self.wait_limit
        if timeout is not None or limit is None:  # a caller's own timeout (LISTEN) is its own
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, limit)
        except errors._WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {limit:g} s; connection closed"
            ) from None

    def ping(self, seconds: float) -> None:
        """An empty query within ``seconds`` (and the connection's own limit), or OperationalError.
        Sent in autocommit mode, so it leaves no transaction open (an idle connection's mode
        changes without a round trip)."""
        saved, autocommit = self.wait_limit, self.autocommit
        self.wait_limit = seconds if saved is None else min(seconds, saved)
        self.autocommit = True
        try:
            self.execute(";")
        finally:
            self.wait_limit = saved
            if not self.closed:
                self.autocommit = autocommit
