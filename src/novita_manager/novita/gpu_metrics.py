"""GPU utilisation from `GET /metrics/gpu/instance` (novita-api.md §3.9), read leniently.

Novita's docs leave the endpoint's parameters and body open. What is assumed (the shape Novita's
sister API PPIO documents, which Novita's own CLI calls): the query takes `instanceId`,
`startTime` and `endTime` (Unix seconds); the body has `gpuUtilization: {avg: [{timestamp,
value}], gpuIds: [{gpuId, items: [{timestamp, value}]}]}` with values in percent and timestamps
as Unix seconds (a number or a numeric string). The per-GPU series are averaged per timestamp
when `avg` is missing. Anything unreadable gives no points, so idle detection simply does not
fire ("where available"), never a wrong stop.

Path: Novita's CLI calls the metrics at the host's `/openapi/v1/metrics/gpu/instance`, not under
`/gpu-instance/openapi/v1`; the client asks under the configured base first and, on 404, at the
host path (`host_metrics_url`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from novita_manager.http_client import Response

METRICS_PATH = "/metrics/gpu/instance"
HOST_METRICS_PATH = "/openapi/v1/metrics/gpu/instance"

Point = tuple[datetime, float]


def host_metrics_url(base_url: str) -> str:
    """The metrics endpoint at the API host's root (the CLI's reading)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{HOST_METRICS_PATH}"


def _points(series: Any) -> list[Point]:
    points: list[Point] = []
    if not isinstance(series, list):
        return points
    for item in series:
        if not isinstance(item, dict):
            continue
        try:
            at = datetime.fromtimestamp(float(item["timestamp"]), UTC)
            value = float(item["value"])
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            continue
        points.append((at, value))
    return points


def parse_gpu_utilization(response: Response) -> list[Point]:
    """The GPU utilisation series (time, percent), oldest first; [] when absent."""
    try:
        data = response.json()
    except ValueError:
        return []
    gpu = data.get("gpuUtilization") if isinstance(data, dict) else None
    if not isinstance(gpu, dict):
        return sorted(_points(gpu))
    average = _points(gpu.get("avg"))
    if average:
        return sorted(average)
    by_time: dict[datetime, list[float]] = {}
    for card in gpu.get("gpuIds") or []:
        if isinstance(card, dict):
            for at, value in _points(card.get("items")):
                by_time.setdefault(at, []).append(value)
    return sorted((at, sum(values) / len(values)) for at, values in by_time.items())
