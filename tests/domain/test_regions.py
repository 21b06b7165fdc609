from __future__ import annotations

import pytest

from novita_manager.domain.regions import offered_in, region_code, resolve_cluster
from novita_manager.novita.models import Cluster

CLUSTERS = [
    Cluster.model_validate({"id": "cn-hongkong-1", "name": "CN-HK-01"}),
    Cluster.model_validate({"id": "us-ca-6", "name": "US-CA-06"}),
]


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("CN-HK-01", "cn-hongkong-1"),
        ("cn-hk-01", "cn-hongkong-1"),
        ("cn-hongkong-1", "cn-hongkong-1"),
        ("US-CA-06 (California)", "us-ca-6"),
        ("EU-XX-99", None),
    ],
)
def test_resolve_by_code_id_or_labelled_name(region: str, expected: str | None) -> None:
    cluster = resolve_cluster(region, CLUSTERS)
    assert (cluster.id if cluster else None) == expected


def test_region_code_strips_labels() -> None:
    assert region_code("US-01 (Dallas)") == "us-01"
    assert region_code(" CN-HK-01 ") == "cn-hk-01"


def test_offered_in() -> None:
    assert offered_in([], CLUSTERS[0])
    assert offered_in(["US-CA-06 (California)"], CLUSTERS[1])
    assert not offered_in(["US-CA-06 (California)"], CLUSTERS[0])
