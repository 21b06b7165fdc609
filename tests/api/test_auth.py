"""Authentication before the body: real servers on 127.0.0.1, raw sockets where httpx is
too polite."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.api.auth import AuthMiddleware, FailureLimiter
from tests.fixtures.raw_http import exchange, request_head

KEY = "k-secret-1"


@pytest.fixture
def service(simulator, make_service):
    return make_service(simulator.base_url, API_KEYS=f"{KEY},k-other-2", AUTH_FAILURE_LIMIT="5")


def test_a_huge_body_without_credentials_is_refused_401_without_being_read(service) -> None:
    head = request_head(
        "POST",
        "/api/instances",
        {"Content-Type": "application/json", "Content-Length": str(200 * 1024 * 1024)},
    )
    # 1 KiB of the announced 200 MiB: the answer must come without the server waiting for more.
    response = exchange(service.base_url, head, b"{" + b" " * 1023, timeout=5)
    assert response.status == 401
    assert response.seconds < 2
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["connection"] == "close"  # stops reading what is still coming
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert response.json()["error"]["requestId"]


def test_malformed_json_without_a_key_is_401_not_400(service) -> None:
    url = f"{service.base_url}/api/instances"
    headers = {"Content-Type": "application/json"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.post(url, content=b"{not json", headers=headers | auth)
        assert response.status_code == 401, (auth, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    with_key = httpx.post(
        url, content=b"{not json", headers=headers | {"Authorization": f"Bearer {KEY}"}
    )
    assert with_key.status_code == 400
    assert with_key.json()["error"]["code"] == "VALIDATION_ERROR"


def test_every_401_carries_www_authenticate_bearer(service) -> None:
    for path in ("/api/instances", "/api/instances/abc", "/api/no-such-route"):
        response = httpx.get(f"{service.base_url}{path}")
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["X-Request-ID"]
    ok = httpx.get(f"{service.base_url}/api/instances", headers={"Authorization": f"bearer  {KEY}"})
    assert ok.status_code == 200  # scheme case and spaces around the key do not matter
    assert httpx.get(f"{service.base_url}/health/live").status_code == 200  # open


def test_repeated_failed_auth_is_429_with_retry_after_even_for_the_right_key(service) -> None:
    url = f"{service.base_url}/api/instances"
    statuses = [
        httpx.get(url, headers={"Authorization": f"Bearer guess-{n}"}).status_code for n in range(5)
    ]
    assert statuses == [401] * 5  # AUTH_FAILURE_LIMIT=5 per minute
    blocked = httpx.get(url, headers={"Authorization": "Bearer guess-6"})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "RATE_LIMITED"
    assert int(blocked.headers["Retry-After"]) >= 1
    # A right guess is not told apart from a wrong one while the address cools down.
    right = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"})
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) >= 1
    assert httpx.get(f"{service.base_url}/health/live").status_code == 200  # not /api


def test_failure_limiter_cools_down_one_token_at_a_time() -> None:
    now = [0.0]
    limiter = FailureLimiter(per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4") == 0.0
        limiter.record_failure("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == pytest.approx(20.0)
    assert limiter.retry_after("5.6.7.8") == 0.0  # per address
    now[0] = 19.0
    assert limiter.retry_after("1.2.3.4") == pytest.approx(1.0)
    now[0] = 20.0
    assert limiter.retry_after("1.2.3.4") == 0.0  # one more failure allowed ...
    limiter.record_failure("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == pytest.approx(20.0)  # ... then blocked again
    assert FailureLimiter(per_minute=0).retry_after("x") == 0.0  # 0 turns it off


def test_the_client_id_is_a_hash_of_the_matched_key_never_the_header() -> None:
    async def app(scope, receive, send) -> None:
        raise AssertionError("not called")

    middleware = AuthMiddleware(app, api_keys=[KEY, "k-other-2"], failure_limit=5)

    def scope(value: bytes) -> dict:
        return {"type": "http", "path": "/api/x", "headers": [(b"authorization", value)]}

    first = middleware.authenticate(scope(f"Bearer {KEY}".encode()))
    assert first == middleware.authenticate(scope(f"bearer   {KEY}  ".encode()))
    assert first != middleware.authenticate(scope(b"Bearer k-other-2"))
    assert KEY not in first
    assert first.startswith("key:")
