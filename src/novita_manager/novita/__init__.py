"""The one door to the Novita GPU-instance API (v1): lenient models, typed errors, the client.

Import from here: `NovitaClient`, `ClientOptions`, the models, the errors and `is_transient`.
This package imports only `novita_manager.domain` and the shared utilities (logging, metrics,
errors, backoff), never the settings: `services/upstream.py` maps `Settings` onto `ClientOptions`.
"""

from novita_manager.novita.circuit import CircuitBreaker, CircuitState
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import (
    NovitaBadRequest,
    NovitaError,
    NovitaInsufficientResource,
    NovitaInvalidStateChange,
    NovitaNotFound,
    NovitaOutcomeUnknown,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnauthorized,
    NovitaUnavailable,
    is_transient,
)
from novita_manager.novita.models import (
    Cluster,
    CreateInstanceRequest,
    EnvVar,
    Instance,
    InstancePage,
    JupyterComponent,
    PortMapping,
    Product,
    SshComponent,
    StatusError,
    Template,
    TemplatePort,
    WebTerminalComponent,
    units_to_usd,
)
from novita_manager.novita.options import ClientOptions

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "ClientOptions",
    "Cluster",
    "CreateInstanceRequest",
    "EnvVar",
    "Instance",
    "InstancePage",
    "JupyterComponent",
    "NovitaBadRequest",
    "NovitaClient",
    "NovitaError",
    "NovitaInsufficientResource",
    "NovitaInvalidStateChange",
    "NovitaNotFound",
    "NovitaOutcomeUnknown",
    "NovitaRateLimited",
    "NovitaServerError",
    "NovitaTransportError",
    "NovitaUnauthorized",
    "NovitaUnavailable",
    "PortMapping",
    "Product",
    "SshComponent",
    "StatusError",
    "Template",
    "TemplatePort",
    "WebTerminalComponent",
    "is_transient",
    "units_to_usd",
]
