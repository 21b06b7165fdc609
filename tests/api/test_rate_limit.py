"""API_RATE_LIMIT is keyed on the authenticated key (or the address), not the raw header."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.api.rate_limit import TokenBucket

# 0.5 per second: a burst of 1, then one every 2 s, so 10 quick requests get at most 2 through.
RATE = "0.5"


def burst(url: str, authorizations: list[str]) -> list[httpx.Response]:
    with httpx.Client(timeout=5) as client:
        return [client.get(url, headers={"Authorization": value}) for value in authorizations]


def assert_limited(responses: list[httpx.Response]) -> None:
    statuses = [response.status_code for response in responses]
    assert statuses[0] == 200
    assert statuses.count(200) <= 2, statuses
    limited = [response for response in responses if response.status_code == 429]
    assert len(limited) >= 8, statuses
    for response in limited:
        assert response.json()["error"]["code"] == "RATE_LIMITED"
        assert int(response.headers["Retry-After"]) >= 1


def test_rotating_authorization_headers_does_not_bypass_the_limit_without_keys(
    simulator, make_service
) -> None:
    service = make_service(simulator.base_url, API_RATE_LIMIT=RATE)  # no API_KEYS: by address
    url = f"{service.base_url}/api/instances"
    assert_limited(burst(url, [f"Bearer rotating-{n}" for n in range(10)]))


def test_spellings_of_one_key_share_its_bucket_and_other_keys_have_their_own(
    simulator, make_service
) -> None:
    service = make_service(simulator.base_url, API_KEYS="k-one,k-two", API_RATE_LIMIT=RATE)
    url = f"{service.base_url}/api/instances"
    spellings = ["Bearer k-one", "bearer k-one", "BEARER  k-one", "Bearer\tk-one"]
    assert_limited(burst(url, [spellings[n % len(spellings)] for n in range(10)]))
    assert httpx.get(url, headers={"Authorization": "Bearer k-two"}).status_code == 200


def test_bucket_bursts_then_says_when_the_next_token_is_free() -> None:
    bucket = TokenBucket(rate=0.5, burst=1.0)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(2.0, abs=0.05)  # one token every 2 s
    bucket = TokenBucket(rate=10.0, burst=20.0)
    assert all(bucket.try_acquire() == 0.0 for _ in range(20))
    assert bucket.try_acquire() == pytest.approx(0.1, abs=0.02)
