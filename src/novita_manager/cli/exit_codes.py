"""Exit codes of the command line, one per kind of outcome a script may want to branch on."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from novita_manager.sdk import ServiceError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the instance ended `failed`, or --wait / the demo timed out
    INVALID = 2  # the request was refused as invalid (400, 422), or bad command-line usage
    NOT_FOUND = 3  # 404: no such instance
    CONFLICT = 4  # 409: not allowed in the instance's current state
    UNAVAILABLE = 5  # 429, 5xx: upstream error, circuit open, service trouble; retry later
    UNREACHABLE = 6  # no answer at all: is the service running at that URL?
    UNAUTHORIZED = 7  # 401/403: missing or wrong API key
    INTERRUPTED = 130  # Ctrl-C while waiting: the instance goes on in the background


EPILOG = (
    "Exit codes: 0 ok; 1 the instance failed (or --wait timed out); 2 invalid request "
    "(400/422) or usage; 3 not found (404); 4 conflict: not allowed in the current state (409) "
    "or a name several instances have; 5 upstream or service unavailable (429/5xx); 6 service "
    "unreachable; 7 unauthorized (401/403); 130 interrupted (Ctrl-C during --wait)."
)


def exit_code_for(error: ServiceError) -> ExitCode:
    # Imported here: `serve` imports this module for its exit codes, and the SDK (httpx,
    # pydantic views) is the client commands' (docs/design.md "Memory").
    from novita_manager.sdk import ApiResponseError, ServiceUnreachable
    from novita_manager.sdk.names import AmbiguousName

    if isinstance(error, ServiceUnreachable):
        return ExitCode.UNREACHABLE
    if isinstance(error, AmbiguousName):
        return ExitCode.CONFLICT  # as the API's 409 for an ambiguous name
    if isinstance(error, ApiResponseError):
        status = error.status_code
        if status == 404:
            return ExitCode.NOT_FOUND
        if status == 409:
            return ExitCode.CONFLICT
        if status in (401, 403):
            return ExitCode.UNAUTHORIZED
        if status == 429 or status >= 500:
            return ExitCode.UNAVAILABLE
        return ExitCode.INVALID
    return ExitCode.FAILED


class ServeExitCode(IntEnum):
    """Exit codes of `novita-manager serve` (the client commands above use `ExitCode`)."""

    STOPPED = 0  # stopped by Ctrl-C or SIGTERM after a clean shutdown
    CRASHED = 1  # an unexpected error (a bug: please report it with the log)
    CONFIGURATION = 2  # invalid or missing environment variables (config.load_settings_or_exit)
    SERVER_START = 3  # uvicorn could not start: port in use or not permitted, or the app failed
    DATABASE = 4  # the database cannot be opened or migrated (store.startup.DATABASE_EXIT_CODE)


SERVE_EPILOG = (
    "Exit codes: 0 stopped; 1 unexpected error; 2 invalid configuration (every bad variable is "
    "named); 3 the server could not start (port in use, or the application failed: see the log); "
    "4 the database cannot be opened or migrated (one line says why; LOG_LEVEL=debug adds the "
    "traceback)."
)
