"""Lenient pydantic models of the Novita v1 API (see novita-api.md §1-4 and §9).

The upstream drifts: numbers arrive as ints or strings, optional enums as `""`, new statuses appear
without notice, and sources disagree on field shapes. A strict model would raise in the middle of an
operation, so these models accept either form, keep unknown strings as plain `str`, ignore unknown
fields and read `""` as absent. A malformed *optional* value becomes None instead of failing the
whole response; only identifiers that callers cannot work without are required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

PRICE_UNITS_PER_USD = 100_000


def units_to_usd(units: int) -> float:
    """Convert a Novita price (1/100000 USD, per GPU-hour) to USD; the only place prices convert."""
    return units / PRICE_UNITS_PER_USD


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


def _lenient_int(value: Any) -> int | None:
    """int, numeric string ("8", "35000", "12.0") or float; anything else reads as absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number == number and abs(number) != float("inf") else None


def _lenient_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _unix_time(value: Any) -> datetime | None:
    """Unix seconds (int or text) or ISO text to an aware UTC datetime; "0" and junk are None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = _lenient_int(value)
    if seconds is not None:
        if seconds <= 0:
            return None
        if seconds > 10**11:  # milliseconds
            seconds //= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _list_or_empty(value: Any) -> Any:
    return [] if value is None or value == "" else value


def _dict_or_none(value: Any) -> Any:
    return value if isinstance(value, dict) and value else None


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item not in (None, "")]


OptStr = Annotated[str | None, BeforeValidator(_lenient_str)]
OptInt = Annotated[int | None, BeforeValidator(_lenient_int)]
OptTime = Annotated[datetime | None, BeforeValidator(_unix_time)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]
Ident = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class NovitaModel(BaseModel):
    """Base: camelCase aliases, Python names accepted too, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )


class Cluster(NovitaModel):
    id: Ident
    name: OptStr = None
    available_gpu_types: StrList = Field(
        default_factory=list,
        validation_alias=AliasChoices(
            "availableGpuType", "availableGpuTypes", "available_gpu_types"
        ),
    )
    support_network_storage: bool | None = None


class Product(NovitaModel):
    id: Ident
    name: OptStr = None
    cpu_per_gpu: OptInt = None
    memory_per_gpu: OptInt = None
    disk_per_gpu: OptInt = None
    available_deploy: bool = False
    min_rootfs: OptInt = Field(
        default=None, validation_alias=AliasChoices("minRootFS", "minRootfs", "min_rootfs")
    )
    max_rootfs: OptInt = Field(
        default=None, validation_alias=AliasChoices("maxRootFS", "maxRootfs", "max_rootfs")
    )
    regions: StrList = Field(default_factory=list)
    price: OptInt = None
    spot_price: OptInt = None
    billing_methods: StrList = Field(default_factory=list)
    inventory_state: OptStr = None

    @property
    def price_usd(self) -> float | None:
        """On-demand USD per GPU-hour."""
        return None if self.price is None else units_to_usd(self.price)

    @property
    def spot_price_usd(self) -> float | None:
        """Spot USD per GPU-hour; None when spot is not offered (missing or "0" upstream)."""
        return units_to_usd(self.spot_price) if self.spot_price else None


class TemplatePort(NovitaModel):
    type: OptStr = None
    ports: list[int] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _lenient_ports(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ports" in data:
            raw = data["ports"]
            items = raw if isinstance(raw, list) else [raw]
            ports = [_lenient_int(item) for item in items]
            data = {**data, "ports": [port for port in ports if port is not None]}
        return data


class EnvVar(NovitaModel):
    """An environment variable; values stay strings ("" is a valid value here)."""

    key: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))]
    value: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""


EnvList = Annotated[list[EnvVar], BeforeValidator(_list_or_empty)]


class TemplateTool(NovitaModel):
    """A tool of an official template (e.g. Jupyter); its port goes to create as a string."""

    name: OptStr = None
    port: OptInt = None
    type: OptStr = None


def _tools(value: Any) -> Any:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and item.get("name")]


class Template(NovitaModel):
    id: Ident = Field(validation_alias=AliasChoices("Id", "id"), serialization_alias="Id")
    name: OptStr = None
    image: OptStr = None
    image_auth: OptStr = None  # the registry credential ID, not a secret itself
    start_command: OptStr = None
    entrypoint: OptStr = None
    rootfs_size: OptInt = None
    ports: Annotated[list[TemplatePort], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list
    )
    envs: EnvList = Field(default_factory=list)
    tools: Annotated[list[TemplateTool], BeforeValidator(_tools)] = Field(default_factory=list)
    channel: OptStr = None
    min_cuda_version: OptStr = None


class RepositoryAuth(NovitaModel):
    """A saved registry credential; the password is deliberately not kept."""

    id: Ident
    name: OptStr = None
    username: OptStr = None


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
            data = {**data, "port": _lenient_int(data["port"])}
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
    return [item for item in value if isinstance(item, dict) and _lenient_int(item.get("port"))]


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
    connect_component_ssh: Annotated[SshComponent | None, BeforeValidator(_dict_or_none)] = Field(
        default=None,
        validation_alias=AliasChoices(
            "connectComponentSSH", "connectComponentSsh", "connect_component_ssh"
        ),
    )
    connect_component_jupyter: Annotated[
        JupyterComponent | None, BeforeValidator(_dict_or_none)
    ] = None
    connect_component_web_terminal: Annotated[
        WebTerminalComponent | None, BeforeValidator(_dict_or_none)
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

    instances: Annotated[list[Instance], BeforeValidator(_list_or_empty)] = Field(
        default_factory=list
    )
    total: int = 0
    total_reported: bool = True  # False: no usable `total`; only an empty page proves the end

    @model_validator(mode="before")
    @classmethod
    def _lenient_total(cls, data: Any) -> Any:
        if isinstance(data, dict):
            total = _lenient_int(data.get("total"))
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
