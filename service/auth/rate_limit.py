"""Per-key request rate limits (``CLV_RATE_LIMIT_PER_MINUTE``, off when 0).

The generic cell rate algorithm: each key has a theoretical arrival time that every allowed
request pushes one interval (60 s / limit) further; a request is allowed while that time lies
no more than ``burst`` intervals ahead of now. It needs one timestamp per key, allows short
bursts, and says exactly when the next request will pass, which is the ``Retry-After`` of the 429.

Where the timestamps live:
- in the process (``RateLimiter``, the default): each API process enforces the limit on the
  requests it receives, so with N processes or replicas a key may reach N times the limit;
- in Redis (``RedisRateLimiter``, with ``CLV_REDIS_URL``): one timestamp per key for every
  process and replica, read and moved in one atomic script on Redis's own clock, so the limit
  holds in all at the cost of one round trip to Redis per request (the database is never
  involved). If Redis cannot be reached within ``REDIS_TIMEOUT_SECONDS``, the request is let
  through, logged and counted (``clv_rate_limit_unavailable_total``): a limit protects the
  service and must not become the reason it fails.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from service.config import Settings
from service.errors import ServiceError
from service.ops import metrics

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.25
"""How long a request waits for Redis before it is let through without a limit."""
REDIS_KEY_PREFIX = "clv:rate:"


class RateLimitedError(ServiceError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, key_name: str, retry_after: float, limit: int) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"The API key {key_name!r} sent more than {limit} requests a minute; "
            f"retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class Limiter(Protocol):
    async def check(self, key_name: str) -> None:
        """Count one request for the key, or raise ``RateLimitedError`` with when to retry."""

    async def close(self) -> None: ...


class RateLimiter:
    """The timestamps in this process."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.tolerance = self.interval * max(burst - 1, 0)
        self.clock = clock
        self._arrivals: dict[str, float] = {}
        self._lock = threading.Lock()

    async def check(self, key_name: str) -> None:
        """Count one request for the key, or raise ``RateLimitedError`` with when to retry."""
        now = self.clock()
        with self._lock:
            arrival = max(self._arrivals.get(key_name, now), now)
            wait = arrival - self.tolerance - now
            if wait > 0:
                raise RateLimitedError(key_name, wait, self.per_minute)
            self._arrivals[key_name] = arrival + self.interval

    async def close(self) -> None:
        pass


# KEYS[1]: the key's timestamp; ARGV: interval and tolerance in microseconds. Returns the wait
# in microseconds (0: allowed, and counted). Redis's clock, so processes' clocks cannot differ.
_GCRA = """
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local arrival = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local wait = arrival - tolerance - now
if wait > 0 then return wait end
arrival = arrival + interval
redis.call('SET', KEYS[1], arrival, 'PX', math.ceil((arrival - now) / 1000) + 1000)
return 0
"""


class RedisRateLimiter:
    """The timestamps in Redis, shared by every process that uses the same Redis."""

    def __init__(self, url: str, per_minute: int, burst: int) -> None:
        self.per_minute = per_minute
        interval = 60.0 / per_minute
        self._args = (round(interval * 1e6), round(interval * max(burst - 1, 0) * 1e6))
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._script = self._redis.register_script(_GCRA)

    async def check(self, key_name: str) -> None:
        try:
            wait = int(await self._script(keys=[REDIS_KEY_PREFIX + key_name], args=self._args))
        except (RedisError, OSError) as error:
            metrics.RATE_LIMIT_UNAVAILABLE.inc()
            logger.warning("rate limit not applied: Redis unavailable (%s)", error)
            return
        if wait > 0:
            raise RateLimitedError(key_name, wait / 1e6, self.per_minute)

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter(settings: Settings) -> Limiter | None:
    """The limiter ``CLV_RATE_LIMIT_PER_MINUTE`` and ``CLV_REDIS_URL`` ask for, or None."""
    per_minute, burst = settings.rate_limit_per_minute, settings.rate_limit_burst
    if not per_minute:
        return None
    if settings.redis_url is None:
        return RateLimiter(per_minute, burst)
    return RedisRateLimiter(settings.redis_url.get_secret_value(), per_minute, burst)
