"""The `/_simulator` control API (no auth; not part of Novita's surface).

Tests, the demo and benchmarks use it to reset state, script faults, limit capacity, reclaim or
fail instances, move the simulated clock forward (`/clock`), choose the readings of Novita's API
the simulator plays (`/profile`) and read call counts and billing.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from novita_manager.simulator.errors import invalid_param
from novita_manager.simulator.faults import Fault
from novita_manager.simulator.responses import json_response
from novita_manager.simulator.state import SimulatorState

PREFIX = "/_simulator"


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid_param("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_param("body", "must be a JSON object")
    return body


def _opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid_param(key, "must be a boolean")
    return value


def _opt_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise invalid_param(key, "must be a number")
    return None if value is None else float(value)


def _profile_args(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """`profile` (a name) and `readings` (an object of overrides) of a control body."""
    profile, readings = body.get("profile"), body.get("readings")
    if profile is not None and not isinstance(profile, str):
        raise invalid_param("profile", "must be a string")
    if readings is not None and not isinstance(readings, dict):
        raise invalid_param("readings", "must be an object of reading: value")
    return profile, readings


def control_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @router.post("/reset")
    async def reset(request: Request) -> Response:
        body = await _body(request)
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise invalid_param("seed", "must be an integer")
        profile, readings = _profile_args(body)
        state = _state(request)
        state.reset(
            seed=seed,
            autostart=_opt_bool(body, "autostart"),
            time_scale=_opt_number(body, "timeScale"),
            profile=profile,
            readings=readings,
        )
        return json_response(state.config_json())

    @router.get("/profile")
    async def get_profile(request: Request) -> Response:
        return json_response(_state(request).profile_json())

    @router.post("/profile")
    async def set_profile(request: Request) -> Response:
        # Body: {"profile": NAME, "readings": {reading: value}}; both optional. The readings
        # are the named profile's (default: the current one) with the overrides on top.
        profile, readings = _profile_args(await _body(request))
        state = _state(request)
        state.engine.set_profile(profile, readings)
        return json_response(state.profile_json())

    @router.get("/config")
    async def get_config(request: Request) -> Response:
        return json_response(_state(request).config_json())

    @router.post("/config")
    async def set_config(request: Request) -> Response:
        body = await _body(request)
        state = _state(request)
        state.engine.configure(
            autostart=_opt_bool(body, "autostart"),
            time_scale=_opt_number(body, "timeScale"),
            reclaim_lead=_opt_number(body, "reclaimLeadTime"),
        )
        return json_response(state.config_json())

    @router.get("/clock")
    async def get_clock(request: Request) -> Response:
        return json_response(_state(request).clock_json())

    @router.post("/clock")
    async def advance_clock(request: Request) -> Response:
        # Body: {"advance": simulated seconds (>= 0, scaled by the time scale)}: every plan,
        # bill and schedule moves on at once (engine.Simulator.advance_clock).
        advance = _opt_number(await _body(request), "advance")
        if advance is None:
            raise invalid_param("advance", "is required")
        state = _state(request)
        state.engine.advance_clock(advance)
        return json_response(state.clock_json())

    @router.get("/faults")
    async def get_faults(request: Request) -> Response:
        return json_response(_state(request).faults.to_json())

    @router.post("/faults")
    async def set_faults(request: Request) -> Response:
        body = await _body(request)
        raw = body.get("faults", [])
        if not isinstance(raw, list):
            raise invalid_param("faults", "must be an array")
        replace = body.get("replace", True)
        state = _state(request)
        state.faults.set([Fault.parse(item) for item in raw], replace=replace is not False)
        return json_response(state.faults.to_json())

    @router.delete("/faults")
    async def clear_faults(request: Request) -> Response:
        state = _state(request)
        state.faults.set([])
        return json_response(state.faults.to_json())

    @router.post("/capacity")
    async def set_capacity(request: Request) -> Response:
        body = await _body(request)
        available = body.get("available")
        if available is not None and (
            isinstance(available, bool) or not isinstance(available, int)
        ):
            raise invalid_param("available", "must be an integer or null")
        engine = _state(request).engine
        after = _opt_number(body, "after")  # simulated seconds from now: a scheduled change
        if after is not None and after > 0:
            engine.schedule_capacity(body.get("productId"), body.get("clusterId"), available, after)
        else:
            engine.set_capacity(body.get("productId"), body.get("clusterId"), available)
        limits = [
            {"productId": pid, "clusterId": cid, "available": left}
            for (pid, cid), left in engine.capacity.items()
        ]
        return json_response({"capacity": limits})

    @router.post("/instances/{instance_id}/reclaim")
    async def reclaim(request: Request, instance_id: str) -> Response:
        # Body (optional): `leadTime` (simulated seconds of notice; default the configured
        # reclaimLeadTime), `after` (simulated seconds from now: a scheduled reclaim).
        body = await _body(request)
        engine = _state(request).engine
        lead, after = _opt_number(body, "leadTime"), _opt_number(body, "after")
        return json_response(engine.reclaim(instance_id, lead=lead, after=after))

    @router.get("/live")
    async def live(request: Request) -> Response:
        # Live instances per marker now and the most ever at once (spot_life.py).
        return json_response(_state(request).engine.live_json())

    @router.post("/instances/{instance_id}/fail")
    async def fail(request: Request, instance_id: str) -> Response:
        body = await _body(request)
        state, message = body.get("state"), body.get("message")
        for key, value in (("state", state), ("message", message)):
            if value is not None and not isinstance(value, str):
                raise invalid_param(key, "must be a string")
        return json_response(_state(request).engine.fail(instance_id, state, message))

    @router.post("/products/{product_id}/price")
    async def set_price(request: Request, product_id: str) -> Response:
        # Body: {"price": int, "spotPrice": int} in 1/100000 USD per GPU-hour, either optional.
        body = await _body(request)
        prices = {}
        for key in ("price", "spotPrice"):
            value = body.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise invalid_param(key, "must be a non-negative integer")
            prices[key] = value
        engine = _state(request).engine
        return json_response(engine.set_price(product_id, prices["price"], prices["spotPrice"]))

    @router.post("/instances/{instance_id}/utilization")
    async def set_utilization(request: Request, instance_id: str) -> Response:
        # Body: {"gpuUtilization": percent}: what the instance reports from now on.
        value = _opt_number(await _body(request), "gpuUtilization")
        if value is None:
            raise invalid_param("gpuUtilization", "is required")
        return json_response(_state(request).engine.set_utilization(instance_id, value))

    @router.get("/stats")
    async def stats(request: Request) -> Response:
        state = _state(request)
        return json_response(
            {"calls": state.stats.to_json(), "instancesCreated": state.engine.instances_created}
        )

    @router.get("/instances")
    async def instances(request: Request) -> Response:
        # `statusSince`: when the current status began (epoch seconds of the simulator's clock),
        # so a benchmark can measure the lag from upstream `running` to the service's webhook.
        engine = _state(request).engine
        items = engine.all_instances()
        now = engine.clock()
        for body in items:
            body["statusSince"] = round(engine.instances[body["id"]]._position(now)[1], 6)
        return json_response({"instances": items})

    return router
