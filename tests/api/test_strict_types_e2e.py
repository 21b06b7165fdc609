"""Over HTTP: loose types in request bodies are a 400 VALIDATION_ERROR naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from novita_manager.app import create_app
from novita_manager.config import load_settings

CREATE = {"name": "train-1", "productName": "RTX 4090 24GB", "templateId": "1"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/strict.db",
        novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi",  # never reached
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in error["details"]] == [field]
    assert field in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpuNum", "2"),
        ("gpuNum", True),
        ("gpuNum", 2.0),
        ("rootfsSize", "60"),
        ("templateId", True),
        ("templateId", 1.5),
        ("templateId", None),
    ],
)
def test_the_issues_examples_are_refused_naming_the_field(
    client: TestClient, field: str, value: Any
) -> None:
    response = client.post("/api/instances", json={**CREATE, field: value})
    assert_refused(response, field)
    assert client.get("/api/instances").json()["total"] == 0  # nothing was created


def test_gpu_num_as_json_text_with_a_fraction_is_refused(client: TestClient) -> None:
    body = '{"name": "a", "productName": "RTX 4090 24GB", "templateId": "1", "gpuNum": 2.0}'
    response = client.post(
        "/api/instances", content=body, headers={"Content-Type": "application/json"}
    )
    assert_refused(response, "gpuNum")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/instances/start", {"instanceName": 5}, "instanceName"),
        ("/api/instances/stop", {"instanceName": True}, "instanceName"),
        ("/api/instances/some-id/stop", {"webhookUrl": 1}, "webhookUrl"),
        ("/api/webhooks/some-id/redeliver", {"url": 5}, "url"),
    ],
)
def test_other_bodies_are_strict_too(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    assert_refused(client.post(path, json=body), field)
