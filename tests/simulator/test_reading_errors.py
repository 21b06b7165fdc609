"""Readings of refusals: `capacity_error` (novita-api.md §12 #5) keeps the error envelope
`{code, reason, message, metadata}` and tells capacity by reason or by message only;
`name_rule` (§12 #10) refuses names other than letters, digits and `-`."""

from __future__ import annotations

import httpx
import pytest

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import CREATE, action, assert_error, create, create_body, wait_status

PRODUCT = {"adverse": "4090.16c62g", "lenient": "4090.16c62g.hk1"}


@pytest.mark.parametrize(
    ("simulator_profile", "reason"),
    [("adverse", "FAILED_PRECONDITION"), ("lenient", "INSUFFICIENT_RESOURCE")],
    indirect=["simulator_profile"],
)
def test_capacity_refusal(
    simulator: SimulatorServer, simulator_http: httpx.Client, simulator_profile: str, reason: str
) -> None:
    product = PRODUCT[simulator_profile]
    simulator.control.set_capacity(0, product_id=product, cluster_id="cn-hongkong-1")
    reply = simulator_http.post(CREATE, json=create_body(productId=product))
    error = assert_error(reply, 400, reason)  # also checks the four keys of the envelope
    if reason != "INSUFFICIENT_RESOURCE":  # only the message tells it is about capacity
        assert error["message"].startswith("INSUFFICIENT_RESOURCE: ")
    assert error["metadata"]["productId"] == product


@pytest.mark.parametrize(
    ("simulator_profile", "reason"),
    [("adverse", "FAILED_PRECONDITION"), ("lenient", "INSUFFICIENT_RESOURCE")],
    indirect=["simulator_profile"],
)
def test_start_refused_after_reclaim(
    simulator: SimulatorServer, simulator_http: httpx.Client, simulator_profile: str, reason: str
) -> None:
    iid = create(simulator_http, productId=PRODUCT[simulator_profile], billingMode="spot")
    wait_status(simulator_http, iid, "running")
    simulator.control.set_config(time_scale=0.001)
    simulator.control.reclaim(iid)
    wait_status(simulator_http, iid, "exited")
    error = assert_error(action(simulator_http, "start", iid), 400, reason)
    if reason != "INSUFFICIENT_RESOURCE":
        assert error["message"].startswith("start instance error: INSUFFICIENT_RESOURCE")


@pytest.mark.parametrize("simulator_profile", ["adverse"], indirect=True)
def test_strict_names(simulator_http: httpx.Client) -> None:
    for name in ("train_1", "train 1", "train.1", "tr\u00e4in"):
        reply = simulator_http.post(CREATE, json=create_body(productId="4090.16c62g", name=name))
        assert assert_error(reply, 400, "VALIDATOR_PARAM")["metadata"]["field"] == "name"
    create(simulator_http, productId="4090.16c62g", name="Train-1")
    create(simulator_http, productId="4090.16c62g", name="")


@pytest.mark.parametrize("simulator_profile", ["lenient"], indirect=True)
def test_any_name(simulator_http: httpx.Client) -> None:
    create(simulator_http, name="train_1 (v2)")
