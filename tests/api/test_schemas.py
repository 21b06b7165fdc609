"""Request schemas are strict: integers are JSON integers, strings are JSON strings, ids too."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from novita_manager.services.inputs import (
    CreateInstanceBody,
    OperationBody,
    OperationByNameBody,
    RedeliverBody,
)

CREATE = {"name": "train-1", "productName": "RTX 4090 24GB", "templateId": "1"}


def refused_fields(model: type[BaseModel], body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [".".join(str(part) for part in error["loc"]) for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpuNum", "2"),
        ("gpuNum", True),
        ("gpuNum", 2.0),
        ("gpuNum", None),
        ("rootfsSize", "60"),
        ("rootfsSize", 60.0),
        ("rootfsSize", False),
        ("templateId", True),
        ("templateId", False),
        ("templateId", 2.0),
        ("templateId", None),
        ("templateId", [1]),
        ("templateId", {"id": 1}),
        ("name", 5),
        ("productName", 4090),
        ("region", 1),
        ("billingMode", True),
        ("webhookUrl", 1),
    ],
)
def test_create_refuses_loose_types_naming_the_field(field: str, value: Any) -> None:
    assert refused_fields(CreateInstanceBody, {**CREATE, field: value}) == [field]


def test_template_id_is_a_string_or_an_integer_kept_as_a_string() -> None:
    assert CreateInstanceBody.model_validate({**CREATE, "templateId": 42}).templateId == "42"
    assert CreateInstanceBody.model_validate({**CREATE, "templateId": " t-1 "}).templateId == "t-1"
    assert refused_fields(CreateInstanceBody, {**CREATE, "templateId": "  "}) == ["templateId"]


def test_create_accepts_json_integers_and_defaults() -> None:
    body = CreateInstanceBody.model_validate({**CREATE, "gpuNum": 2, "rootfsSize": 100})
    assert (body.gpuNum, body.rootfsSize, body.billingMode) == (2, 100, "spot")
    body = CreateInstanceBody.model_validate(CREATE)
    assert (body.gpuNum, body.rootfsSize) == (1, 60)


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (OperationBody, {"webhookUrl": 5}, "webhookUrl"),
        (OperationBody, {"webhookUrl": True}, "webhookUrl"),
        (OperationByNameBody, {"instanceName": 5}, "instanceName"),
        (OperationByNameBody, {"instanceName": True}, "instanceName"),
        (OperationByNameBody, {"instanceName": ["a"]}, "instanceName"),
        (RedeliverBody, {"url": 5}, "url"),
        (RedeliverBody, {"url": False}, "url"),
    ],
)
def test_other_request_bodies_are_strict(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    assert refused_fields(model, body) == [field]


def test_other_request_bodies_still_accept_strings() -> None:
    assert OperationByNameBody.model_validate({"instanceName": "a-1"}).instanceName == "a-1"
    assert RedeliverBody.model_validate({"url": "https://x.example/h"}).url == "https://x.example/h"
