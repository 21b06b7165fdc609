"""The pages: the fleet (`/`), one instance, and the form to create one from the offers.

Each page has a fragment route (`/ui/fleet`, `/ui/instances/{id}/panel`) that htmx fetches again
when the event stream says something changed, so the page updates without a reload. All data
comes from the same use cases as the API (`services`), rendered views as the API answers them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request, Response

from novita_manager.dashboard import catalogue
from novita_manager.dashboard.web import current_session, render, runtime_of
from novita_manager.domain.statuses import Status
from novita_manager.errors import ApiError
from novita_manager.services import events, queries
from novita_manager.services.webhooks import list_deliveries

router = APIRouter(include_in_schema=False)
FLEET_LIMIT = 200  # instances on one page of the fleet (newest first)
STATUSES = [status.value for status in Status]


def _filters(request: Request) -> dict[str, str]:
    """The fleet's filters from the query string, unknown values dropped."""
    params = request.query_params
    chosen = {
        "status": params.get("status", ""),
        "name": params.get("name", "")[:100],
        "region": params.get("region", "")[:100],
        "billingMode": params.get("billingMode", ""),
    }
    if chosen["status"] not in STATUSES:
        chosen["status"] = ""
    if chosen["billingMode"] not in ("spot", "onDemand"):
        chosen["billingMode"] = ""
    return chosen


async def fleet_context(request: Request) -> dict[str, Any]:
    filters = _filters(request)
    status = Status(filters["status"]) if filters["status"] else None
    page = orjson.loads(
        await queries.list_instances_json(
            runtime_of(request),
            status=status,
            name=filters["name"] or None,
            limit=FLEET_LIMIT,
            offset=0,
        )
    )
    instances = [
        view
        for view in page["instances"]
        if (not filters["region"] or filters["region"].lower() in str(view["region"]).lower())
        and (not filters["billingMode"] or view["billingMode"] == filters["billingMode"])
    ]
    running = [view for view in instances if view["status"] == "running"]
    costs = [view["costToDate"] for view in instances if view.get("costToDate") is not None]
    query = urlencode({key: value for key, value in filters.items() if value})
    return {
        "last_event": await events.newest_id(runtime_of(request).db),
        "instances": instances,
        "total": page["total"],
        "limit": FLEET_LIMIT,
        "filters": filters,
        "query": query,
        "statuses": STATUSES,
        "summary": {
            "shown": len(instances),
            "running": len(running),
            "spend": sum(view["pricePerHour"] or 0 for view in running),
            "cost": sum(costs) if costs else None,
        },
    }


@router.get("/")
async def fleet_page(request: Request) -> Response:
    session = current_session(request)
    return render(request, "fleet.html", await fleet_context(request), session)


@router.get("/ui/fleet")
async def fleet_fragment(request: Request) -> Response:
    session = current_session(request)
    context = await fleet_context(request)
    response = render(request, "fleet_table.html", context, session)
    if request.headers.get("HX-Trigger") == "filters":  # the address bar shows the filters
        response.headers["HX-Push-Url"] = "/?" + context["query"] if context["query"] else "/"
    return response


async def instance_context(request: Request, instance_id: str) -> dict[str, Any]:
    """Everything the instance page shows; raises InstanceNotFound."""
    runtime = runtime_of(request)
    view = orjson.loads(await queries.get_instance_json(runtime, instance_id))
    operations = await queries.list_operations(runtime, view["id"])
    deliveries = await list_deliveries(runtime.db, view["id"])
    history = await catalogue.history(runtime, view["id"])
    return {
        "last_event": await events.newest_id(runtime.db),
        "instance": view,
        "operations": operations.operations,
        "deliveries": deliveries.deliveries,
        "history": history,
        "pending_delivery": any(d.status == "pending" for d in deliveries.deliveries),
        "error": None,
    }


async def instance_response(
    request: Request, instance_id: str, template: str, error: str | None = None, status: int = 200
) -> Response:
    session = current_session(request)
    try:
        context = await instance_context(request, instance_id)
    except ApiError as missing:
        context = {"message": missing.message, "status_code": missing.status_code}
        return render(request, "error.html", context, session, status_code=missing.status_code)
    context["error"] = error
    return render(request, template, context, session, status_code=status)


@router.get("/ui/instances/{instance_id}")
async def instance_page(request: Request, instance_id: str) -> Response:
    return await instance_response(request, instance_id[:100], "instance.html")


@router.get("/ui/instances/{instance_id}/panel")
async def instance_fragment(request: Request, instance_id: str) -> Response:
    return await instance_response(request, instance_id[:100], "instance_panel.html")


async def new_context(request: Request, form: dict[str, str] | None = None) -> dict[str, Any]:
    params = request.query_params
    runtime = runtime_of(request)
    chosen = {
        "name": "",
        "productName": params.get("productName", ""),
        "region": params.get("region", runtime.settings.default_region),
        "billingMode": params.get("billingMode", "spot"),
        "templateId": params.get("templateId", ""),
        "gpuNum": params.get("gpuNum", "1"),
        "rootfsSize": "60",
        "webhookUrl": "",
    }
    chosen.update(form or {})
    offers, offers_error = await catalogue.offers(runtime, chosen["billingMode"])
    templates = await catalogue.templates(runtime)
    return {
        "form": chosen,
        "offers": offers,
        "offers_error": offers_error,
        "templates": templates,
        "errors": [],
    }


@router.get("/ui/new")
async def new_page(request: Request) -> Response:
    session = current_session(request)
    return render(request, "new.html", await new_context(request), session)
