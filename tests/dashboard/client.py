"""Helpers of the dashboard tests: a logged-in HTTP client and the CSRF token of a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

API_KEY = "dash-key-0123456789"
WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@contextmanager
def logged_in(base_url: str, key: str = API_KEY) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answer = client.post("/ui/login", data={"apiKey": key, "next": "/"})
        assert answer.status_code == 303, answer.text
        yield client
