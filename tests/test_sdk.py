"""The typed SDK against a real service: operation requests and their log."""

from __future__ import annotations

import asyncio
from typing import Any

from novita_manager.sdk import AsyncManagerClient, CreateInstance, ManagerClient
from tests.api.test_instances_e2e import wait_status
from tests.fixtures.waiting import wait_for


def test_sdk_requests_and_their_outcomes(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    with ManagerClient(service.base_url) as client:
        created = client.create_instance(CreateInstance("sdk-1", "RTX 4090 24GB", "1"))
        instance_id = created["instanceId"]
        wait_status(service, instance_id, "running")
        stop = client.stop_instance(instance_id)
        assert (stop["status"], stop["requestSeq"]) == ("stopping", 1)
        done = wait_for(
            lambda: client.operations(instance_id)["operations"][0]["state"] == "succeeded",
            what="the stop's outcome",
        )
        assert done

    async def start() -> dict[str, Any]:
        async with AsyncManagerClient(service.base_url) as client:
            started = await client.start_instance(instance_id)
            assert started["requestSeq"] == 2
            return await client.operations(instance_id)

    log = asyncio.run(start())
    assert [op["operation"] for op in log["operations"]] == ["stop", "start"]
