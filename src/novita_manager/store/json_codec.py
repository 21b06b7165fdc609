"""How the JSON columns (observations, port mappings, connection details, webhook payloads) are
written and read: orjson instead of the standard library's `json`, which SQLAlchemy uses by
default. A burst's writes encode an observation and a payload per instance; the standard
library's encoder and decoder were about 2.4 % of the pipeline process's CPU in `bench.burst`.

The stored text is compact UTF-8 instead of spaced, ASCII-escaped text: the same JSON. Keys
that are not strings are written as strings, as `json` does (`OPT_NON_STR_KEYS`).
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


JSON_CODEC: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": orjson.loads}
