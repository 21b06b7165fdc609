"""The simulator's FastAPI app: Novita's v1 surface under `/gpu-instance/openapi/v1`.

Routes only translate HTTP to engine calls; answers are built as plain JSON (no response
models), because the simulator must never be the bottleneck of a benchmark. GETs need no
Content-Type; POST bodies are parsed leniently, as JSON whatever the header says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from novita_manager import __version__
from novita_manager.simulator.config import API_PREFIX, SimulatorConfig
from novita_manager.simulator.control import control_router
from novita_manager.simulator.engine import Simulator
from novita_manager.simulator.errors import SimulatorError, invalid_param
from novita_manager.simulator.middleware import V1Gate
from novita_manager.simulator.responses import error_response, json_response
from novita_manager.simulator.state import SimulatorState


def _engine(request: Request) -> Simulator:
    state: SimulatorState = request.app.state.simulator
    return state.engine


async def read_json(request: Request) -> Any:
    """The JSON body, or None when empty; 400 VALIDATOR_PARAM when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid_param("body", "is not valid JSON") from None


async def _instance_id(request: Request) -> str:
    body = await read_json(request)
    value = body.get("instanceId") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise invalid_param("instanceId", "is required")
    return value


def _v1_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/clusters")
    async def clusters(request: Request) -> Response:
        return json_response(_engine(request).clusters())

    @router.get("/products")
    async def products(
        request: Request,
        cluster_id: Annotated[str | None, Query(alias="clusterId")] = None,
        gpu_num: Annotated[int | None, Query(alias="gpuNum")] = None,
        product_name: Annotated[str | None, Query(alias="productName")] = None,
        billing_method: Annotated[str | None, Query(alias="billingMethod")] = None,
        min_cpu_per_gpu: Annotated[int | None, Query(alias="minCpuPerGpu")] = None,
        min_memory_per_gpu: Annotated[int | None, Query(alias="minMemoryPerGpu")] = None,
        min_rootfs_size: Annotated[int | None, Query(alias="minRootFSSize")] = None,
    ) -> Response:
        return json_response(
            _engine(request).products(
                cluster_id,
                gpu_num,
                product_name,
                billing_method,
                min_cpu_per_gpu,
                min_memory_per_gpu,
                min_rootfs_size,
            )
        )

    @router.get("/templates")
    async def templates(
        request: Request,
        page_num: Annotated[int | None, Query(alias="pageNum")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        name: str | None = None,
        channel: str | None = None,
        type_: Annotated[str | None, Query(alias="type")] = None,
    ) -> Response:
        return json_response(_engine(request).templates(page_num, page_size, name, channel, type_))

    @router.get("/template")
    async def template(
        request: Request, template_id: Annotated[str | None, Query(alias="templateId")] = None
    ) -> Response:
        return json_response(_engine(request).template(template_id))

    @router.get("/repository/auths")
    async def repository_auths(request: Request) -> Response:
        return json_response(_engine(request).repository_auths())

    @router.get("/gpu/instances")
    async def list_instances(
        request: Request,
        page_num: Annotated[int | None, Query(alias="pageNum")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        name: str | None = None,
        status: str | None = None,
        product_name: Annotated[str | None, Query(alias="productName")] = None,
    ) -> Response:
        engine = _engine(request)
        body = engine.list_instances_bytes(page_num, page_size, name, status, product_name)
        return Response(body, media_type="application/json")

    @router.get("/gpu/instance")
    async def get_instance(
        request: Request, instance_id: Annotated[str | None, Query(alias="instanceId")] = None
    ) -> Response:
        if not instance_id:
            raise invalid_param("instanceId", "is required")
        return Response(_engine(request).get_bytes(instance_id), media_type="application/json")

    @router.get("/metrics/gpu/instance")
    async def gpu_metrics(
        request: Request,
        instance_id: Annotated[str | None, Query(alias="instanceId")] = None,
        start_time: Annotated[float | None, Query(alias="startTime")] = None,
        end_time: Annotated[float | None, Query(alias="endTime")] = None,
        interval: float | None = None,
    ) -> Response:
        if not instance_id:
            raise invalid_param("instanceId", "is required")
        engine = _engine(request)
        return json_response(engine.gpu_metrics(instance_id, start_time, end_time, interval))

    @router.post("/gpu/instance/create")
    async def create(request: Request) -> Response:
        return json_response(_engine(request).create(await read_json(request)))

    actions: dict[str, Callable[[Simulator, str], dict[str, str]]] = {
        "start": Simulator.start,
        "stop": Simulator.stop,
        "restart": Simulator.restart,
        "delete": Simulator.delete,
        "migrate": Simulator.migrate,
    }

    def add_action(name: str, action: Callable[[Simulator, str], dict[str, str]]) -> None:
        async def endpoint(request: Request) -> Response:
            return json_response(action(_engine(request), await _instance_id(request)))

        router.add_api_route(f"/gpu/instance/{name}", endpoint, methods=["POST"], name=name)

    for name, action in actions.items():
        add_action(name, action)
    return router


def _install_error_handlers(app: FastAPI) -> None:
    async def simulator_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SimulatorError)
        return error_response(exc)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        field = str(first.get("loc", ("", "request"))[-1])
        return error_response(invalid_param(field, str(first.get("msg", "is invalid"))))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        reason = "RESOURCE_NOT_FOUND" if exc.status_code == 404 else "REQUEST"
        return error_response(SimulatorError(exc.status_code, reason, str(exc.detail)))

    app.add_exception_handler(SimulatorError, simulator_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def create_simulator_app(
    config: SimulatorConfig | None = None, clock: Callable[[], float] = time.time
) -> FastAPI:
    """A Novita v1 look-alike with its `/_simulator` control API; `clock` is for unit tests."""
    config = config or SimulatorConfig()
    state = SimulatorState(config, clock)
    app = FastAPI(
        title="novita-manager simulator",
        version=__version__,
        description=(
            "Imitates Novita's GPU-instance API v1 (quirks included) with fault injection, so "
            "the service can be developed, tested and benchmarked without a Novita account."
        ),
        docs_url="/_simulator/docs",
        openapi_url="/_simulator/openapi.json",
        redoc_url=None,
    )
    app.state.simulator = state
    app.include_router(_v1_router())
    app.include_router(control_router())
    _install_error_handlers(app)
    app.add_middleware(V1Gate, state=state)
    return app
