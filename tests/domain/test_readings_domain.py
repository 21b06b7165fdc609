"""Pure rules that make the service correct under every reading of novita-api.md §12.

Each test names the reading that broke the old code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from novita_manager.domain import observations
from novita_manager.domain.lifecycle import STATUS_ERROR_GRACE_SECONDS, Action, Snapshot, decide
from novita_manager.domain.offers import Offer, rank_offers, select_offer
from novita_manager.domain.statuses import Operation, Status
from novita_manager.novita.create_request import (
    UnacceptableName,
    build_create_request,
    novita_name,
)
from novita_manager.novita.models import Cluster, Instance, Product, Template
from novita_manager.novita.readings import READINGS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HK = Cluster.model_validate({"id": "cn-hongkong-1", "name": "CN-HK-01"})
OFFER = Offer("4090.hk", "RTX 4090 24GB", "cn-hongkong-1", 0.175, "spot")


def product(pid: str, spot: str, **fields: Any) -> Product:
    raw: dict[str, Any] = {
        "id": pid,
        "name": "RTX 4090 24GB",
        "availableDeploy": True,
        "regions": ["CN-HK-01 (Hong Kong)"],
        "price": "35000",
        "spotPrice": spot,
        "billingMethods": ["onDemand", "spot"],
        "inventoryState": "normal",
    }
    raw.update(fields)
    return Product.model_validate(raw)


# ----- offers: ranked, so a capacity refusal can fall back (capacity_error) ----------------------


def test_offers_are_ranked_cheapest_first_without_the_undeployable() -> None:
    products = [
        product("b", "20000"),
        product("a", "17500"),
        product("c", "19000", inventoryState="none"),
        product("d", "18000", availableDeploy=False),
    ]
    ranked = rank_offers(
        products, product_name="RTX 4090 24GB", cluster=HK, billing_mode="spot", rootfs_size=60
    )
    assert [offer.product_id for offer in ranked] == ["a", "b"]
    assert [offer.cluster_id for offer in ranked] == ["cn-hongkong-1"] * 2
    assert (
        select_offer(
            products, product_name="RTX 4090 24GB", cluster=HK, billing_mode="spot", rootfs_size=60
        )
        == ranked[0]
    )


# ----- names (name_rule) ---------------------------------------------------------------------


TEMPLATE = Template.model_validate(
    {
        "Id": "1",
        "image": "jupyter:latest",
        "ports": [{"type": "http", "ports": [8888]}],
        "tools": [{"name": "Jupyter", "describe": "notebook", "port": 8888, "type": "http"}],
    }
)


def test_novita_is_sent_a_name_the_strict_rule_accepts() -> None:
    """name_rule=strict refuses `_`: the old code sent the user's name as it was."""
    assert novita_name("train_llama-1") == "train-llama-1"
    assert novita_name("plain") == "plain"
    body = build_create_request(
        instance_id="x", name="a_b", gpu_num=1, rootfs_size=60, offer=OFFER, template=TEMPLATE
    ).to_body()
    assert body["name"] == "a-b"


@pytest.mark.parametrize("name", ["", "a b", "naïve", "x" * 256, "a.b"])
def test_a_name_that_cannot_be_made_acceptable_is_refused(name: str) -> None:
    with pytest.raises(UnacceptableName):
        novita_name(name)


# ----- tools (tools_required) -----------------------------------------------------------------


def test_the_templates_tools_are_sent_with_the_port_as_a_string() -> None:
    """tools_required=true: Jupyter exists only when the create sends `tools`; the old code
    never sent them."""
    body = build_create_request(
        instance_id="x", name="n", gpu_num=1, rootfs_size=60, offer=OFFER, template=TEMPLATE
    ).to_body()
    assert body["tools"] == [{"name": "Jupyter", "port": "8888", "type": "http"}]
    plain = Template.model_validate({"Id": "2", "image": "nginx"})
    assert (
        "tools"
        not in build_create_request(
            instance_id="x", name="n", gpu_num=1, rootfs_size=60, offer=OFFER, template=plain
        ).to_body()
    )


# ----- observations: details kept from a GET (list_shape) -------------------------------------


GET_ITEM = {
    "id": "n1",
    "status": "running",
    "portMappings": [{"port": 22, "endpoint": "203.0.113.9:30022", "type": "tcp"}],
    "connectComponentSSH": {"sshCommand": "ssh root@203.0.113.9 -p 30022", "password": "pw"},
    "connectComponentJupyter": {"port": 8888, "address": "https://n1-8888.proxy"},
}
LIST_ITEM = {"id": "n1", "status": "running", "portMappings": [{"port": 22, "type": "tcp"}]}


def test_a_reduced_list_item_keeps_the_details_of_the_last_get() -> None:
    """list_shape=reduced: the old sync overwrote the endpoints and connection details with the
    list item's nothing."""
    detailed = observations.summarize(Instance.model_validate(GET_ITEM))
    assert detailed["detailed"]
    assert detailed["connectionDetails"]["ssh"].startswith("ssh ")
    listed = observations.summarize(Instance.model_validate(LIST_ITEM))
    assert not listed["detailed"]
    assert listed["portMappings"][0]["endpoint"] is None
    merged = observations.merge(detailed, listed, T0)
    assert merged == detailed  # so the sync sees no change and rewrites nothing
    stopped = observations.merge(detailed, {**listed, "status": "exited"}, T0)
    assert stopped["connectionDetails"] == {}  # details do not outlive a run


# ----- statusError (status_error) --------------------------------------------------------------


def snapshot(observation: dict[str, Any], observed_at: datetime) -> Snapshot:
    return Snapshot(
        status=Status.STARTING,
        operation=Operation.CREATE,
        operation_issued=False,
        operation_started_at=T0,
        operation_issued_at=T0,
        has_upstream=True,
        observation=observation,
        observed_at=observed_at,
    )


ERROR = {"state": "pulling", "message": "retrying image pull"}


def decide_at(observation: dict[str, Any], seconds: float) -> Any:
    at = T0 + timedelta(seconds=seconds)
    return decide(snapshot(observation, at), now=at, timeout=600, recheck_after=30)


def test_a_transient_status_error_is_waited_on() -> None:
    """status_error=transient: the old code failed a create at the first statusError."""
    first = observations.merge(None, {"status": "pulling", "statusError": ERROR}, T0)
    decision = decide_at(first, 1)
    assert decision.action is Action.WAIT
    assert decision.wait_seconds is not None
    assert decision.wait_seconds <= 30
    later = observations.merge(first, {"status": "pulling", "statusError": ERROR}, T0)
    assert later["statusErrorSince"] == first["statusErrorSince"]  # carried, not restarted
    cleared = observations.merge(later, {"status": "running", "statusError": None}, T0)
    assert "statusErrorSince" not in cleared
    assert decide_at(cleared, 20).to_status is Status.RUNNING


def test_a_status_error_that_persists_fails_after_the_grace() -> None:
    first = observations.merge(None, {"status": "pulling", "statusError": ERROR}, T0)
    assert decide_at(first, STATUS_ERROR_GRACE_SECONDS - 1).action is Action.WAIT
    failed = decide_at(first, STATUS_ERROR_GRACE_SECONDS + 1)
    assert failed.to_status is Status.FAILED
    assert failed.reason == "pulling: retrying image pull"


def test_exited_with_a_status_error_fails_at_once() -> None:
    """status_error=fatal_only: a real failure still fails, without waiting for the grace."""
    fatal = observations.merge(
        None, {"status": "exited", "statusError": {"state": "pulling", "message": "bad"}}, T0
    )
    assert decide_at(fatal, 1).to_status is Status.FAILED


def test_every_reading_of_section_12_is_named_once() -> None:
    ids = [item.id for item in READINGS]
    assert len(ids) == len(set(ids))
    assert {item.section for item in READINGS} == set(range(1, 11))
    assert all(item.client and item.check and item.readings for item in READINGS)
