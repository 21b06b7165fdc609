"""Lenient pydantic models of the Novita v1 API (see novita-api.md §1-4 and §9).

One module per concern: `base` (the lenient reading every model shares, and the price
conversion), `catalogue` (clusters, products, templates) and `instances` (instances, a page of
them, the create body). Import the models from here.
"""

from novita_manager.novita.models.base import EnvVar, NovitaModel, units_to_usd
from novita_manager.novita.models.catalogue import Cluster, Product, Template, TemplatePort
from novita_manager.novita.models.instances import (
    CreateInstanceRequest,
    Instance,
    InstancePage,
    JupyterComponent,
    PortMapping,
    SshComponent,
    StatusError,
    WebTerminalComponent,
)

__all__ = [
    "Cluster",
    "CreateInstanceRequest",
    "EnvVar",
    "Instance",
    "InstancePage",
    "JupyterComponent",
    "NovitaModel",
    "PortMapping",
    "Product",
    "SshComponent",
    "StatusError",
    "Template",
    "TemplatePort",
    "WebTerminalComponent",
    "units_to_usd",
]
