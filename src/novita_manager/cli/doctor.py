"""`novita-manager doctor`: read-only checks of the configured Novita account before real use.

It reads NOVITA_API_KEY and NOVITA_API_BASE_URL like `serve` does (environment and .env), runs
the probes of `novita/probes.py` (GETs only: nothing is created, started, stopped or deleted) and
prints one line per check. The exit code lets a script refuse to start the service on an account
where something it relies on does not hold; the readings (open points of Novita's API) never fail
the run, because the service is built to survive each of them.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from novita_manager.config import Settings
    from novita_manager.novita.probe_report import Report


class DoctorExitCode(IntEnum):
    OK = 0  # every check the service relies on holds (readings are reported, never fatal)
    FAILED = 1  # a check failed: key refused, region unknown, no offer for the default mode ...
    CONFIGURATION = 2  # invalid configuration or usage
    UNAVAILABLE = 5  # Novita answered only 429/5xx (try later)
    UNREACHABLE = 6  # no answer from Novita at NOVITA_API_BASE_URL


DOCTOR_EPILOG = (
    "Exit codes: 0 every check the service relies on holds; 1 a check failed (key refused, "
    "region unknown, no deployable spot offer in the region, ...); 2 invalid configuration or "
    "usage; 5 Novita answered only with errors (429/5xx): try later; 6 Novita unreachable at "
    "NOVITA_API_BASE_URL."
)

_EXIT = {
    "ok": DoctorExitCode.OK,
    "failed": DoctorExitCode.FAILED,
    "unavailable": DoctorExitCode.UNAVAILABLE,
    "unreachable": DoctorExitCode.UNREACHABLE,
}
_WIDTH = 100


def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON document.")
    ] = False,
    region: Annotated[
        str | None, typer.Option(help="Region to check (default: DEFAULT_REGION).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each Novita answer.", min=0.1)
    ] = 15.0,
) -> None:
    """Check the configured Novita account, read-only, before real use.

    Checks the key, the clusters, the region and its offers, and shows which reading of each
    open point of Novita's API the account has (docs/real-novita.md). Uses NOVITA_API_KEY and
    NOVITA_API_BASE_URL (environment or .env), like `serve`. Only GET requests are sent; the
    API key is never printed.
    """
    from novita_manager.config import load_settings_or_exit
    from novita_manager.logging import configure_logging

    settings = load_settings_or_exit()
    secrets = settings.secret_values()
    # The client logs its calls; keep stdout for the report and stderr quiet unless it matters.
    configure_logging("error", "console", secrets)
    report = asyncio.run(_run(settings, region or settings.default_region, timeout))
    body = report.to_json()
    code = _EXIT[report.outcome]
    body["exitCode"] = int(code)
    text = json.dumps(body, indent=2, ensure_ascii=False) if json_output else render(body)
    for secret in secrets:
        text = text.replace(secret, "***")
    typer.echo(text)
    raise typer.Exit(int(code))


async def _run(settings: Settings, region: str, timeout: float) -> Report:
    from novita_manager.novita.client import NovitaClient
    from novita_manager.novita.prober import HeaderRecorder
    from novita_manager.novita.probes import run_probes
    from novita_manager.upstream_transport import upstream_transport

    recorder = HeaderRecorder(
        upstream_transport(
            settings.novita_api_base_url, timeout=timeout, max_connections=4, keepalive_expiry=2.0
        )
    )
    client = NovitaClient(
        base_url=settings.novita_api_base_url,
        api_key=settings.novita_key,
        timeout=timeout,
        max_retries=1,  # one retry of a 429/5xx/network error; a doctor should answer quickly
        backoff_base=0.5,
        max_concurrency=4,
        transport=recorder,
    )
    async with client:
        return await run_probes(
            client, base_url=settings.novita_api_base_url, region=region, recorder=recorder
        )


def render(body: dict[str, Any]) -> str:
    """The readable report: a header, one line per check with what the service does, a verdict."""
    lines = [f"Novita at {body['baseUrl']}, region {body['region']}", ""]
    if body["unreachable"]:
        lines.append(f"fail  {body['unreachable']}")
    indent = " " * 6
    for check in body["checks"]:
        lines.append(f"{check['status']:<5} {check['id']:<25} {check['observed']}")
        if check["service"]:
            lines += textwrap.wrap(
                f"service: {check['service']}",
                _WIDTH,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
            )
    lines.append("")
    lines.append(_verdict(body))
    return "\n".join(lines)


def _verdict(body: dict[str, Any]) -> str:
    outcome, code = body["outcome"], body["exitCode"]
    if outcome == "ok":
        warned = sum(1 for check in body["checks"] if check["status"] == "warn")
        extra = f" ({warned} warning(s): readings not decided on this account)" if warned else ""
        return f"OK: every check the service relies on holds{extra}. Exit {code}."
    if outcome == "unreachable":
        return f"UNREACHABLE: check NOVITA_API_BASE_URL and the network. Exit {code}."
    if outcome == "unavailable":
        return f"UNAVAILABLE: Novita answered with errors; try again later. Exit {code}."
    failed = [check["id"] for check in body["checks"] if check["status"] == "fail"]
    return f"FAILED: {', '.join(failed)}. Exit {code}."
