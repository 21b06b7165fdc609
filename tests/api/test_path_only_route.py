"""`PathOnlyRoute` (api/instances.py) calls its endpoint without FastAPI's dependency solving, so
it must refuse, when the app is built, an endpoint that reads anything else from the request."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Query, Response

from novita_manager.api.deps import get_runtime
from novita_manager.api.instances import PathOnlyRoute, router
from novita_manager.services.runtime import Runtime

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def test_get_one_instance_is_a_path_only_route() -> None:
    routes = [r for r in router.routes if getattr(r, "path", "") == "/api/instances/{instanceId}"]
    get = [r for r in routes if "GET" in getattr(r, "methods", set())]
    assert len(get) == 1
    assert isinstance(get[0], PathOnlyRoute)


def test_an_endpoint_with_a_query_parameter_is_refused() -> None:
    async def endpoint(
        instanceId: str, runtime: RuntimeDep, verbose: Annotated[bool, Query()] = False
    ) -> Response:
        return Response()

    with pytest.raises(TypeError, match="path parameters and the runtime only"):
        APIRouter().add_api_route("/x/{instanceId}", endpoint, route_class_override=PathOnlyRoute)


def test_an_endpoint_with_another_dependency_is_refused() -> None:
    async def other() -> int:
        return 1

    async def endpoint(
        instanceId: str, runtime: RuntimeDep, extra: Annotated[int, Depends(other)]
    ) -> Response:
        return Response()

    with pytest.raises(TypeError, match="path parameters and the runtime only"):
        APIRouter().add_api_route("/x/{instanceId}", endpoint, route_class_override=PathOnlyRoute)
