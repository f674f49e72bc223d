"""Issuing and checking API keys.

A key reads ``clv_<prefix>_<secret>``. The prefix finds the stored row; the whole key is compared
by hash in constant time. Keys carry scopes: ``ingest`` (send events and attributes), ``read``
(profiles and scores), ``admin`` (erasure, models, keys); ``admin`` implies the other two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from service.auth import repository
from service.auth.models import ApiKey
from service.errors import ConflictError, InvalidRequestError, NotFoundError

KEY_PREFIX = "clv"


class Scope(StrEnum):
    ingest = "ingest"
    read = "read"
    admin = "admin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    scopes = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                scopes.append(Scope(part))
            except ValueError:
                known = ", ".join(scope.value for scope in Scope)
                raise InvalidRequestError(f"unknown scope {part!r}; known: {known}") from None
    if not scopes:
        raise InvalidRequestError("a key needs at least one scope")
    return sorted(set(scopes))


def create_key(session: Session, name: str, scopes: Sequence[Scope]) -> tuple[ApiKey, str]:
    """Store a new key; return its row and the key itself, which is never shown again."""
    if repository.by_name(session, name) is not None:
        raise ConflictError(f"an API key named {name!r} exists already")
    prefix = secrets.token_hex(4)
    token = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_hash(token),
        scopes=" ".join(scope.value for scope in scopes),
        created_at=datetime.now(UTC),
    )
    repository.add(session, key)
    return key, token


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The active key matching ``token``, or None. Never says which part was wrong."""
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    key = repository.by_prefix(session, parts[1])
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(_hash(token), key.key_hash) else None


def allows(key: ApiKey, scope: Scope) -> bool:
    scopes = key.scope_set
    return scope.value in scopes or Scope.admin.value in scopes


def list_keys(session: Session) -> Sequence[ApiKey]:
    return repository.all_keys(session)


def revoke(session: Session, name: str) -> ApiKey:
    key = repository.by_name(session, name)
    if key is None:
        raise NotFoundError(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key
