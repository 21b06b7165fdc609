from __future__ import annotations

from novita_manager.domain.offers import Offer
from novita_manager.novita.create_request import (
    MARKER_ENV,
    build_create_request,
    carries_marker,
    marker_of,
    template_ports,
)
from novita_manager.novita.models import EnvVar, Template

TEMPLATE = Template.model_validate(
    {
        "Id": "101",
        "image": "registry.example.com/team/trainer:1",
        "imageAuth": "ra-123",
        "startCommand": "python train.py",
        "ports": [
            {"type": "http", "ports": [8888, "6006"]},
            {"type": "tcp", "ports": [22]},
            {"type": "http", "ports": [8888]},
        ],
        "envs": [{"key": "MODE", "value": "fast"}, {"key": MARKER_ENV, "value": "forged"}],
    }
)
OFFER = Offer("4090.hk", "RTX 4090 24GB", "cn-hongkong-1", 0.175, "spot")


def test_ports_become_novitas_create_string() -> None:
    assert template_ports(TEMPLATE) == "8888/http,6006/http,22/tcp"
    assert template_ports(Template.model_validate({"Id": "1"})) is None


def test_create_body_from_template_and_offer() -> None:
    request = build_create_request(
        instance_id="abc", name="train-1", gpu_num=2, rootfs_size=80, offer=OFFER, template=TEMPLATE
    )
    body = request.to_body()
    assert body["imageUrl"] == "registry.example.com/team/trainer:1"
    assert body["imageAuthId"] == "ra-123"  # the credential by reference, never the password
    assert "imageAuth" not in body
    assert body["ports"] == "8888/http,6006/http,22/tcp"
    assert body["productId"] == "4090.hk"
    assert body["clusterId"] == "cn-hongkong-1"
    assert body["billingMode"] == "spot"
    assert body["kind"] == "gpu"
    assert (body["gpuNum"], body["rootfsSize"], body["command"]) == (2, 80, "python train.py")
    assert {"key": "MODE", "value": "fast"} in body["envs"]
    assert [e for e in body["envs"] if e["key"] == MARKER_ENV] == [
        {"key": MARKER_ENV, "value": "abc"}
    ]


def test_marker_lookup() -> None:
    envs = [EnvVar(key="A", value="1"), EnvVar(key=MARKER_ENV, value="abc")]
    assert marker_of(envs) == "abc"
    assert carries_marker(envs, "abc")
    assert not carries_marker(envs, "abd")
    assert marker_of([EnvVar(key=MARKER_ENV, value="")]) is None
