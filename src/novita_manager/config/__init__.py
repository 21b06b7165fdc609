"""Service configuration, read from the environment and an optional `.env` file.

`settings.py` declares every variable; `loading.py` reads them and reports what is wrong.
"""

from novita_manager.config.addresses import is_loopback_url
from novita_manager.config.loading import (
    ConfigurationError,
    describe_validation_error,
    load_settings,
    load_settings_or_exit,
)
from novita_manager.config.settings import (
    DEFAULT_DATABASE_URL,
    DEFAULT_NOVITA_BASE_URL,
    SIMULATOR_API_KEY,
    Settings,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_NOVITA_BASE_URL",
    "SIMULATOR_API_KEY",
    "ConfigurationError",
    "Settings",
    "describe_validation_error",
    "is_loopback_url",
    "load_settings",
    "load_settings_or_exit",
]
