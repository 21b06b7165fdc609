"""The client's side of the readings of novita-api.md §12 that need no server: errors and models.

Each test names the reading that broke the old code.
"""

from __future__ import annotations

import json

import pytest

from novita_manager.novita.errors import (
    NovitaBadRequest,
    NovitaInsufficientResource,
    error_for_status,
)
from novita_manager.novita.models import CreateInstanceRequest, Instance, Template


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("INSUFFICIENT_RESOURCE", "no stock"),
        ("FAILED_PRECONDITION", "INSUFFICIENT_RESOURCE"),
        ("FAILED_PRECONDITION", "start instance error"),
        (None, "Insufficient resource in cluster"),
    ],
)
def test_capacity_is_recognised_by_reason_or_message(reason: str | None, message: str) -> None:
    """capacity_error=message: the old mapping read only `reason`, so a refusal whose message
    alone said INSUFFICIENT_RESOURCE failed the request instead of trying the next offer."""
    text = json.dumps({"code": 400, "reason": reason, "message": message})
    assert isinstance(error_for_status(400, text), NovitaInsufficientResource)


def test_other_refusals_are_not_capacity() -> None:
    text = json.dumps({"reason": "VALIDATOR_PARAM", "message": "name is invalid"})
    assert type(error_for_status(400, text)) is NovitaBadRequest


@pytest.mark.parametrize(
    "node", [[{"maxRootfsSize": 500}], {"maxRootfsSize": 500}, [], None, "junk"]
)
def test_node_as_array_or_object(node: object) -> None:
    """node_shape=object: read leniently either way, never a validation error mid-operation."""
    instance = Instance.model_validate({"id": "i1", "status": "running", "node": node})
    expected = 500 if node and isinstance(node, list | dict) else None
    assert (instance.node.max_rootfs_size if instance.node else None) == expected


def test_template_tools_and_create_tools() -> None:
    template = Template.model_validate(
        {"Id": "1", "tools": [{"name": "Jupyter", "port": "8888", "type": "http"}, {"x": 1}]}
    )
    assert [(t.name, t.port, t.type) for t in template.tools] == [("Jupyter", 8888, "http")]
    body = CreateInstanceRequest(
        name="n",
        product_id="p",
        gpu_num=1,
        rootfs_size=60,
        image_url="i",
        tools=[{"name": "Jupyter", "port": "8888", "type": "http"}],
    ).to_body()
    assert body["tools"] == [{"name": "Jupyter", "port": "8888", "type": "http"}]


def test_a_list_item_without_connection_components_says_so() -> None:
    reduced = Instance.model_validate({"id": "i1", "portMappings": [{"port": 22, "type": "tcp"}]})
    assert not reduced.has_connection_details
    full = Instance.model_validate({"id": "i1", "connectComponentSSH": {"sshCommand": ""}})
    assert full.has_connection_details
