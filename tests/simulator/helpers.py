"""Helpers of the simulator's HTTP tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

CREATE = "/gpu/instance/create"


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "test-box",
        "productId": "4090.16c62g.hk1",
        "gpuNum": 1,
        "rootfsSize": 60,
        "imageUrl": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        "kind": "gpu",
        "ports": "8888/http,22/tcp",
        "envs": [{"key": "NM_REQUEST", "value": "abc"}],
        "clusterId": "cn-hongkong-1",
    }
    body.update(overrides)
    return body


def create(client: httpx.Client, **overrides: Any) -> str:
    reply = client.post(CREATE, json=create_body(**overrides))
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


def get(client: httpx.Client, instance_id: str) -> dict[str, Any]:
    reply = client.get("/gpu/instance", params={"instanceId": instance_id})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def wait_status(
    client: httpx.Client, instance_id: str, status: str, timeout: float = 5.0
) -> tuple[dict[str, Any], list[str]]:
    """Poll until the instance shows `status`; return it and every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        body = get(client, instance_id)
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == status:
            return body, seen
        assert time.monotonic() < deadline, f"still {body['status']}; saw {seen}"
        time.sleep(0.005)


def action(client: httpx.Client, name: str, instance_id: str) -> httpx.Response:
    return client.post(f"/gpu/instance/{name}", json={"instanceId": instance_id})


def assert_error(reply: httpx.Response, status: int, reason: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"code", "reason", "message", "metadata"}
    assert body["code"] == status
    if reason is not None:
        assert body["reason"] == reason
    return body
