"""Personal data handling: email and phone values are replaced by keyed hashes before storage.

A keyed hash (HMAC-SHA256 with ``CLV_PII_SECRET``) still lets the same email from two sources be
recognised as one, but cannot be reversed, nor confirmed by hashing a guessed address, without
the secret. Values are normalised first so ``Ann@Example.com `` and ``ann@example.com`` agree.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.config import Settings

HASH_PREFIX = "hmac-sha256:"
_NOT_DIGITS = re.compile(r"[^0-9+]")


def _normalise(name: str, value: str) -> str:
    value = value.strip()
    if name == "phone":
        return _NOT_DIGITS.sub("", value)
    return value.lower()


class PiiHasher:
    def __init__(self, secret: str, attribute_names: Iterable[str]) -> None:
        self._key = secret.encode()
        self._names = frozenset(name.lower() for name in attribute_names)

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiHasher:
        return cls(settings.pii_secret.get_secret_value(), settings.pii_attributes)

    def is_personal(self, name: str) -> bool:
        return name.lower() in self._names

    def hash_value(self, name: str, value: Any) -> str:
        if isinstance(value, str) and value.startswith(HASH_PREFIX):
            return value  # already hashed (e.g. a profile read back and sent again)
        digest = hmac.new(self._key, _normalise(name.lower(), str(value)).encode(), hashlib.sha256)
        return HASH_PREFIX + digest.hexdigest()

    def scrub(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``values`` with every personal value (not None) replaced by its hash."""
        return {
            name: self.hash_value(name, value)
            if value is not None and self.is_personal(name)
            else value
            for name, value in values.items()
        }
