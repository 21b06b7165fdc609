"""The dashboard over HTTP (a real service on 127.0.0.1): login, session cookie, CSRF, no
secret in any page, refusals shown. The browser flow is in test_browser.py."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.dashboard.client import API_KEY, WEBHOOK_SECRET, csrf_of, logged_in
from tests.fixtures.waiting import wait_for

CREATE = {
    "name": "dash-1",
    "productName": "RTX 4090 24GB",
    "templateId": "1",
    "gpuNum": "1",
    "rootfsSize": "60",
    "billingMode": "spot",
}


@pytest.fixture
def service(make_service, simulator):
    return make_service(simulator.base_url, API_KEYS=API_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET)


def test_pages_need_a_login_when_api_keys_are_set(service):
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        answer = client.get("/?status=running")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=/%3Fstatus%3Drunning"
        for path in ("/ui/fleet", "/ui/new", "/ui/instances/x"):
            assert client.get(path).status_code == 303, path
        assert client.get("/ui/events").status_code == 401
        refused = client.post("/ui/instances", data={**CREATE, "csrf": "x"})
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/ui/login")
        login = client.get("/ui/login")
        assert login.status_code == 200
        assert 'type="password"' in login.text


def test_login_sets_a_strict_http_only_cookie_without_the_key(service):
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        wrong = client.post("/ui/login", data={"apiKey": "not-the-key", "next": "/"})
        assert wrong.status_code == 401
        assert "not one of API_KEYS" in wrong.text
        assert "not-the-key" not in wrong.text
        answer = client.post("/ui/login", data={"apiKey": API_KEY, "next": "/ui/new"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/new"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert API_KEY not in cookie
        page = client.get("/")
        assert page.status_code == 200
        assert "Fleet" in page.text
        # Only a path of this dashboard is followed after a login.
        for elsewhere in ("//evil.example/x", "/\t/evil.example", "https://evil.example/"):
            other = client.post("/ui/login", data={"apiKey": API_KEY, "next": elsewhere})
            assert other.headers["location"] == "/", elsewhere


def test_failed_logins_are_limited_per_address(make_service, simulator):
    service = make_service(simulator.base_url, API_KEYS=API_KEY, AUTH_FAILURE_LIMIT="2")
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        for _ in range(2):
            assert client.post("/ui/login", data={"apiKey": "wrong"}).status_code == 401
        limited = client.post("/ui/login", data={"apiKey": API_KEY})
        assert limited.status_code == 429
        assert "Too many failed logins" in limited.text


def test_every_post_needs_the_sessions_csrf_token_and_this_origin(service):
    with logged_in(service.base_url) as client:
        token = csrf_of(client.get("/ui/new").text)
        assert client.post("/ui/instances", data=CREATE).status_code == 403
        assert client.post("/ui/instances", data={**CREATE, "csrf": "forged"}).status_code == 403
        cross = client.post(
            "/ui/instances",
            data={**CREATE, "csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        assert (
            client.get("/api/instances", headers={"Authorization": f"Bearer {API_KEY}"}).json()[
                "total"
            ]
            == 0
        ), "a refused form created something"
        created = client.post(
            "/ui/instances",
            data={**CREATE, "csrf": token},
            headers={"Origin": service.base_url},
        )
        assert created.status_code == 303
        assert created.headers["location"].startswith("/ui/instances/")
        # A token of one session is worth nothing in another.
        with logged_in(service.base_url) as other:
            assert other.post("/ui/instances", data={**CREATE, "csrf": token}).status_code == 403
        # Logging out ends the session.
        assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
        assert client.get("/").status_code == 303


def test_no_secret_is_rendered_and_pages_carry_a_strict_csp(service):
    secrets = [API_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_")]
    secrets += [key.get_secret_value() for key in [service.settings.novita_api_key] if key]
    with logged_in(service.base_url) as client:
        token = csrf_of(client.get("/ui/new").text)
        # A webhook URL often carries a token of its own: the pages never show it.
        hook = "http://127.0.0.1:9/hook?token=tok-0123456789abcdef"
        secrets.append("tok-0123456789abcdef")
        created = client.post("/ui/instances", data={**CREATE, "webhookUrl": hook, "csrf": token})
        instance_path = created.headers["location"]
        api = {"Authorization": f"Bearer {API_KEY}"}
        instance_id = instance_path.rsplit("/", 1)[-1]
        wait_for(
            lambda: (
                client.get(f"/api/instances/{instance_id}", headers=api).json()["status"]
                == "running"
            ),
            what="running",
        )
        for path in ("/", "/ui/fleet", "/ui/new", instance_path, f"{instance_path}/panel"):
            page = client.get(path)
            assert page.status_code == 200, path
            for secret in secrets:
                assert secret not in page.text, f"a secret in {path}"
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert page.headers["x-content-type-options"] == "nosniff"
        assert "ssh " in client.get(instance_path).text  # connection details are shown


def test_a_refused_request_is_shown_on_its_page(service):
    with logged_in(service.base_url) as client:
        token = csrf_of(client.get("/ui/new").text)
        bad = client.post("/ui/instances", data={**CREATE, "name": "no spaces", "csrf": token})
        assert bad.status_code == 400
        assert "name" in bad.text
        unknown = client.post(
            "/ui/instances", data={**CREATE, "productName": "RTX 9999 1GB", "csrf": token}
        )
        assert unknown.status_code == 400
        assert "RTX 9999 1GB" in unknown.text
        assert 'value="RTX 9999 1GB"' in unknown.text  # the form keeps what was typed
        created = client.post("/ui/instances", data={**CREATE, "csrf": token})
        instance_path = created.headers["location"]
        conflict = client.post(f"{instance_path}/start", data={"csrf": token})
        assert conflict.status_code == 409
        assert "Start refused" in conflict.text
        missing = client.get("/ui/instances/no-such-instance")
        assert missing.status_code == 404


def test_an_open_dashboard_still_needs_the_csrf_token(make_service, simulator):
    service = make_service(simulator.base_url)  # no API_KEYS: open, like /api
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        page = client.get("/ui/new")
        assert page.status_code == 200
        assert "Log out" not in page.text
        assert client.get("/ui/login").status_code == 303
        assert client.post("/ui/instances", data=CREATE).status_code == 403
        created = client.post("/ui/instances", data={**CREATE, "csrf": csrf_of(page.text)})
        assert created.status_code == 303
    with httpx.Client(base_url=service.base_url, timeout=10) as stranger:
        assert stranger.post("/ui/instances", data={**CREATE, "csrf": "x"}).status_code == 403


def test_fleet_filters(service):
    api = {"Authorization": f"Bearer {API_KEY}"}
    for name, region in (("web-a", "CN-HK-01"), ("web-b", "AS-SGP-02"), ("job-c", "CN-HK-01")):
        body = {"name": name, "productName": "RTX 4090 24GB", "templateId": "1", "region": region}
        answer = httpx.post(f"{service.base_url}/api/instances", json=body, headers=api)
        assert answer.status_code == 201, answer.text
    with logged_in(service.base_url) as client:

        def names(query: str) -> set[str]:
            page = client.get(f"/ui/fleet?{query}")
            assert page.status_code == 200
            return set(re.findall(r'<a href="/ui/instances/[0-9a-f]+">([^<]+)</a>', page.text))

        assert names("") == {"web-a", "web-b", "job-c"}
        assert names("name=web") == {"web-a", "web-b"}
        assert names("region=sgp") == {"web-b"}
        assert names("name=web&region=CN-HK") == {"web-a"}
        assert names("billingMode=onDemand") == set()
        assert names("status=bogus") == {"web-a", "web-b", "job-c"}  # unknown values ignored
        assert names("name=a%26b") == set()
        # The fragment refetches itself with the same filters, encoded.
        fragment = client.get("/ui/fleet?name=a%26b&region=x y").text
        assert 'hx-get="/ui/fleet?name=a%26b&amp;region=x+y"' in fragment


def test_the_create_form_works_while_novita_is_down(make_service, simulator):
    simulator.control.set_faults([{"endpoint": "*", "kind": "error", "status": 503}])
    service = make_service(simulator.base_url)
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        page = client.get("/ui/new")
        assert page.status_code == 200
        assert "The offers could not be listed now" in page.text
        assert 'name="templateId"' in page.text  # typed, as no template list could be read
        # Accepted all the same: the service retries in the background (CONTRACT.md).
        created = client.post(
            "/ui/instances",
            data={
                "name": "while-down",
                "productName": "RTX 4090 24GB",
                "templateId": "1",
                "csrf": csrf_of(page.text),
            },
        )
        assert created.status_code == 303
        assert client.get(created.headers["location"]).status_code == 200
