"""Log in with one of API_KEYS, log out. The key is checked and forgotten, never rendered."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response

from novita_manager.dashboard.session import COOKIE_NAME
from novita_manager.dashboard.web import (
    FormRefused,
    checked_form,
    dashboard_of,
    read_form,
    redirect,
    render,
    same_origin,
    secure,
    set_session_cookie,
)
from novita_manager.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)


def _next_page(value: str | None) -> str:
    """Only a path of this dashboard (never another site) is followed after the login."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and all(" " < char < "\x7f" for char in value)  # no control character, no space
    ):
        return value
    return "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/ui/login")
async def login_page(request: Request, next: str = "/") -> Response:
    if not dashboard_of(request).sessions.login_required:
        return redirect(request, "/")
    return render(request, "login.html", {"next": _next_page(next), "error": None}, None)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    dashboard = dashboard_of(request)
    if not same_origin(request):  # no login CSRF: a page elsewhere cannot log you in
        raise FormRefused
    form = await read_form(request)
    next_page = _next_page(form.get("next"))
    if not dashboard.sessions.login_required:
        return redirect(request, next_page)
    address = _client(request)
    wait = dashboard.limiter.retry_after(address)
    if wait > 0:
        error = f"Too many failed logins from this address; try again in {math.ceil(wait)} s."
        return render(
            request, "login.html", {"next": next_page, "error": error}, None, status_code=429
        )
    key_id = dashboard.sessions.match(form.get("apiKey", ""))
    if key_id is None:
        dashboard.limiter.record_failure(address)
        log.info("dashboard_login_refused", client=address)
        context = {"next": next_page, "error": "That key is not one of API_KEYS."}
        return render(request, "login.html", context, None, status_code=401)
    log.info("dashboard_login", client=address)
    response = redirect(request, next_page)
    set_session_cookie(request, response, dashboard.sessions.new(key_id))
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    response = redirect(
        request, "/ui/login" if dashboard_of(request).sessions.login_required else "/"
    )
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return secure(response)
