"""What every dashboard route shares: its state, the session, CSRF-checked forms, rendering.

Pages are HTML rendered on the server (Jinja2); htmx refreshes parts of them. Every response
carries a strict Content-Security-Policy (scripts and styles only from this service, no inline
code), and every POST must carry the session's CSRF token and, when the browser sends one, an
Origin equal to this service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from novita_manager import __version__
from novita_manager.config import Settings
from novita_manager.dashboard.formatting import FILTERS, actions
from novita_manager.dashboard.session import COOKIE_NAME, LoginLimiter, Session, Sessions

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

PACKAGE = Path(__file__).parent
STATIC_URL = "/ui/static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make forms send `Origin: null`
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class LoginNeeded(Exception):
    """No valid session while API keys are configured: answered with a redirect to the login."""


class FormRefused(Exception):
    """A POST without the session's CSRF token, or from another origin: answered 403."""


@dataclass
class Dashboard:
    settings: Settings
    sessions: Sessions
    limiter: LoginLimiter
    templates: Jinja2Templates

    @classmethod
    def build(cls, settings: Settings) -> Dashboard:
        templates = Jinja2Templates(directory=PACKAGE / "templates")
        templates.env.filters.update(FILTERS)
        templates.env.globals.update(
            actions=actions, static=STATIC_URL, version=__version__, title="novita-manager"
        )
        return cls(
            settings=settings,
            sessions=Sessions([key.get_secret_value() for key in settings.api_keys]),
            limiter=LoginLimiter(settings.auth_failure_limit),
            templates=templates,
        )


def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current_session(request: Request) -> Session:
    """The request's valid session; an open dashboard (no keys) gets a fresh anonymous one."""
    sessions = dashboard_of(request).sessions
    session = sessions.load(request.cookies.get(COOKIE_NAME))
    if session is None:
        if sessions.login_required:
            raise LoginNeeded
        session = sessions.anonymous()
        request.state.new_session = session
    return session


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE_NAME,
        dashboard_of(request).sessions.dump(session),
        max_age=dashboard_of(request).sessions.max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    session: Session | None,
    status_code: int = 200,
) -> Response:
    """A page or fragment with the session's CSRF token in its context."""
    dashboard = dashboard_of(request)
    context = {
        **context,
        "csrf": session.csrf if session else "",
        "login_required": dashboard.sessions.login_required,
    }
    response = dashboard.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    new_session = getattr(request.state, "new_session", None)
    if new_session is not None:
        set_session_cookie(request, response, new_session)
    return secure(response)


def redirect(request: Request, url: str) -> Response:
    """After a POST: htmx follows `HX-Redirect`, a plain form the 303."""
    if request.headers.get("HX-Request") == "true":
        return secure(Response(status_code=204, headers={"HX-Redirect": url}))
    return secure(RedirectResponse(url, status_code=303))


def same_origin(request: Request) -> bool:
    """No Origin (old browsers, same-origin GET-like posts) or one naming this very host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the body limit middleware bounds its size)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


async def checked_form(request: Request) -> tuple[Session, dict[str, str]]:
    """The session and the form of a POST whose CSRF token and origin are right."""
    session = current_session(request)
    form = await read_form(request)
    if not same_origin(request) or not Sessions.csrf_ok(session, form.get("csrf")):
        raise FormRefused
    return session, form
