"""Rate limits shared through Redis (``CLV_REDIS_URL``, issue 19): one limit for a key across
``clv serve`` processes, where without Redis each process counts only its own requests; and a
Redis that does not answer lets requests through rather than failing them.

Needs the Redis server at ``CLV_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/15), as CI
runs it; each test's API keys have names of their own, so its counts are its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import create_engine

from service.auth import service as auth
from service.auth.rate_limit import RateLimitedError, RedisRateLimiter, rate_limiter
from service.config import Settings
from service.db import migrations
from service.db.session import make_session_factory
from tests.conftest import bearer, free_port
from tests.processes import ServerProcess

REDIS_URL = os.environ.get("CLV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
LIMIT = {"CLV_RATE_LIMIT_PER_MINUTE": "6", "CLV_RATE_LIMIT_BURST": "3"}


@contextmanager
def _two_servers(database_url: str, tmp_path: Path, **extra: str) -> Iterator[list[str]]:
    """Two ``clv serve`` processes on one database; their URLs."""
    env = {"CLV_DATABASE_URL": database_url, **LIMIT, **extra}
    with ExitStack() as stack:
        tmp_path.mkdir()
        yield [
            stack.enter_context(ServerProcess(free_port(), env, tmp_path / f"{n}.log")).url
            for n in range(2)
        ]


def _alternating(urls: list[str], headers: dict[str, str], count: int) -> list[int]:
    """``count`` requests, taking turns between the servers."""
    return [
        httpx.get(f"{urls[n % 2]}/v1/customers/c-1", headers=headers, timeout=10).status_code
        for n in range(count)
    ]


@pytest.mark.slow
def test_two_processes_share_one_limit_through_redis_and_not_without_it(tmp_path: Path) -> None:
    """On SQLite alone: the limit never reaches the database, whichever it is."""
    url = f"sqlite:///{tmp_path / 'clv.db'}"
    migrations.upgrade(url)
    engine = create_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        keys = [auth.create_key(session, f"key-{n}", [auth.Scope.read])[1] for n in range(2)]
    engine.dispose()
    shared_key, local_key = bearer(keys[0]), bearer(keys[1])

    with _two_servers(url, tmp_path / "shared", CLV_REDIS_URL=REDIS_URL) as urls:
        shared = _alternating(urls, shared_key, 4)
        refused = httpx.get(f"{urls[1]}/v1/customers/c-1", headers=shared_key, timeout=10)
    with _two_servers(url, tmp_path / "local") as urls:
        local = _alternating(urls, local_key, 6)

    # a burst of 3 for the key in all: the fourth request is refused, whichever process gets it
    assert shared == [404, 404, 404, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    # per process: each counts its own 3, so 6 alternating requests all pass
    assert local == [404] * 6


def test_the_redis_limiter_refuses_past_the_burst_and_says_when_to_retry() -> None:
    limiter = RedisRateLimiter(REDIS_URL, per_minute=120, burst=2)  # one per 0.5 s
    key = f"test-{uuid.uuid4().hex}"

    async def three() -> list[str]:
        answers = []
        for _ in range(3):
            try:
                await limiter.check(key)
                answers.append("allowed")
            except RateLimitedError as refused:
                answers.append(refused.headers["Retry-After"] if refused.headers else "")
        await asyncio.sleep(0.55)  # one interval later, one more passes
        await limiter.check(key)
        await limiter.close()
        return answers

    assert asyncio.run(three()) == ["allowed", "allowed", "1"]


def test_a_redis_that_does_not_answer_lets_requests_through_and_counts_them() -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, rate_limit_per_minute=1, rate_limit_burst=1, redis_url=SecretStr(closed)
    )
    limiter = rate_limiter(settings)
    assert isinstance(limiter, RedisRateLimiter)
    before = _unavailable()

    async def five() -> None:
        for _ in range(5):
            await limiter.check("k")  # would be refused from the second on
        await limiter.close()

    asyncio.run(five())

    assert _unavailable() - before == 5


def _unavailable() -> float:
    return REGISTRY.get_sample_value("clv_rate_limit_unavailable_total") or 0.0
