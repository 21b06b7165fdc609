"""Lenient parsing of upstream payloads: the drift seen in the wild must not raise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from novita_manager.novita.models import (
    Cluster,
    CreateInstanceRequest,
    EnvVar,
    Instance,
    InstancePage,
    Product,
    Template,
    units_to_usd,
)


def test_units_to_usd() -> None:
    assert units_to_usd(35000) == pytest.approx(0.35)
    assert units_to_usd(160000) == pytest.approx(1.6)


def test_product_accepts_numeric_strings_and_odd_aliases() -> None:
    product = Product.model_validate(
        {
            "id": "4090.16c62g",
            "name": "RTX 4090 24GB",
            "cpuPerGpu": "16",
            "memoryPerGpu": 62,
            "diskPerGpu": "",
            "availableDeploy": True,
            "minRootFS": "10",
            "maxRootFS": 500,
            "regions": ["CN-HK-01 (Hong Kong)"],
            "price": "35000",
            "spotPrice": "17500",
            "billingMethods": ["onDemand", "spot"],
            "inventoryState": "",
            "monthlyPrice": [{"price": 1, "month": 1}],
            "canBuy": True,
        }
    )
    assert product.cpu_per_gpu == 16
    assert product.memory_per_gpu == 62
    assert product.disk_per_gpu is None
    assert (product.min_rootfs, product.max_rootfs) == (10, 500)
    assert product.price == 35000
    assert product.price_usd == pytest.approx(0.35)
    assert product.spot_price_usd == pytest.approx(0.175)
    assert product.inventory_state is None


@pytest.mark.parametrize("spot", [None, "", "0", 0])
def test_spot_price_absent_or_zero_means_not_offered(spot: object) -> None:
    product = Product.model_validate({"id": 26, "price": 1000, "spotPrice": spot})
    assert product.id == "26"
    assert product.spot_price_usd is None
    assert product.price_usd == pytest.approx(0.01)


def test_product_with_nulls_and_junk() -> None:
    product = Product.model_validate(
        {"id": "p", "price": "n/a", "regions": None, "billingMethods": None}
    )
    assert product.price is None
    assert product.price_usd is None
    assert product.regions == []
    assert product.billing_methods == []
    assert product.available_deploy is False


def test_cluster_available_gpu_type_alias() -> None:
    cluster = Cluster.model_validate(
        {"id": "cn-hongkong-1", "name": "CN-HK-01", "availableGpuType": ["RTX 4090"], "x": 1}
    )
    assert cluster.available_gpu_types == ["RTX 4090"]


def test_template_capital_id_and_empty_image_auth() -> None:
    template = Template.model_validate(
        {
            "Id": "tpl-1",
            "name": "PyTorch",
            "image": "pytorch/pytorch:latest",
            "imageAuth": "",
            "startCommand": "",
            "rootfsSize": "60",
            "ports": [{"type": "http", "ports": ["8888", 6006]}, {"type": "tcp", "ports": None}],
            "envs": [{"key": "A", "value": 1}, {"key": "B", "value": ""}],
            "channel": "official",
            "minCudaVersion": "",
            "recommendCards": [{"gpuSpecId": "x", "cardNum": "1"}],
        }
    )
    assert template.id == "tpl-1"
    assert template.image_auth is None
    assert template.start_command is None
    assert template.rootfs_size == 60
    assert template.ports[0].ports == [8888, 6006]
    assert template.ports[1].ports == []
    assert template.envs == [EnvVar(key="A", value="1"), EnvVar(key="B", value="")]
    assert template.min_cuda_version is None


def test_template_image_auth_id_kept() -> None:
    assert Template.model_validate({"Id": "t", "imageAuth": "auth-7"}).image_auth == "auth-7"


INSTANCE = {
    "id": "3560b7fec915bbf9",
    "name": "nm-abc",
    "clusterId": "cn-hongkong-1",
    "clusterName": "",
    "status": "someFutureStatus",
    "statusError": {"state": "", "message": ""},
    "imageUrl": "nginx:latest",
    "imageAuthId": "",
    "productId": "4090.16c62g",
    "productName": "RTX 4090 24GB",
    "gpuNum": "1",
    "cpuNum": "16",
    "memory": "62",
    "rootfsSize": 60,
    "portMappings": [
        {"port": 8888, "endpoint": "https://x.example", "type": "http"},
        {"port": "22", "type": "tcp"},
        {"port": None},
    ],
    "envs": None,
    "billingMode": "",
    "spotStatus": "",
    "spotReclaimTime": "0",
    "createdAt": "1700000000",
    "endTime": "-1",
    "connectComponentSSH": {"sshCommand": "ssh root@x", "password": "pw", "isRunning": True},
    "connectComponentJupyter": {"port": "8888", "address": "https://j", "isRunning": False},
    "connectComponentWebTerminal": {},
    "node": [{"maxRootfsSize": 100}],
    "volumeMounts": [{"type": "local", "size": 10}],
}


def test_instance_lenient_fields() -> None:
    instance = Instance.model_validate(INSTANCE)
    assert instance.status == "someFutureStatus"
    assert instance.status_error is None
    assert instance.cluster_name is None
    assert instance.image_auth_id is None
    assert (instance.gpu_num, instance.cpu_num, instance.memory) == (1, 16, 62)
    assert [pm.port for pm in instance.port_mappings] == [8888, 22]
    assert instance.port_mappings[1].endpoint is None
    assert instance.envs == []
    assert instance.billing_mode is None
    assert instance.spot_status is None
    assert instance.spot_reclaim_time is None
    assert instance.created_at == datetime.fromtimestamp(1700000000, UTC)
    assert instance.connect_component_ssh is not None
    assert instance.connect_component_ssh.ssh_command == "ssh root@x"
    assert instance.connect_component_jupyter is not None
    assert instance.connect_component_jupyter.port == 8888
    assert instance.connect_component_web_terminal is None


def test_instance_status_error_and_reclaim_time() -> None:
    instance = Instance.model_validate(
        {
            "id": "a",
            "status": "exited",
            "statusError": {"state": "pullFailed", "message": "image not found"},
            "spotReclaimTime": 1700000100,
            "createdAt": "garbage",
        }
    )
    assert instance.status_error is not None
    assert instance.status_error.message == "image not found"
    assert instance.spot_reclaim_time == datetime.fromtimestamp(1700000100, UTC)
    assert instance.created_at is None


def test_instance_page_total_as_string_and_missing() -> None:
    page = InstancePage.model_validate({"instances": [{"id": "a"}], "total": "250"})
    assert page.total == 250
    assert InstancePage.model_validate({"instances": [{"id": "a"}, {"id": "b"}]}).total == 2
    assert InstancePage.model_validate({"instances": None, "total": 0}).instances == []


def test_create_request_body_is_camel_case_without_nones() -> None:
    request = CreateInstanceRequest(
        name="nm-1",
        product_id="4090.16c62g",
        gpu_num=1,
        rootfs_size=60,
        image_url="nginx:latest",
        ports="8888/http,22/tcp",
        envs=[EnvVar(key="A", value="")],
        cluster_id="cn-hongkong-1",
    )
    assert request.to_body() == {
        "name": "nm-1",
        "productId": "4090.16c62g",
        "gpuNum": 1,
        "rootfsSize": 60,
        "imageUrl": "nginx:latest",
        "ports": "8888/http,22/tcp",
        "envs": [{"key": "A", "value": ""}],
        "clusterId": "cn-hongkong-1",
        "kind": "gpu",
        "billingMode": "onDemand",
    }
