"""A cheap reading of GET /gpu/instances pages for the status sync.

The sync lists the whole account every interval; validating a pydantic `Instance` (nested
models, a dozen lenient validators) for every listed instance on every page cost more than the
rest of the sync. `parse_listed_page` reads the body with orjson and keeps only what the sync
uses: the id, the marker env var, and the fields `domain.observations.summarize` reads, each
normalised by the very functions the model uses (`lenient_str`, `lenient_int`, `unix_time`, ...),
so `summarize(listed) == summarize(Instance.model_validate(item))` (tests/novita/test_listed.py
checks it on the simulator's pages under every profile and on odd items).

Leniency is kept exactly: wherever the model could *refuse* a page (an id that is neither text
nor a number, `envs` that is not a list of objects with a key, a connectComponent* `isRunning`
that is not a boolean, ...) or where a reading is unusual, the page is validated by the model
instead and converted, so a page the model refuses is refused the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from novita_manager.http_client import Response
from novita_manager.novita.create_request import MARKER_ENV, marker_of
from novita_manager.novita.models import Instance, InstancePage
from novita_manager.novita.models.base import lenient_int, lenient_str, unix_time

_CONNECT = (
    # (attribute, the aliases the model accepts in order, the fields summarize reads)
    (
        "connect_component_ssh",
        ("connectComponentSSH", "connectComponentSsh", "connect_component_ssh"),
        (("ssh_command", "sshCommand"),),
    ),
    (
        "connect_component_jupyter",
        ("connectComponentJupyter", "connect_component_jupyter"),
        (("address", "address"),),
    ),
    (
        "connect_component_web_terminal",
        ("connectComponentWebTerminal", "connect_component_web_terminal"),
        (("address", "address"),),
    ),
)


class _Unusual(Exception):
    """The item needs the model's own reading (it may refuse it)."""


@dataclass(slots=True)
class ListedInstance:
    """What the status sync reads of a listed instance (attribute names as `Instance`'s, so
    `observations.summarize` reads either)."""

    id: str
    status: str
    marker: str | None
    status_error: dict[str, str | None] | None = None
    cluster_id: str | None = None
    port_mappings: list[dict[str, Any]] = field(default_factory=list)
    connect_component_ssh: dict[str, Any] | None = None
    connect_component_jupyter: dict[str, Any] | None = None
    connect_component_web_terminal: dict[str, Any] | None = None
    spot_status: str | None = None
    spot_reclaim_time: datetime | None = None

    @property
    def has_connection_details(self) -> bool:
        return (
            self.connect_component_ssh is not None
            or self.connect_component_jupyter is not None
            or self.connect_component_web_terminal is not None
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything an observation is made of: equal fingerprints, equal observations."""
        return (
            self.status,
            self.status_error,
            self.cluster_id,
            self.port_mappings,
            self.connect_component_ssh,
            self.connect_component_jupyter,
            self.connect_component_web_terminal,
            self.spot_status,
            self.spot_reclaim_time,
        )

    @classmethod
    def from_model(cls, item: Instance) -> ListedInstance:
        ssh, jupyter = item.connect_component_ssh, item.connect_component_jupyter
        terminal = item.connect_component_web_terminal
        return cls(
            id=item.id,
            status=item.status,
            marker=marker_of(item.envs),
            status_error=(
                None
                if item.status_error is None
                else {"state": item.status_error.state, "message": item.status_error.message}
            ),
            cluster_id=item.cluster_id,
            port_mappings=[
                {"port": m.port, "endpoint": m.endpoint, "type": m.type} for m in item.port_mappings
            ],
            connect_component_ssh=None if ssh is None else {"ssh_command": ssh.ssh_command},
            connect_component_jupyter=(None if jupyter is None else {"address": jupyter.address}),
            connect_component_web_terminal=(
                None if terminal is None else {"address": terminal.address}
            ),
            spot_status=item.spot_status,
            spot_reclaim_time=item.spot_reclaim_time,
        )


@dataclass(slots=True)
class ListedPage:
    """One page of GET /gpu/instances as the sync reads it (see `InstancePage`)."""

    instances: list[ListedInstance]
    total: int = 0
    total_reported: bool = True


def _first(raw: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw:
            return raw[name]
    return None


def _marker(envs: Any) -> str | None:
    if envs is None or envs == "":
        return None
    if not isinstance(envs, list):
        raise _Unusual
    found = None
    for env in envs:
        if not isinstance(env, dict) or "key" not in env:
            raise _Unusual  # the model refuses an env without a key
        if found is None and env["key"] is not None and str(env["key"]) == MARKER_ENV:
            value = env.get("value")
            found = None if value is None or str(value) == "" else str(value)
    return found


def _component(value: Any, reads: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    if not isinstance(value, dict) or not value:
        return None
    for running in ("isRunning", "is_running"):
        if running in value and not (value[running] is None or isinstance(value[running], bool)):
            raise _Unusual  # the model's bool reading decides (it may refuse)
    return {name: lenient_str(_first(value, alias, name)) for name, alias in reads}


def _status_error(value: Any) -> dict[str, str | None] | None:
    if not isinstance(value, dict) or not any(v not in (None, "") for v in value.values()):
        return None
    return {"state": lenient_str(value.get("state")), "message": lenient_str(value.get("message"))}


def _ports(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        {
            "port": lenient_int(item.get("port")),
            "endpoint": lenient_str(item.get("endpoint")),
            "type": lenient_str(item.get("type")),
        }
        for item in value
        if isinstance(item, dict) and lenient_int(item.get("port"))
    ]


def listed_instance(raw: Any) -> ListedInstance:
    """The sync's reading of one listed item; `_Unusual` when the model must read it."""
    if not isinstance(raw, dict):
        raise _Unusual
    ident = raw.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str):
        raise _Unusual
    status = raw.get("status")
    connect = {name: _component(_first(raw, *aliases), reads) for name, aliases, reads in _CONNECT}
    return ListedInstance(
        id=ident,
        status="" if status is None else str(status),
        marker=_marker(raw.get("envs")),
        status_error=_status_error(_first(raw, "statusError", "status_error")),
        cluster_id=lenient_str(_first(raw, "clusterId", "cluster_id")),
        port_mappings=_ports(_first(raw, "portMappings", "port_mappings")),
        connect_component_ssh=connect["connect_component_ssh"],
        connect_component_jupyter=connect["connect_component_jupyter"],
        connect_component_web_terminal=connect["connect_component_web_terminal"],
        spot_status=lenient_str(_first(raw, "spotStatus", "spot_status")),
        spot_reclaim_time=unix_time(_first(raw, "spotReclaimTime", "spot_reclaim_time")),
    )


def read_listed_page(data: Any) -> ListedPage:
    """A decoded page body as the sync reads it (the model's reading when anything is unusual)."""
    if not isinstance(data, dict):
        raise TypeError("expected an object with instances and total")
    items = data.get("instances")
    try:
        if "totalReported" in data or "total_reported" in data:
            raise _Unusual
        if items is None or items == "":
            items = []
        if not isinstance(items, list):
            raise _Unusual
        listed = [listed_instance(item) for item in items]
    except _Unusual:
        page = InstancePage.model_validate(data)  # refuses what the model refuses
        return ListedPage(
            [ListedInstance.from_model(item) for item in page.instances],
            page.total,
            page.total_reported,
        )
    total = lenient_int(data.get("total"))
    if total is None:
        return ListedPage(listed, len(items), False)
    return ListedPage(listed, total, True)


def parse_listed_page(response: Response) -> ListedPage:
    return read_listed_page(orjson.loads(response.content))  # ValueError: "malformed"


def read_listed_instance(data: Any) -> ListedInstance:
    """GET /gpu/instance's object (bare, or under `instance` as `parse_instance` accepts it)
    read as a listed item. Where the body is only summarised (a running instance's details,
    the sync's fallback GETs), the model's full validation cost 54 us a body against 21 us;
    an unusual body is still the model's to read or refuse."""
    if isinstance(data, dict) and "id" not in data and isinstance(data.get("instance"), dict):
        data = data["instance"]
    try:
        return listed_instance(data)
    except _Unusual:
        return ListedInstance.from_model(Instance.model_validate(data))


def parse_listed_instance(response: Response) -> ListedInstance:
    return read_listed_instance(orjson.loads(response.content))  # ValueError: "malformed"
