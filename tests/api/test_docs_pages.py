"""/docs and /redoc reference only assets the service serves itself (no CDN), and serve them.

The browser test (tests/dashboard/test_browser.py) checks that Swagger UI really renders."""

from __future__ import annotations

import re

import httpx
import pytest

from novita_manager.api.docs_pages import ASSETS_URL


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"]),
        ("/redoc", ["redoc.standalone.js", "favicon.png"]),
    ],
)
def test_docs_pages_load_their_assets_from_the_service(make_service, simulator, page, assets):
    service = make_service(simulator.base_url)
    with httpx.Client(base_url=service.base_url, timeout=10) as client:
        html = client.get(page)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        # Every URL the page loads is on this service: nothing absolute (http:, https:, //host).
        sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert sources, "the page loads no asset at all"
        assert all(source.startswith("/") and not source.startswith("//") for source in sources)
        assert "cdn" not in html.text.lower()
        for name in assets:
            assert f'{ASSETS_URL}/{name}"' in html.text
            asset = client.get(f"{ASSETS_URL}/{name}")
            assert asset.status_code == 200, name
            assert len(asset.content) > 1000, name
        assert "'/openapi.json'" in html.text or '"/openapi.json"' in html.text
