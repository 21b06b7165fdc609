"""How each Novita reply body becomes a model, and how query parameters are built.

Kept apart from the request loop because these are the per-endpoint shape rules (a list under
`data` or bare, `{template: {...}}` or the object itself, an id as a number or text), while the
loop is the same for every endpoint. Each parser raises ValueError, TypeError or KeyError
(pydantic's ValidationError is a ValueError) on a body it cannot read; the loop turns that into a
"malformed" NovitaTransportError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novita_manager.http_client import Response
from novita_manager.novita.models import Cluster, Instance, InstancePage, Product, Template

Params = Mapping[str, str | int]


def params(**values: str | int | None) -> Params:
    """Query parameters with the unset (None) ones left out."""
    return {key: value for key, value in values.items() if value is not None}


def _json(response: Response) -> Any:
    return response.json()  # ValueError on an empty or non-JSON body: "malformed"


def _items(data: Any, key: str) -> list[Any]:
    """`{key: [...]}` or a bare list; null means empty; anything else is malformed."""
    items = data.get(key) if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise TypeError(f"expected a list under {key!r}")
    return items


def parse_clusters(response: Response) -> list[Cluster]:
    return [Cluster.model_validate(item) for item in _items(_json(response), "data")]


def parse_products(response: Response) -> list[Product]:
    return [Product.model_validate(item) for item in _items(_json(response), "data")]


def parse_template(response: Response) -> Template:
    data = _json(response)
    if isinstance(data, dict) and isinstance(data.get("template"), dict):
        data = data["template"]
    return Template.model_validate(data)


def parse_instance(response: Response) -> Instance:
    data = _json(response)
    if isinstance(data, dict) and "id" not in data and isinstance(data.get("instance"), dict):
        data = data["instance"]
    return Instance.model_validate(data)


def parse_page(response: Response) -> InstancePage:
    data = _json(response)
    if not isinstance(data, dict):
        raise TypeError("expected an object with instances and total")
    return InstancePage.model_validate(data)


def parse_created_id(response: Response) -> str:
    data = _json(response)
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError("create reply has no instance id")
    return value


def ignore_body(_response: Response) -> None:
    """Actions return nothing, `{}`, non-JSON or `{instanceId, state}`: never depend on it."""
