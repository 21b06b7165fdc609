"""Reading the settings: invalid values stop start-up with exit code 2 and one message that names
every bad variable, because a half-configured service that fails later is harder to debug than one
that will not start. Secrets and database passwords are never echoed back."""

from __future__ import annotations

import re
import sys

from pydantic import ValidationError

from novita_manager.config.settings import Settings


class ConfigurationError(Exception):
    """Raised with one readable message naming every invalid variable."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, named as the user wrote it (UPPER_CASE), with the reason."""
    lines = []
    for item in error.errors():
        location = [str(part) for part in item["loc"] if not isinstance(part, int)]
        message = str(item["msg"]).removeprefix("Value error, ")
        if location:
            variable = location[0].upper()
        elif ":" in message:
            variable, message = (part.strip() for part in message.split(":", 1))
        else:
            variable = "configuration"
        value = item.get("input")
        if isinstance(value, str):
            value = _URL_PASSWORD.sub(r"\1***@", value)  # a database URL's password
        shown = (
            ""
            if variable.endswith(("KEY", "KEYS", "SECRET")) or isinstance(value, dict)
            else (f" (got {value!r})")
        )
        lines.append(f"  {variable}: {message}{shown}")
    return "Invalid configuration:\n" + "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise ConfigurationError with every problem in one message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None


def load_settings_or_exit(**overrides: object) -> Settings:
    """For command-line entry points: print the problems and exit 2 instead of a traceback."""
    try:
        return load_settings(**overrides)
    except ConfigurationError as error:
        print(str(error), file=sys.stderr)
        raise SystemExit(2) from None
