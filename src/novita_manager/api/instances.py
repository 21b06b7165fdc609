"""The instances API (CONTRACT.md "Instances"): thin handlers over the use cases in
`services.creation`, `services.operations` and `services.queries`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.routing import APIRoute

from novita_manager.api.deps import get_runtime
from novita_manager.api.openapi import error_responses
from novita_manager.domain.statuses import Operation, Status
from novita_manager.domain.views import (
    CreateInstanceResponse,
    InstanceList,
    InstanceView,
    OperationRequestList,
    OperationResponse,
)
from novita_manager.services import creation, operations, queries
from novita_manager.services.inputs import CreateInstanceBody, OperationBody, OperationByNameBody
from novita_manager.services.runtime import Runtime

router = APIRouter(prefix="/api/instances", tags=["instances"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.post(
    "",
    status_code=201,
    response_model=CreateInstanceResponse,
    responses=error_responses(400, 422, 502),
    summary="Create a managed GPU instance",
    description="Picks the cheapest offer, creates the instance from the template, starts it and "
    "watches it until it runs; the webhook gets `instance.running` or `instance.failed`. The "
    "work continues in the background and survives restarts.",
)
async def create_instance(
    body: CreateInstanceBody,
    response: Response,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255),
    ] = None,
) -> CreateInstanceResponse:
    created = await creation.create_instance(runtime, body, idempotency_key)
    response.status_code = created.status_code
    response.headers["Location"] = f"/api/instances/{created.instance_id}"
    # The body is stored with the Idempotency-Key and replayed as it was first answered.
    return CreateInstanceResponse.model_validate(created.body)


@router.get(
    "",
    response_model=InstanceList,
    responses=error_responses(400),
    summary="List managed instances, newest first",
    description="Deleted instances are left out unless `status=deleted` is asked for. `name` "
    "matches case-insensitively anywhere in the name.",
)
async def list_instances(
    runtime: RuntimeDep,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    name: Annotated[str | None, Query(max_length=100, description="Name contains.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    body = await queries.list_instances_json(
        runtime, status=status, name=name, limit=limit, offset=offset
    )
    return Response(body, media_type="application/json")


async def _by_name(
    runtime: Runtime, body: OperationByNameBody, operation: Operation
) -> OperationResponse:
    row = await queries.find_by_name(runtime, body.instanceName)
    return await operations.request_operation(runtime, row, operation, body.webhookUrl)


@router.post(
    "/start",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Start an instance by name",
)
async def start_by_name(body: OperationByNameBody, runtime: RuntimeDep) -> OperationResponse:
    return await _by_name(runtime, body, Operation.START)


@router.post(
    "/stop",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Stop an instance by name",
)
async def stop_by_name(body: OperationByNameBody, runtime: RuntimeDep) -> OperationResponse:
    return await _by_name(runtime, body, Operation.STOP)


@router.post(
    "/delete",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Delete an instance by name",
)
async def delete_by_name(body: OperationByNameBody, runtime: RuntimeDep) -> OperationResponse:
    return await _by_name(runtime, body, Operation.DELETE)


class PathOnlyRoute(APIRoute):
    """A route whose endpoint takes its path parameters (strings, as routed) and the runtime,
    called without FastAPI's per-request dependency solving: for `GET /api/instances/{id}`, the
    most frequent request, that machinery was a tenth of its CPU (issue 15's profile). The
    declaration (and so the OpenAPI document) is the usual one; nothing else is read from the
    request, so there is nothing to validate beyond what the router matched."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        others = [*dependant.query_params, *dependant.header_params, *dependant.cookie_params]
        if others or dependant.body_params or len(dependant.dependencies) > 1:
            raise TypeError(f"{self.path}: path parameters and the runtime only")
        call = self.endpoint

        async def handler(request: Request) -> Response:
            runtime = request.app.state.runtime  # what `get_runtime` gives
            response: Response = await call(**request.path_params, runtime=runtime)
            return response

        return handler


async def get_instance(instanceId: str, runtime: RuntimeDep) -> Response:
    # Served as the stored row rendered once (services/queries.get_instance_json): the same
    # fields as InstanceView without validating them again on the way out.
    body = await queries.get_instance_json(runtime, instanceId)
    return Response(body, media_type="application/json")


router.add_api_route(
    "/{instanceId}",
    get_instance,
    methods=["GET"],
    response_model=InstanceView,
    responses=error_responses(400, 404),
    summary="Get one instance (by our id or its Novita id)",
    description="Answers from the service's database, so it works while Novita is down; "
    "`stale` is true when Novita could not be reached recently.",
    route_class_override=PathOnlyRoute,
)


@router.get(
    "/{instanceId}/operations",
    response_model=OperationRequestList,
    responses=error_responses(400, 404),
    summary="The instance's start/stop/delete requests and their outcomes, oldest first",
    description="Every request answered 202 is listed with its outcome: `succeeded`, `failed`, "
    "`superseded` (a later delete, or a stop during a start) or `refused` (it no longer applied "
    "when its turn came), with the reason.",
)
async def list_operations(instanceId: str, runtime: RuntimeDep) -> OperationRequestList:
    return await queries.list_operations(runtime, instanceId)


async def _operate(
    runtime: Runtime, instance_id: str, body: OperationBody | None, operation: Operation
) -> OperationResponse:
    row = await queries.find_instance(runtime, instance_id)
    webhook_url = body.webhookUrl if body is not None else None
    return await operations.request_operation(runtime, row, operation, webhook_url)


@router.post(
    "/{instanceId}/start",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Start a stopped instance",
)
async def start_instance(
    instanceId: str, runtime: RuntimeDep, body: OperationBody | None = None
) -> OperationResponse:
    return await _operate(runtime, instanceId, body, Operation.START)


@router.post(
    "/{instanceId}/stop",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Stop a running instance",
)
async def stop_instance(
    instanceId: str, runtime: RuntimeDep, body: OperationBody | None = None
) -> OperationResponse:
    return await _operate(runtime, instanceId, body, Operation.STOP)


@router.delete(
    "/{instanceId}",
    status_code=202,
    response_model=OperationResponse,
    responses=error_responses(400, 404, 409),
    summary="Delete an instance (on Novita too)",
)
async def delete_instance(
    instanceId: str, runtime: RuntimeDep, body: OperationBody | None = None
) -> OperationResponse:
    return await _operate(runtime, instanceId, body, Operation.DELETE)
