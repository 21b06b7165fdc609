"""Reading GET /metrics/gpu/instance leniently: the average series, per-GPU series averaged, and
anything unreadable as no points (so no idle stop is ever based on a guess)."""

from __future__ import annotations

from datetime import UTC, datetime

from novita_manager.http_client import Response
from novita_manager.novita.gpu_metrics import host_metrics_url, parse_gpu_utilization


def reply(body: object) -> Response:
    return Response(200, json=body)


def test_the_average_series_is_read_oldest_first() -> None:
    body = {
        "gpuUtilization": {
            "avg": [
                {"timestamp": "1800000060", "value": 2.5},
                {"timestamp": 1800000000, "value": 90},
            ]
        }
    }
    assert parse_gpu_utilization(reply(body)) == [
        (datetime.fromtimestamp(1_800_000_000, UTC), 90.0),
        (datetime.fromtimestamp(1_800_000_060, UTC), 2.5),
    ]


def test_per_gpu_series_are_averaged_when_there_is_no_average() -> None:
    body = {
        "gpuUtilization": {
            "gpuIds": [
                {"gpuId": "0", "items": [{"timestamp": "100", "value": 10}]},
                {"gpuId": "1", "items": [{"timestamp": "100", "value": 30}, {"value": 5}]},
            ]
        }
    }
    assert parse_gpu_utilization(reply(body)) == [(datetime.fromtimestamp(100, UTC), 20.0)]


def test_unreadable_bodies_give_no_points() -> None:
    for body in ({}, {"gpuUtilization": None}, {"gpuUtilization": {"avg": "x"}}, [1, 2], "text"):
        assert parse_gpu_utilization(reply(body)) == []
    assert parse_gpu_utilization(Response(200, content=b"not json")) == []


def test_the_host_path_reading() -> None:
    base = "https://api.novita.ai/gpu-instance/openapi/v1"
    assert host_metrics_url(base) == "https://api.novita.ai/openapi/v1/metrics/gpu/instance"
