"""Typed clients of the simulator's `/_simulator` control API, sync and async.

Apart from the runners (server.py) because any code that reaches a simulator by URL can use
them, whether it started the simulator or not; server.py re-exports both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import httpx

_CONTROL_TIMEOUT = 10.0


def _reset_body(
    seed: int | None,
    autostart: bool | None,
    time_scale: float | None,
    profile: str | None = None,
    readings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if seed is not None:
        body["seed"] = seed
    if autostart is not None:
        body["autostart"] = autostart
    if time_scale is not None:
        body["timeScale"] = time_scale
    body.update(_profile_body(profile, readings))
    return body


def _profile_body(profile: str | None, readings: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if profile is not None:
        body["profile"] = profile
    if readings:
        body["readings"] = dict(readings)
    return body


def _capacity_body(
    product_id: str | None, cluster_id: str | None, available: int | None, after: float | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"available": available}
    if after is not None:
        body["after"] = after
    if product_id is not None:
        body["productId"] = product_id
    if cluster_id is not None:
        body["clusterId"] = cluster_id
    return body


def _reclaim_body(lead_time: float | None, after: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if lead_time is not None:
        body["leadTime"] = lead_time
    if after is not None:
        body["after"] = after
    return body


def _fail_body(state: str | None, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if state is not None:
        body["state"] = state
    if message is not None:
        body["message"] = message
    return body


def _json(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


class SimulatorControl:
    """Synchronous client of the `/_simulator` control API; `root_url` is `http://host:port`."""

    def __init__(self, root_url: str, timeout: float = _CONTROL_TIMEOUT) -> None:
        self._http = httpx.Client(base_url=f"{root_url.rstrip('/')}/_simulator", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def health(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def reset(
        self,
        seed: int | None = None,
        autostart: bool | None = None,
        time_scale: float | None = None,
        profile: str | None = None,
        readings: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fresh state; with `profile`/`readings`, also switch readings (else they stay)."""
        body = _reset_body(seed, autostart, time_scale, profile, readings)
        return _json(self._http.post("/reset", json=body))  # type: ignore[no-any-return]

    def set_profile(
        self, profile: str | None = None, readings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Play `profile` (default: the current one) with `readings` overriding it; answers
        `{profile, readings, overrides}`. State (instances, faults) is kept."""
        body = _profile_body(profile, readings)
        return _json(self._http.post("/profile", json=body))  # type: ignore[no-any-return]

    def profile(self) -> dict[str, Any]:
        """`{profile, readings, overrides}`: the readings in force."""
        return _json(self._http.get("/profile"))  # type: ignore[no-any-return]

    def set_config(
        self, autostart: bool | None = None, time_scale: float | None = None
    ) -> dict[str, Any]:
        return _json(self._http.post("/config", json=_reset_body(None, autostart, time_scale)))  # type: ignore[no-any-return]

    def clock(self) -> dict[str, float]:
        """`{now, offset}`: the simulated clock (epoch seconds) and what advances added."""
        return _json(self._http.get("/clock"))  # type: ignore[no-any-return]

    def advance_clock(self, seconds: float) -> dict[str, float]:
        """Move the simulated clock `seconds` simulated seconds forward (scaled by the time
        scale) for every instance at once; answers `{now, offset}`."""
        return _json(self._http.post("/clock", json={"advance": seconds}))  # type: ignore[no-any-return]

    def set_faults(
        self, faults: list[dict[str, Any]], replace: bool = True
    ) -> list[dict[str, Any]]:
        body = {"faults": faults, "replace": replace}
        return _json(self._http.post("/faults", json=body))["faults"]  # type: ignore[no-any-return]

    def faults(self) -> list[dict[str, Any]]:
        return _json(self._http.get("/faults"))["faults"]  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        _json(self._http.delete("/faults"))

    def set_capacity(
        self,
        available: int | None,
        product_id: str | None = None,
        cluster_id: str | None = None,
        after: float | None = None,
    ) -> dict[str, Any]:
        """Limit creates now, or `after` simulated seconds from now."""
        body = _capacity_body(product_id, cluster_id, available, after)
        return _json(self._http.post("/capacity", json=body))  # type: ignore[no-any-return]

    def reclaim(
        self, instance_id: str, lead_time: float | None = None, after: float | None = None
    ) -> dict[str, Any]:
        """Reclaim now (notice `lead_time` simulated seconds) or `after` simulated seconds."""
        body = _reclaim_body(lead_time, after)
        return _json(self._http.post(f"/instances/{instance_id}/reclaim", json=body))  # type: ignore[no-any-return]

    def live(self) -> dict[str, Any]:
        """`{live, maxLive, moments, reclaimed}`: live instances per marker (spot_life.py)."""
        return _json(self._http.get("/live"))  # type: ignore[no-any-return]

    def set_reclaim_lead(self, seconds: float) -> dict[str, Any]:
        return _json(self._http.post("/config", json={"reclaimLeadTime": seconds}))  # type: ignore[no-any-return]

    def fail(
        self, instance_id: str, state: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        body = _fail_body(state, message)
        return _json(self._http.post(f"/instances/{instance_id}/fail", json=body))  # type: ignore[no-any-return]

    def set_price(
        self, product_id: str, price: int | None = None, spot_price: int | None = None
    ) -> dict[str, Any]:
        body = {"price": price, "spotPrice": spot_price}
        return _json(self._http.post(f"/products/{product_id}/price", json=body))  # type: ignore[no-any-return]

    def set_utilization(self, instance_id: str, percent: float) -> dict[str, Any]:
        body = {"gpuUtilization": percent}
        return _json(self._http.post(f"/instances/{instance_id}/utilization", json=body))  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return _json(self._http.get("/stats"))  # type: ignore[no-any-return]

    def instances(self) -> list[dict[str, Any]]:
        return _json(self._http.get("/instances"))["instances"]  # type: ignore[no-any-return]


class AsyncSimulatorControl:
    """The same control API for async code (the service's tests run in an event loop)."""

    def __init__(self, root_url: str, timeout: float = _CONTROL_TIMEOUT) -> None:
        self._http = httpx.AsyncClient(
            base_url=f"{root_url.rstrip('/')}/_simulator", timeout=timeout
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def reset(
        self,
        seed: int | None = None,
        autostart: bool | None = None,
        time_scale: float | None = None,
        profile: str | None = None,
        readings: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = _reset_body(seed, autostart, time_scale, profile, readings)
        return _json(await self._http.post("/reset", json=body))  # type: ignore[no-any-return]

    async def set_profile(
        self, profile: str | None = None, readings: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        body = _profile_body(profile, readings)
        return _json(await self._http.post("/profile", json=body))  # type: ignore[no-any-return]

    async def profile(self) -> dict[str, Any]:
        return _json(await self._http.get("/profile"))  # type: ignore[no-any-return]

    async def set_config(
        self, autostart: bool | None = None, time_scale: float | None = None
    ) -> dict[str, Any]:
        body = _reset_body(None, autostart, time_scale)
        return _json(await self._http.post("/config", json=body))  # type: ignore[no-any-return]

    async def clock(self) -> dict[str, float]:
        return _json(await self._http.get("/clock"))  # type: ignore[no-any-return]

    async def advance_clock(self, seconds: float) -> dict[str, float]:
        body = {"advance": seconds}
        return _json(await self._http.post("/clock", json=body))  # type: ignore[no-any-return]

    async def set_faults(
        self, faults: list[dict[str, Any]], replace: bool = True
    ) -> list[dict[str, Any]]:
        body = {"faults": faults, "replace": replace}
        return _json(await self._http.post("/faults", json=body))["faults"]  # type: ignore[no-any-return]

    async def clear_faults(self) -> None:
        _json(await self._http.delete("/faults"))

    async def set_capacity(
        self,
        available: int | None,
        product_id: str | None = None,
        cluster_id: str | None = None,
        after: float | None = None,
    ) -> dict[str, Any]:
        body = _capacity_body(product_id, cluster_id, available, after)
        return _json(await self._http.post("/capacity", json=body))  # type: ignore[no-any-return]

    async def reclaim(
        self, instance_id: str, lead_time: float | None = None, after: float | None = None
    ) -> dict[str, Any]:
        body = _reclaim_body(lead_time, after)
        return _json(await self._http.post(f"/instances/{instance_id}/reclaim", json=body))  # type: ignore[no-any-return]

    async def live(self) -> dict[str, Any]:
        return _json(await self._http.get("/live"))  # type: ignore[no-any-return]

    async def set_reclaim_lead(self, seconds: float) -> dict[str, Any]:
        body = {"reclaimLeadTime": seconds}
        return _json(await self._http.post("/config", json=body))  # type: ignore[no-any-return]

    async def fail(
        self, instance_id: str, state: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        body = _fail_body(state, message)
        return _json(await self._http.post(f"/instances/{instance_id}/fail", json=body))  # type: ignore[no-any-return]

    async def set_price(
        self, product_id: str, price: int | None = None, spot_price: int | None = None
    ) -> dict[str, Any]:
        body = {"price": price, "spotPrice": spot_price}
        return _json(await self._http.post(f"/products/{product_id}/price", json=body))  # type: ignore[no-any-return]

    async def set_utilization(self, instance_id: str, percent: float) -> dict[str, Any]:
        body = {"gpuUtilization": percent}
        return _json(await self._http.post(f"/instances/{instance_id}/utilization", json=body))  # type: ignore[no-any-return]

    async def stats(self) -> dict[str, Any]:
        return _json(await self._http.get("/stats"))  # type: ignore[no-any-return]

    async def instances(self) -> list[dict[str, Any]]:
        return _json(await self._http.get("/instances"))["instances"]  # type: ignore[no-any-return]
