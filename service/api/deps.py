"""Request dependencies, declared once as ``Annotated`` aliases and used in route signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from service.auth import service as auth
from service.auth.cache import KeyCache
from service.auth.models import ApiKey
from service.auth.rate_limit import Limiter
from service.config import Settings
from service.customers.service import ProfilePolicy
from service.errors import AuthenticationError, PermissionDeniedError
from service.events.backpressure import Backpressure
from service.events.service import IngestRules
from service.scoring.service import Scorer


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; commit when the handler returns, before the response is sent
    (``scope="function"`` below), so an answer never acknowledges uncommitted writes.

    Opened on the event loop (a session connects only when first used, in the handler's
    thread) and finished in one trip through the thread pool: a sync generator would cross it
    twice, around a handler that crosses it once."""
    session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
            await run_in_threadpool(_finish, session, commit=False)
        raise
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(_finish, session, commit=True)


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _ingest_rules(request: Request) -> IngestRules:
    rules: IngestRules = request.app.state.ingest_rules
    return rules


async def _backpressure(request: Request) -> Backpressure:
    backpressure: Backpressure = request.app.state.backpressure
    return backpressure


async def _profile_policy(request: Request) -> ProfilePolicy:
    policy: ProfilePolicy = request.app.state.profile_policy
    return policy


async def _scorer(request: Request) -> Scorer:
    scorer: Scorer = request.app.state.scorer
    return scorer


# Trivial dependencies are async so FastAPI runs them inline rather than in the thread pool.
SettingsDep = Annotated[Settings, Depends(_settings)]
IngestRulesDep = Annotated[IngestRules, Depends(_ingest_rules)]
BackpressureDep = Annotated[Backpressure, Depends(_backpressure)]
ProfilePolicyDep = Annotated[ProfilePolicy, Depends(_profile_policy)]
ScorerDep = Annotated[Scorer, Depends(_scorer)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `clv apikey create`, sent as `Authorization: Bearer <key>`.",
)


async def _api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The request's key: from the process's cache when it was seen within
    ``CLV_API_KEY_CACHE_SECONDS`` (no database, no thread), else looked up in a thread of the
    pool with a session of its own."""
    if credentials is None:
        raise AuthenticationError("Missing API key: send the header Authorization: Bearer <key>")
    token = credentials.credentials
    keys: KeyCache = request.app.state.api_keys
    key = keys.get(token)
    if key is None:
        key = await run_in_threadpool(_look_up, request.app.state.session_factory, token)
        if key is None:
            raise AuthenticationError("Unknown or revoked API key")
        keys.put(token, key)
    request.state.api_key_name = key.name
    limiter: Limiter | None = request.app.state.rate_limiter
    if limiter is not None:
        await limiter.check(key.name)
    return key


def _look_up(session_factory: sessionmaker[Session], token: str) -> ApiKey | None:
    with session_factory() as session:
        return auth.authenticate(session, token)


def _requires(scope: auth.Scope) -> Callable[[ApiKey], Coroutine[Any, Any, ApiKey]]:
    async def check(key: Annotated[ApiKey, Depends(_api_key)]) -> ApiKey:
        if not auth.allows(key, scope):
            raise PermissionDeniedError(
                f"The API key {key.name!r} lacks the {scope.value!r} scope this operation needs"
            )
        return key

    return check


IngestKey = Annotated[ApiKey, Depends(_requires(auth.Scope.ingest))]
ReadKey = Annotated[ApiKey, Depends(_requires(auth.Scope.read))]
AdminKey = Annotated[ApiKey, Depends(_requires(auth.Scope.admin))]
