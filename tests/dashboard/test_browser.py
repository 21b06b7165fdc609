"""The dashboard and /docs in a real browser: headless Chromium from Debian's package, driven by
Playwright (launched with the system Chromium's executable path; no browser download).

Skipped with the reason only when Chromium or Playwright is absent and
NOVITA_MANAGER_REQUIRE_BROWSER is not set (CI sets it, so CI cannot skip silently). Every
request the browser makes to another host is refused and recorded, so the pages are tested
offline. Screenshots of the main pages go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.dashboard.client import API_KEY, WEBHOOK_SECRET
from tests.fixtures.webhook_receiver import Reply

CHROMIUM = os.environ.get("NOVITA_MANAGER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
LIVE_TIMEOUT = 15_000  # ms: the simulator runs at time scale 0.01, running takes ~1 s
# ReDoc's bundle always tries its decorative "API docs by Redocly" logo from its CDN and hides
# the image when that fails; nothing else may be loaded from elsewhere.
TOLERATED_OUTSIDE = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def _browser_or_skip() -> Any:
    required = os.environ.get("NOVITA_MANAGER_REQUIRE_BROWSER", "") not in ("", "0")
    problem = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if required:
            pytest.fail(f"NOVITA_MANAGER_REQUIRE_BROWSER is set but {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def create_by_api(base_url: str, name: str, key: str | None = None) -> None:
    """As another client would, behind the page's back."""
    answer = httpx.post(
        f"{base_url}/api/instances",
        json={"name": name, "productName": "RTX 4090 24GB", "templateId": "1"},
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


class Page:
    """A browser page on one service, which refuses (and records) requests to other hosts and
    fails the test on a script error."""

    def __init__(self, browser: Any, base_url: str, **context: Any) -> None:
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(LIVE_TIMEOUT)
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.answer_confirmations = True
        self.page.on("dialog", self._confirm)
        own = urlsplit(base_url).netloc
        self.context.route("**/*", self._only_local(own))

    def _confirm(self, dialog: Any) -> None:
        if self.answer_confirmations:
            dialog.accept()
        else:
            dialog.dismiss()

    def _only_local(self, own: str) -> Any:
        def route(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc == own or url.startswith("data:"):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        return route

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()
        outside = [url for url in self.outside if url not in TOLERATED_OUTSIDE]
        assert not outside, f"the page tried to load from other hosts: {outside}"
        assert not self.errors, f"script errors: {self.errors}"


def test_login_create_see_running_live_stop_and_redeliver_a_failed_webhook(
    browser, make_service, simulator, webhook_receiver
):
    # Slower than the other tests' simulator (a boot of ~1-2 s), so that the instance page is
    # certainly rendered before `running` and the change is seen live.
    simulator.control.set_config(time_scale=0.02)
    service = make_service(simulator.base_url, API_KEYS=API_KEY, WEBHOOK_SECRET=WEBHOOK_SECRET)
    webhook_receiver.script(Reply(410))  # the first webhook fails at once (4xx: not retried)
    view = Page(browser, service.base_url, viewport={"width": 1280, "height": 860})
    page = view.page
    try:
        page.goto("/")
        assert "/ui/login" in page.url
        page.fill("input[name=apiKey]", "not-a-key")
        page.click("button[type=submit]")
        page.wait_for_selector("text=not one of API_KEYS")
        view.shot("login")
        page.fill("input[name=apiKey]", API_KEY)
        page.click("button[type=submit]")
        page.wait_for_url(f"{service.base_url}/")

        # Create from the offers: choosing one fills in the form.
        page.goto("/ui/new")
        offer = page.locator("table.offers tr", has_text="RTX 4090 24GB").first
        region = offer.locator("td[data-label=Region]").inner_text()
        offer.locator("a:has-text('Choose')").click()
        page.wait_for_url("**/ui/new?productName=*")
        assert page.input_value("input[name=productName]") == "RTX 4090 24GB"
        assert page.input_value("input[name=region]") == region
        page.fill("input[name=name]", "browser-gpu-1")
        page.select_option("select[name=templateId]", "1")
        page.fill("input[name=webhookUrl]", webhook_receiver.url)
        view.shot("new-instance")
        page.click("#create button[type=submit]")
        page.wait_for_url("**/ui/instances/*")
        instance_id = page.url.rsplit("/", 1)[-1]
        assert page.get_attribute("#status", "data-status") in ("creating", "starting")

        # Live: the status changes on the page while it stays loaded (a reload would drop the
        # marker set here).
        page.evaluate("window.__notReloaded = true")
        page.wait_for_selector("#live[data-state=on]")
        page.wait_for_selector("#status[data-status=running]")
        assert page.evaluate("window.__notReloaded") is True
        assert "ssh " in page.inner_text("#panel")

        # The webhook failed (410): shown as failed, redelivered, then delivered.
        # Locators, not element handles: the panel is re-rendered by live updates meanwhile.
        failed = page.locator("tr[data-delivery][data-status=failed]")
        failed.wait_for()
        assert "410" in failed.inner_text()
        view.shot("instance-webhook-failed")
        failed.locator("button:has-text('Redeliver')").click()
        page.wait_for_selector("tr[data-delivery][data-status=delivered]")
        assert len(webhook_receiver.requests()) == 2

        # Stop, confirmed; the page follows to stopped by itself.
        page.click("button[value=stop]")
        page.wait_for_url(f"**/ui/instances/{instance_id}")
        page.evaluate("window.__notReloaded = true")
        page.wait_for_selector("#status[data-status=stopped]")
        assert page.evaluate("window.__notReloaded") is True
        page.wait_for_selector("text=instance.stopped")
        view.shot("instance")

        # The fleet shows it; a second instance created meanwhile appears live.
        page.goto("/")
        page.wait_for_selector(f"tr[data-instance='{instance_id}'][data-status=stopped]")
        page.evaluate("window.__notReloaded = true")
        page.wait_for_selector("#live[data-state=on]")
        with page.expect_response("**/ui/fleet*"):
            create_by_api(service.base_url, "browser-gpu-2", API_KEY)
        page.wait_for_selector("tr[data-status=running] >> text=browser-gpu-2")
        assert page.evaluate("window.__notReloaded") is True
        view.shot("fleet")
        from playwright.sync_api import expect  # installed: the `browser` fixture checked

        # Filters apply as they are typed, and the address bar keeps them (a reload shows the
        # same list).
        page.fill("input[name=name]", "gpu-2")
        expect(page.locator("#fleet tbody tr")).to_have_count(1)
        assert page.url == f"{service.base_url}/?name=gpu-2"
        page.reload()
        expect(page.locator("#fleet tbody tr")).to_have_count(1)
        assert API_KEY not in page.content()
    finally:
        view.close()


def test_the_fleet_on_a_phone(browser, make_service, simulator):
    service = make_service(simulator.base_url)
    create_by_api(service.base_url, "phone-gpu-1")
    view = Page(
        browser,
        service.base_url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = view.page
    try:
        page.goto("/")
        page.wait_for_selector("tr[data-status=running] >> text=phone-gpu-1")
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        view.shot("fleet-phone")
        page.click("text=phone-gpu-1")
        page.wait_for_selector("#status[data-status=running]")
        instance_path = urlsplit(page.url).path
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        view.shot("instance-phone")
        # A dismissed confirmation sends nothing.
        view.answer_confirmations = False
        with page.expect_event("dialog"):
            page.click("button[value=delete]")
        page.wait_for_timeout(300)
        assert page.url.endswith(instance_path)
        operations = httpx.get(
            f"{service.base_url}/api{instance_path.removeprefix('/ui')}/operations", timeout=10
        ).json()["operations"]
        assert operations == []
        page.goto("/ui/new")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        view.close()


def test_api_docs_render_offline(browser, make_service, simulator):
    service = make_service(simulator.base_url)
    view = Page(browser, service.base_url, viewport={"width": 1280, "height": 860})
    try:
        for path, rendered in (
            ("/docs", ".swagger-ui .opblock-summary-path"),  # Swagger UI drew the operations
            ("/redoc", "[data-section-id] h2, .api-content h1"),  # ReDoc drew the document
        ):
            view.page.goto(path)
            view.page.wait_for_selector(rendered)
            assert "/api/instances" in view.page.content()
            view.shot(path.strip("/"), full_page=False)
    finally:
        view.close()
