"""What the dashboard's forms do: create, start/stop/delete, redeliver a webhook.

Each POST is checked (session, CSRF token, origin: `web.checked_form`), then calls the same use
case as the API, so the same rules apply and the same history is written. A refusal (400, 409)
is shown on the page it came from, with the service's message; success redirects (303).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from novita_manager.dashboard.pages import instance_response, new_context
from novita_manager.dashboard.web import checked_form, redirect, render, runtime_of
from novita_manager.domain.statuses import Operation
from novita_manager.errors import ApiError
from novita_manager.services import creation, operations, queries
from novita_manager.services.inputs import CreateInstanceBody
from novita_manager.services.webhooks import redeliver

router = APIRouter(include_in_schema=False)

CREATE_FIELDS = (
    "name",
    "productName",
    "templateId",
    "gpuNum",
    "rootfsSize",
    "region",
    "billingMode",
    "webhookUrl",
)
OPERATIONS = {"start": Operation.START, "stop": Operation.STOP, "delete": Operation.DELETE}


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in problem['loc']) or 'form'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    ]


@router.post("/ui/instances")
async def create(request: Request) -> Response:
    session, form = await checked_form(request)
    fields = {name: form[name].strip() for name in CREATE_FIELDS if form.get(name, "").strip()}
    try:
        # Form fields are text: numbers are read in lax mode (the API itself is strict JSON).
        body = CreateInstanceBody.model_validate(fields, strict=False)
        created = await creation.create_instance(runtime_of(request), body, None)
    except (ValidationError, ApiError) as refused:
        context = await new_context(request, {key: form.get(key, "") for key in CREATE_FIELDS})
        if isinstance(refused, ValidationError):
            context["errors"] = _problems(refused)
            status = 400
        else:
            details = refused.details if isinstance(refused.details, list) else []
            context["errors"] = [refused.message] + [
                f"{item.get('field')}: {item.get('message')}"
                for item in details
                if isinstance(item, dict) and item.get("message") != refused.message
            ]
            status = refused.status_code
        return render(request, "new.html", context, session, status_code=status)
    return redirect(request, f"/ui/instances/{created.instance_id}")


@router.post("/ui/instances/{instance_id}/{action}")
async def operate(
    request: Request, instance_id: str, action: Literal["start", "stop", "delete"]
) -> Response:
    await checked_form(request)
    runtime = runtime_of(request)
    try:
        row = await queries.find_instance(runtime, instance_id[:100])
        await operations.request_operation(runtime, row, OPERATIONS[action], None)
    except ApiError as refused:
        return await instance_response(
            request,
            instance_id[:100],
            "instance.html",
            error=f"{action.capitalize()} refused: {refused.message}",
            status=refused.status_code,
        )
    return redirect(request, f"/ui/instances/{row.id}")


@router.post("/ui/webhooks/{delivery_id}/redeliver")
async def redeliver_webhook(request: Request, delivery_id: str) -> Response:
    _, form = await checked_form(request)
    runtime = runtime_of(request)
    instance_id = form.get("instanceId", "")[:100]
    try:
        view = await redeliver(runtime.db, runtime.settings, delivery_id[:100])
    except ApiError as refused:
        return await instance_response(
            request,
            instance_id,
            "instance.html",
            error=f"Redelivery refused: {refused.message}",
            status=refused.status_code,
        )
    runtime.webhook_pipeline.hint()
    return redirect(request, f"/ui/instances/{view.instanceId}#webhooks")
