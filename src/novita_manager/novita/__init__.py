"""The one door to the Novita GPU-instance API (v1): lenient models, typed errors, the client.

Import from here: `NovitaClient`, the models, the errors and `is_transient`. Nothing in this package
imports from the service's other layers except settings, metrics and logging.
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
    RepositoryAuth,
    SshComponent,
    StatusError,
    Template,
    TemplatePort,
    WebTerminalComponent,
    units_to_usd,
)

__all__ = [
    "CircuitBreaker",
    "CircuitState",
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
    "RepositoryAuth",
    "SshComponent",
    "StatusError",
    "Template",
    "TemplatePort",
    "WebTerminalComponent",
    "is_transient",
    "units_to_usd",
]
