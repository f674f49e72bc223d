"""Per-key request rate limits (``CLV_RATE_LIMIT_PER_MINUTE``, off when 0).

The generic cell rate algorithm: each key has a theoretical arrival time that every allowed
request pushes one interval (60 s / limit) further; a request is allowed while that time lies
no more than ``burst`` intervals ahead of now. It needs one timestamp per key, allows short
bursts, and says exactly when the next request will pass, which is the ``Retry-After`` of the 429.

The state lives in the process: with ``clv serve --workers N`` each process enforces the limit
on the requests it receives, so a key may reach up to N times the limit in all. A limit shared
across processes would cost a database write on every request, which is the cost the limit
exists to protect; we chose the cheap, local one and document it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from service.errors import ServiceError


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


class RateLimiter:
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

    def check(self, key_name: str) -> None:
        """Count one request for the key, or raise ``RateLimitedError`` with when to retry."""
        now = self.clock()
        with self._lock:
            arrival = max(self._arrivals.get(key_name, now), now)
            wait = arrival - self.tolerance - now
            if wait > 0:
                raise RateLimitedError(key_name, wait, self.per_minute)
            self._arrivals[key_name] = arrival + self.interval
