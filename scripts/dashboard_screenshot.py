"""Take the README's screenshots of the dashboard: docs/dashboard.png (the fleet) and
docs/dashboard-instance.png (an instance's page).

    python scripts/dashboard_screenshot.py

Runs the demo's stack (simulator, webhook receiver, service; nothing to configure), creates a
small fleet through the REST API as a client would, and photographs the pages in headless
Chromium from Debian's package (Playwright with the system browser, as the browser tests).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from novita_manager.cli.demo_stack import DemoStack

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLEET = [
    {"name": "train-llama-70b", "productName": "H100 80GB", "region": "US-CA-06", "gpuNum": 2},
    {"name": "finetune-qwen", "productName": "A100 80GB", "billingMode": "onDemand"},
    {"name": "sd-xl-batch", "productName": "RTX 4090 24GB"},
    {"name": "eval-harness", "productName": "RTX 4090 24GB", "region": "AS-SGP-02"},
    {"name": "notebook-3090", "productName": "RTX 3090 24GB"},
]


def wait_status(client: httpx.Client, instance_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        answer = client.get(f"/api/instances/{instance_id}")
        if answer.status_code == 200 and answer.json()["status"] == status:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{instance_id} did not reach {status}: {answer.text[:200]}")
        time.sleep(0.3)


def main() -> int:
    with DemoStack(port=0, time_scale=0.02) as stack:
        stack.start_simulator()
        stack.start_inbox()
        stack.start_service()
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            ids = []
            for request in FLEET:
                answer = client.post("/api/instances", json={"templateId": "1", **request})
                answer.raise_for_status()
                ids.append(answer.json()["instanceId"])
            for instance_id in ids:
                wait_status(client, instance_id, "running")
            client.post(f"/api/instances/{ids[-1]}/stop").raise_for_status()
            wait_status(client, ids[-1], "stopped")
            # One on its way, so the picture shows a moving status too.
            client.post(
                "/api/instances",
                json={
                    "name": "batch-infer-7",
                    "productName": "L40S 48GB",
                    "region": "AS-SGP-02",
                    "templateId": "1",
                },
            ).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1200, "height": 500})
            page.goto(f"{stack.base_url}/")
            page.wait_for_selector("#live[data-state=on]")
            page.screenshot(path=str(ROOT / "docs" / "dashboard.png"))
            page.goto(f"{stack.base_url}/ui/instances/{ids[0]}")
            page.wait_for_selector("#status[data-status=running]")
            page.screenshot(path=str(ROOT / "docs" / "dashboard-instance.png"), full_page=True)
            browser.close()
    print("wrote docs/dashboard.png and docs/dashboard-instance.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
