"""Models of what Novita offers: clusters, products (offers with prices) and templates.

Separate from the instance models because the catalogue is read through its own cache
(`novita/catalogue.py`) and its shapes drift in their own ways (`availableGpuType` vs
`availableGpuTypes`, `minRootFS` vs `minRootfs`, a template's `Id`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, model_validator

from novita_manager.novita.models.base import (
    EnvList,
    Ident,
    NovitaModel,
    OptInt,
    OptStr,
    StrList,
    lenient_int,
    list_or_empty,
    units_to_usd,
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
            ports = [lenient_int(item) for item in items]
            data = {**data, "ports": [port for port in ports if port is not None]}
        return data


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
    ports: Annotated[list[TemplatePort], BeforeValidator(list_or_empty)] = Field(
        default_factory=list
    )
    envs: EnvList = Field(default_factory=list)
    tools: Annotated[list[TemplateTool], BeforeValidator(_tools)] = Field(default_factory=list)
    channel: OptStr = None
    min_cuda_version: OptStr = None
