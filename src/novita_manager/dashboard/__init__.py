"""The web dashboard at `/`: the fleet, an instance's page, creating from the offers, live.

Server-rendered (Jinja2 templates in `templates/`) with htmx for partial refreshes and a few
lines of script for the event stream (`static/`, vendored: no build step). A layer beside `api`:
it calls the same use cases in `services` and imports nothing of the API, the engine or the
adapters (.importlinter). Routes live under `/ui/` except the fleet at `/`; none is in the
OpenAPI document. Login with an API key when API_KEYS is set (`session.py`).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles

from novita_manager.config import Settings
from novita_manager.dashboard import actions, live, login, pages
from novita_manager.dashboard.web import (
    PACKAGE,
    STATIC_URL,
    Dashboard,
    FormRefused,
    LoginNeeded,
    redirect,
    secure,
)

STREAM_PATHS = frozenset({live.STREAM_PATH})  # long-lived responses (closed at shutdown)


async def _login_needed(request: Request, _error: Exception) -> Response:
    if request.url.path == live.STREAM_PATH:
        return secure(PlainTextResponse("log in first", status_code=401))
    # Back to the page asked for after the login (a fragment or a form: the fleet).
    target = "/"
    if request.method == "GET" and request.headers.get("HX-Request") != "true":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/ui/login?next={quote(target, safe='/')}")


async def _form_refused(_request: Request, _error: Exception) -> Response:
    message = "This form has expired or did not come from this dashboard: reload the page."
    return secure(PlainTextResponse(message, status_code=403))


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    app.state.dashboard = Dashboard.build(settings)
    app.mount(STATIC_URL, StaticFiles(directory=PACKAGE / "static"), name="dashboard-static")
    for module in (pages, actions, login, live):
        app.include_router(module.router)
    app.add_exception_handler(LoginNeeded, _login_needed)
    app.add_exception_handler(FormRefused, _form_refused)
