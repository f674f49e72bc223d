"""API keys: 401 without a valid key, 403 without the scope, for every route."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.auth import service as auth
from service.auth.models import ApiKey
from service.config import Settings
from service.db.session import make_session_factory
from service.main import create_app
from tests.conftest import KeyFactory, bearer
from tests.factories import batch, event

# (method, path, body, scope needed). Reads of a missing customer answer 404 once authorised;
# that is fine here: the point is which keys get past authentication and authorisation.
ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/events", batch(event()), "ingest"),
    ("GET", "/v1/dead-letters", None, "admin"),
    ("POST", "/v1/dead-letters/retry", {"all": True}, "admin"),
    ("POST", "/v1/dead-letters/drop", {"seqs": [1]}, "admin"),
    ("PATCH", "/v1/customers/c-1", {"source": "crm", "attributes": {"a": 1}}, "ingest"),
    ("PUT", "/v1/customers/c-1", {"source": "crm", "attributes": {"a": 1}}, "ingest"),
    ("GET", "/v1/customers/c-1", None, "read"),
    ("GET", "/v1/customers/c-1/features", None, "read"),
    ("GET", "/v1/customers/c-1/clv", None, "read"),
    ("GET", "/v1/customers/c-1/clv/history", None, "read"),
    ("POST", "/v1/clv/batch", {"customer_ids": ["c-1"]}, "read"),
    ("GET", "/v1/reports/feature-importance", None, "read"),
    ("GET", "/v1/reports/feature-importance.png", None, "read"),
    ("GET", "/v1/features", None, "read"),
    ("DELETE", "/v1/customers/c-1", None, "admin"),
    ("POST", "/v1/models", {"horizon_days": 30, "epochs": 1}, "admin"),
    ("GET", "/v1/models", None, "read"),
    ("GET", "/v1/models/v-1", None, "read"),
    ("POST", "/v1/models/v-1/promote", {"alias": "champion"}, "admin"),
    ("POST", "/v1/models/rollback", {"alias": "champion"}, "admin"),
    ("GET", "/v1/promotions", None, "read"),
    ("GET", "/v1/serving", None, "read"),
    ("GET", "/v1/jobs/1", None, "admin"),
    ("POST", "/v1/jobs/1/cancel", None, "admin"),
    ("POST", "/v1/learning/runs", {}, "admin"),
    ("GET", "/v1/learning/decisions", None, "read"),
    ("GET", "/v1/learning/decisions/1", None, "read"),
    ("GET", "/v1/monitoring/accuracy", None, "read"),
    ("POST", "/v1/monitoring/accuracy", None, "admin"),
    ("GET", "/v1/monitoring/drift", None, "read"),
    ("POST", "/v1/monitoring/drift", {}, "admin"),
    ("GET", "/v1/reports/fairness", None, "read"),
    ("POST", "/v1/reports/fairness", {}, "admin"),
    ("GET", "/v1/reports/fairness.png", None, "read"),
    ("GET", "/v1/reports/btyd", None, "read"),
    ("POST", "/v1/reports/btyd", {}, "admin"),
    ("GET", "/v1/reports/btyd.png", None, "read"),
    ("POST", "/v1/forecasts", {}, "admin"),
    ("GET", "/v1/forecasts/1", None, "read"),
    ("GET", "/v1/forecasts/1.png", None, "read"),
    ("GET", "/v1/webhooks/deliveries", None, "admin"),
    ("POST", "/v1/audiences", {"name": "a"}, "admin"),
    ("POST", "/v1/audiences/preview", {}, "read"),
    ("GET", "/v1/audiences", None, "read"),
    ("GET", "/v1/audiences/1", None, "read"),
    ("DELETE", "/v1/audiences/1", None, "admin"),
    ("GET", "/v1/audiences/1/members", None, "read"),
    ("GET", "/v1/audiences/1/export.csv", None, "read"),
]
PARAMETERS = {
    "c-1": "{customer_id}",
    "v-1": "{version}",
    "/jobs/1": "/jobs/{job_id}",
    "/decisions/1": "/decisions/{decision_id}",
    "/audiences/1": "/audiences/{audience_id}",
    "/forecasts/1": "/forecasts/{forecast_id}",
}


def template(path: str) -> str:
    for value, name in PARAMETERS.items():
        path = path.replace(value, name)
    return path


SCOPES = ["ingest", "read", "admin"]


def call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


def test_every_route_is_covered_by_the_matrix(client: TestClient) -> None:
    public = {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"}
    documented = {
        (method.upper(), path)
        for path, item in client.get("/openapi.json").json()["paths"].items()
        for method in item
        if path not in public
    }
    assert documented == {(m, template(p)) for m, p, _, _ in ROUTES}


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
@pytest.mark.parametrize("scope", SCOPES)
def test_a_key_passes_only_with_the_needed_scope(
    client: TestClient,
    make_key: KeyFactory,
    method: str,
    path: str,
    body: Any,
    needed: str,
    scope: str,
) -> None:
    response = call(client, method, path, body, bearer(make_key(scope)))

    if scope in (needed, "admin"):
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
        assert needed in response.json()["message"]


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer clv_deadbeef_not-a-real-secret"},
        {"Authorization": "Bearer something-else"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["missing", "empty", "unknown", "malformed", "basic-auth"],
)
def test_no_valid_key_is_401(
    client: TestClient,
    method: str,
    path: str,
    body: Any,
    needed: str,
    headers: dict[str, str],
) -> None:
    response = call(client, method, path, body, headers)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_tampered_secret_with_a_real_prefix_is_401(
    client: TestClient, make_key: KeyFactory
) -> None:
    token = make_key("admin")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert client.get("/v1/customers/c-1", headers=bearer(tampered)).status_code == 401


def revoke_elsewhere(db: Engine, name: str) -> None:
    """Revoke a key in the database directly, as `clv apikey revoke` does from another
    process (nothing tells the API process)."""
    with make_session_factory(db)() as session, session.begin():
        auth.revoke(session, name)


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
def test_a_revoked_key_is_401(
    settings: Settings,
    make_key: KeyFactory,
    db: Engine,
    method: str,
    path: str,
    body: Any,
    needed: str,
) -> None:
    uncached = settings.model_copy(update={"api_key_cache_seconds": 0})
    token = make_key("admin", name="to-revoke")
    with TestClient(create_app(uncached)) as client:
        assert client.get("/v1/customers/c-1", headers=bearer(token)).status_code == 404
        revoke_elsewhere(db, "to-revoke")

        response = call(client, method, path, body, bearer(token))

    assert response.status_code == 401
    assert response.json() == {
        "code": "unauthenticated",
        "message": "Unknown or revoked API key",
        "request_id": response.headers["x-request-id"],
    }


def test_a_key_revoked_elsewhere_is_refused_once_the_process_cache_expires(
    settings: Settings, make_key: KeyFactory, db: Engine
) -> None:
    cached = settings.model_copy(update={"api_key_cache_seconds": 1.0})
    token = make_key("read", name="cached")
    with TestClient(create_app(cached)) as client:
        assert client.get("/v1/customers/c-1", headers=bearer(token)).status_code == 404
        revoke_elsewhere(db, "cached")
        revoked_at = time.monotonic()
        within = client.get("/v1/customers/c-1", headers=bearer(token)).status_code
        time.sleep(max(0.0, 1.05 - (time.monotonic() - revoked_at)))
        after = client.get("/v1/customers/c-1", headers=bearer(token)).status_code
        unknown = client.get("/v1/customers/c-1", headers=bearer(token + "x")).status_code

    assert within == 404  # trusted for up to CLV_API_KEY_CACHE_SECONDS
    assert after == 401
    assert unknown == 401  # a token never seen is looked up, whatever the cache holds


def test_keys_are_stored_only_as_hashes(make_key: KeyFactory, db: Engine) -> None:
    token = make_key("read", name="hashed")
    with db.connect() as connection:
        row = connection.execute(select(ApiKey)).one()
    assert token not in str(tuple(row))
    assert token.split("_", 2)[2] not in str(tuple(row))
    assert row.prefix == token.split("_")[1]


def test_probes_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path
