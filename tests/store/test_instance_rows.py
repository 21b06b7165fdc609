"""The read path's memo of port mappings and connection details (store/instance_rows.py): the same
stored text gives the same view without decoding it again, and the memo stays bounded."""

from __future__ import annotations

import orjson

from novita_manager.store import instance_rows
from novita_manager.store.instance_rows import MEMO_SIZE, Memo


def test_the_same_text_is_decoded_once() -> None:
    decoded: list[object] = []

    def build(stored: object) -> object:
        decoded.append(stored)
        return {"view": stored}

    memo = Memo(build)
    text = '[{"port": 22, "endpoint": "1.2.3.4:100", "type": "tcp"}]'
    first, again = memo[text], memo[text]
    assert first is again
    assert decoded == [orjson.loads(text)]


def test_the_memo_is_emptied_when_full() -> None:
    memo = Memo(lambda stored: stored)
    for index in range(MEMO_SIZE):
        memo[f"[{index}]"]
    assert len(memo) == MEMO_SIZE
    assert memo["[-1]"] == [-1]  # one more: emptied first, then remembered
    assert len(memo) == 1


def test_views_are_normalised_like_render_instance() -> None:
    ports = instance_rows._ports(
        [{"port": "22", "endpoint": "e", "type": "tcp", "extra": 1}, {"port": 80}]
    )
    assert ports == [
        {"port": 22, "endpoint": "e", "type": "tcp"},
        {"port": 80, "endpoint": None, "type": None},
    ]
    assert instance_rows._ports(None) == []
    assert instance_rows._connection(None) == {"ssh": None, "jupyter": None, "webTerminal": None}
    assert instance_rows._connection({"ssh": "s", "other": 1}) == {
        "ssh": "s",
        "jupyter": None,
        "webTerminal": None,
    }
