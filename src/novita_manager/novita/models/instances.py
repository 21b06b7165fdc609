"""Models of GPU instances: the GET and list objects, a page of the list, the create body.

Separate from the catalogue models because these are what the status sync reads every interval
and the engine acts on: their leniency (a status kept as any string, `node` as array or object,
`statusError` with only empty values read as none) is what keeps a sync from failing on one odd
instance.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, model_validator

from novita_manager.novita.models.base import (
    EnvList,
    EnvVar,
    Ident,
    NovitaModel,
    OptInt,
    OptStr,
    OptTime,
    dict_or_none,
    lenient_int,
    list_or_empty,
)


class StatusError(NovitaModel):
    state: OptStr = None
    message: OptStr = None


class PortMapping(NovitaModel):
    port: int
    endpoint: OptStr = None
    type: OptStr = None

    @model_validator(mode="before")
    @classmethod
    def _lenient_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" in data:
            data = {**data, "port": lenient_int(data["port"])}
        return data


class SshComponent(NovitaModel):
    ssh_command: OptStr = None
    password: OptStr = None
    is_running: bool | None = None


class JupyterComponent(NovitaModel):
    port: OptInt = None
    address: OptStr = None
    is_running: bool | None = None


class WebTerminalComponent(NovitaModel):
    address: OptStr = None
    username: OptStr = None
    password: OptStr = None
    is_running: bool | None = None


def _status_error(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    return value if any(item not in (None, "") for item in value.values()) else None


def _node(value: Any) -> Any:
    """`node` as the docs' array `[{maxRootfsSize}]` or the SDK's object (readings `node_shape`)."""
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, dict)), None)
    return value if isinstance(value, dict) else None


class Node(NovitaModel):
    max_rootfs_size: OptInt = None


def _port_mappings(value: Any) -> Any:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and lenient_int(item.get("port"))]


class Instance(NovitaModel):
    id: Ident
    name: OptStr = None
    cluster_id: OptStr = None
    cluster_name: OptStr = None
    status: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""
    status_error: Annotated[StatusError | None, BeforeValidator(_status_error)] = None
    image_url: OptStr = None
    image_auth_id: OptStr = None
    command: OptStr = None
    entrypoint: OptStr = None
    product_id: OptStr = None
    product_name: OptStr = None
    kind: OptStr = None
    gpu_num: OptInt = None
    cpu_num: OptInt = None
    memory: OptInt = None
    rootfs_size: OptInt = None
    port_mappings: Annotated[list[PortMapping], BeforeValidator(_port_mappings)] = Field(
        default_factory=list
    )
    envs: EnvList = Field(default_factory=list)
    billing_mode: OptStr = None
    spot_status: OptStr = None
    spot_reclaim_time: OptTime = None  # "0" (reclaim not started) reads as None
    created_at: OptTime = None
    connect_component_ssh: Annotated[SshComponent | None, BeforeValidator(dict_or_none)] = Field(
        default=None,
        validation_alias=AliasChoices(
            "connectComponentSSH", "connectComponentSsh", "connect_component_ssh"
        ),
    )
    connect_component_jupyter: Annotated[JupyterComponent | None, BeforeValidator(dict_or_none)] = (
        None
    )
    connect_component_web_terminal: Annotated[
        WebTerminalComponent | None, BeforeValidator(dict_or_none)
    ] = None
    node: Annotated[Node | None, BeforeValidator(_node)] = None

    @property
    def has_connection_details(self) -> bool:
        """Whether this object carries connectComponent* at all (GET does; list items may not,
        readings `list_shape`)."""
        return any(
            component is not None
            for component in (
                self.connect_component_ssh,
                self.connect_component_jupyter,
                self.connect_component_web_terminal,
            )
        )


class InstancePage(NovitaModel):
    """One page of GET /gpu/instances; `total` counts matches across all pages."""

    instances: Annotated[list[Instance], BeforeValidator(list_or_empty)] = Field(
        default_factory=list
    )
    total: int = 0
    total_reported: bool = True  # False: no usable `total`; only an empty page proves the end

    @model_validator(mode="before")
    @classmethod
    def _lenient_total(cls, data: Any) -> Any:
        if isinstance(data, dict):
            total = lenient_int(data.get("total"))
            reported = total is not None
            if total is None:  # missing: the page is all we know of
                items = data.get("instances")
                total = len(items) if isinstance(items, list) else 0
            data = {**data, "total": total, "total_reported": reported}
        return data


class CreateInstanceRequest(NovitaModel):
    """Body of POST /gpu/instance/create (§3.3); `to_body()` gives the camelCase JSON.

    No range checks here: the upstream validates (VALIDATOR_PARAM → NovitaBadRequest), so bad
    input reaches callers as a typed Novita error rather than a pydantic error mid-pipeline.
    """

    name: str
    product_id: str
    gpu_num: int
    rootfs_size: int
    image_url: str
    image_auth_id: str | None = None
    ports: str | None = None  # "8888/http,22/tcp"
    envs: list[EnvVar] = Field(default_factory=list)
    cluster_id: str | None = None
    kind: str = "gpu"
    billing_mode: str = "onDemand"
    command: str | None = None
    entrypoint: str | None = None
    min_cuda_version: str | None = None
    tools: list[dict[str, str]] | None = None  # [{name, port (a string), type}]

    def to_body(self) -> dict[str, Any]:
        """The JSON body: camelCase keys, None fields left out (the upstream treats "" oddly)."""
        return self.model_dump(by_alias=True, exclude_none=True)
