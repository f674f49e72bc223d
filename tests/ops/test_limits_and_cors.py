"""Per-key rate limits (429 with Retry-After, off by default) and CORS (off unless configured)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from service.auth.rate_limit import RateLimitedError, RateLimiter
from service.config import Settings
from service.main import create_app
from tests.conftest import KeyFactory, bearer


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(
    settings: Settings, make_key: KeyFactory
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 3})
    busy, quiet = bearer(make_key("read")), bearer(make_key("read"))
    with TestClient(create_app(limited)) as client:
        answers = [client.get("/v1/customers/c-1", headers=busy) for _ in range(4)]
        other = client.get("/v1/customers/c-1", headers=quiet)
        unauthenticated = client.get("/v1/customers/c-1")

    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert "6 requests a minute" in refused.json()["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 10  # one 10-s interval, less time passed
    assert other.status_code == 404
    assert unauthenticated.status_code == 401


def test_there_is_no_rate_limit_by_default(client: TestClient, make_key: KeyFactory) -> None:
    headers = bearer(make_key("read"))
    assert {client.get("/v1/customers/c-1", headers=headers).status_code for _ in range(50)} == {
        404
    }


def test_the_limiter_refills_at_its_rate_and_says_when_to_retry() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=120, burst=2, clock=lambda: now[0])  # one per 0.5 s

    def check() -> None:
        asyncio.run(limiter.check("k"))

    check()
    check()
    with pytest.raises(RateLimitedError) as refused:
        check()
    assert refused.value.headers == {"Retry-After": "1"}
    now[0] = 0.5
    check()  # one interval later, one more passes
    with pytest.raises(RateLimitedError):
        check()
    now[0] = 60.0
    for _ in range(2):  # a quiet key has its whole burst again, no more
        check()
    with pytest.raises(RateLimitedError):
        check()


PREFLIGHT = {
    "Origin": "https://admin.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_cors_is_off_unless_configured(client: TestClient) -> None:
    preflight = client.options("/v1/events", headers=PREFLIGHT)
    simple = client.get("/healthz", headers={"Origin": "https://admin.example.com"})

    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in simple.headers


def test_configured_origins_are_allowed_and_no_others(
    settings: Settings, make_key: KeyFactory
) -> None:
    configured = settings.model_copy(update={"cors_origins": ["https://admin.example.com"]})
    with TestClient(create_app(configured)) as client:
        allowed = client.options("/v1/events", headers=PREFLIGHT)
        other = client.options(
            "/v1/events", headers={**PREFLIGHT, "Origin": "https://evil.example.com"}
        )
        error = client.get(
            "/v1/customers/c-1",
            headers={"Origin": "https://admin.example.com", **bearer(make_key("read"))},
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    # Errors carry the headers too, so the browser lets the page read them.
    assert error.status_code == 404
    assert error.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert "X-Request-ID" in error.headers["access-control-expose-headers"]


def test_cors_origins_read_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLV_CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    assert Settings(_env_file=None).cors_origins == [  # type: ignore[call-arg]
        "https://a.example.com",
        "https://b.example.com",
    ]
