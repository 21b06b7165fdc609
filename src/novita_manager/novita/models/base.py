"""The lenient reading every Novita model shares (see novita-api.md §1-4 and §9).

The upstream drifts: numbers arrive as ints or strings, optional enums as `""`, new statuses appear
without notice, and sources disagree on field shapes. A strict model would raise in the middle of an
operation, so the models accept either form, keep unknown strings as plain `str`, ignore unknown
fields and read `""` as absent. A malformed *optional* value becomes None instead of failing the
whole response; only identifiers that callers cannot work without are required. This module holds
those rules (the validators, the annotated field types, the base model) and the one price
conversion, so the per-resource modules only declare fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

PRICE_UNITS_PER_USD = 100_000


def units_to_usd(units: int) -> float:
    """Convert a Novita price (1/100000 USD, per GPU-hour) to USD; the only place prices convert."""
    return units / PRICE_UNITS_PER_USD


def lenient_int(value: Any) -> int | None:
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


def lenient_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return None


def unix_time(value: Any) -> datetime | None:
    """Unix seconds (int or text) or ISO text to an aware UTC datetime; "0" and junk are None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = lenient_int(value)
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


def list_or_empty(value: Any) -> Any:
    return [] if value is None or value == "" else value


def dict_or_none(value: Any) -> Any:
    return value if isinstance(value, dict) and value else None


def str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item not in (None, "")]


OptStr = Annotated[str | None, BeforeValidator(lenient_str)]
OptInt = Annotated[int | None, BeforeValidator(lenient_int)]
OptTime = Annotated[datetime | None, BeforeValidator(unix_time)]
StrList = Annotated[list[str], BeforeValidator(str_list)]
Ident = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class NovitaModel(BaseModel):
    """Base: camelCase aliases, Python names accepted too, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )


class EnvVar(NovitaModel):
    """An environment variable; values stay strings ("" is a valid value here)."""

    key: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))]
    value: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""


EnvList = Annotated[list[EnvVar], BeforeValidator(list_or_empty)]
