"""The JSON columns go through orjson (store/json_codec.py) on both databases: what is written
reads back equal, and the stored text is orjson's (compact, UTF-8), not the standard library's."""

from __future__ import annotations

from sqlalchemy import Text, cast, select

from novita_manager.store.db import Database
from novita_manager.store.json_codec import dumps
from novita_manager.store.models import Instance
from tests.engine.steps import insert_instance, load

OBSERVATION = {
    "status": "running",
    "name": "日本語-ü",
    "portMappings": [{"port": 8888, "endpoint": "http://h:1", "type": "http"}],
    "price": 0.35,
    "big": 2**53,
    "none": None,
    "nested": {"a": [1, 2.5, True, {"b": None}]},
}


async def test_json_columns_round_trip_through_orjson(db: Database) -> None:
    row_id = await insert_instance(db, observation=OBSERVATION, connection_details={"ssh": "x"})
    row = await load(db, row_id)
    assert row.observation == OBSERVATION
    assert row.connection_details == {"ssh": "x"}
    async with db.session() as session:
        stored = await session.scalar(
            select(cast(Instance.observation, Text)).where(Instance.id == row_id)
        )
    assert stored is not None
    assert "日本語-ü" in stored  # the standard library would have written \\u65e5...
    assert ", " not in stored  # compact


def test_keys_that_are_not_strings_are_written_as_strings() -> None:
    assert dumps({1: "a", "b": [1.5]}) == '{"1":"a","b":[1.5]}'
