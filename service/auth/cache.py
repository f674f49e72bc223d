"""Authenticated API keys remembered per process for a few seconds.

Every request is authenticated; without this, each one reads its key's row first, one more SQL
round trip and one more hop through the thread pool before the handler runs (a stored score
took 4 such hops). A key found here is checked without the database; one not found is looked up
as before. Revocation (``clv apikey revoke``, in another process) therefore takes effect within
``CLV_API_KEY_CACHE_SECONDS``; 0 turns the cache off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from service.auth.models import ApiKey


@dataclass
class KeyCache:
    seconds: float
    max_keys: int = 10_000
    _keys: dict[str, tuple[float, ApiKey]] = field(default_factory=dict)

    def get(self, token: str) -> ApiKey | None:
        """The key authenticated for ``token`` within the last ``seconds``, or None."""
        found = self._keys.get(token)
        if found is None:
            return None
        expires, key = found
        if time.monotonic() >= expires:
            self._keys.pop(token, None)
            return None
        return key

    def put(self, token: str, key: ApiKey) -> None:
        """Remember a key that authenticated ``token`` (only valid ones: a flood of wrong
        tokens must not fill memory). Full, it starts afresh rather than track ages."""
        if self.seconds <= 0:
            return
        if len(self._keys) >= self.max_keys:
            self._keys.clear()
        self._keys[token] = (time.monotonic() + self.seconds, key)
