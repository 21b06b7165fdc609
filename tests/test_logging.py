from __future__ import annotations

import io
import logging

import structlog

from novita_manager.logging import bound_context, configure_logging, get_logger, register_secrets
from tests.fixtures.logs import CapturedLogs


def test_secret_keys_are_masked_at_any_depth(captured_logs: CapturedLogs) -> None:
    get_logger("t").info(
        "upstream_call",
        headers={"Authorization": "Bearer sk_live_abcdef", "Accept": "application/json"},
        body={
            "imageAuth": "user:hunter2",
            "imageAuthId": "auth-1",
            "envs": [{"key": "A", "value": "b"}],
            "nested": {"password": "pw-123456", "webhook_secret": "whsec_AAAA"},
        },
        api_key="sk_live_abcdef",
    )
    text = captured_logs.text
    assert "sk_live_abcdef" not in text
    assert "hunter2" not in text
    assert "pw-123456" not in text
    assert "whsec_AAAA" not in text
    record = captured_logs.events("upstream_call")[0]
    assert record["body"]["imageAuthId"] == "auth-1"  # an id, not a secret
    assert record["headers"]["Accept"] == "application/json"


def test_known_secret_values_are_scrubbed_from_free_text(captured_logs: CapturedLogs) -> None:
    register_secrets(["sk_registered_secret_value"])
    log = get_logger("t")
    log.warning("failed: token sk_registered_secret_value was refused")
    try:
        raise RuntimeError("boom with Bearer sk_inline_999 inside")
    except RuntimeError:
        log.exception("crashed")
    text = captured_logs.text
    assert "sk_registered_secret_value" not in text
    assert "sk_inline_999" not in text
    assert "RuntimeError" in text  # the trace is still there


def test_standard_library_loggers_are_redacted_too(captured_logs: CapturedLogs) -> None:
    import logging

    logging.getLogger("uvicorn.error").warning("header Authorization: Bearer sk_std_lib_1")
    assert "sk_std_lib_1" not in captured_logs.text
    assert captured_logs.records[-1]["logger"] == "uvicorn.error"


def test_request_id_is_bound_to_every_line(captured_logs: CapturedLogs) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-42"):
        get_logger("t").info("one")
        get_logger("t").info("two")
    assert [r["request_id"] for r in captured_logs.records] == ["req-42", "req-42"]


def test_a_traceback_is_scrubbed_and_shows_no_locals_in_the_console_format() -> None:
    stream = io.StringIO()
    register_secrets(["sk_console_secret_1"])
    configure_logging("info", "console", stream=stream)
    try:
        api_key = "sk_local_value_2"  # a local of the failing frame
        raise RuntimeError(f"refused sk_console_secret_1 ({len(api_key)})")
    except RuntimeError:
        get_logger("t").exception("crashed")
    finally:
        configure_logging("warning", "json")
    text = stream.getvalue()
    assert "RuntimeError: refused *** (16)" in text
    assert "sk_console_secret_1" not in text
    assert "sk_local_value_2" not in text


def test_structlog_and_standard_library_lines_share_one_json_shape(
    captured_logs: CapturedLogs,
) -> None:
    """structlog's lines are rendered in its own chain (`_render_line`), the standard library's
    by the handler's formatter: the same keys either way, each line rendered once."""
    with structlog.contextvars.bound_contextvars(instance_id="i-1"):
        get_logger("mine").warning("plain %s", "positional", n=1)
        logging.getLogger("tests.theirs").warning("theirs %s", "positional")
    mine, theirs = captured_logs.records[-2:]
    assert (
        mine.keys() - {"n"}
        == theirs.keys()
        == {
            "event",
            "instance_id",
            "level",
            "logger",
            "timestamp",
        }
    )
    assert (mine["event"], mine["n"], theirs["event"]) == (
        "plain positional",
        1,
        "theirs positional",
    )
    assert len(captured_logs.text.strip().splitlines()) == len(captured_logs.records)


def test_bound_context_nests_and_gives_back_what_was_bound_before(
    captured_logs: CapturedLogs,
) -> None:
    log = get_logger("t")
    with bound_context(pipeline="provisioning", row_id="r-1"):
        with bound_context(row_id="r-2", instance_id="i-2", request_id=None):
            log.warning("inner")
        log.warning("outer")
        try:
            with bound_context(row_id="r-3"):
                raise RuntimeError("leaves the block")
        except RuntimeError:
            log.warning("after_error")
    log.warning("none")
    context = {
        record["event"]: {key: record.get(key) for key in ("pipeline", "row_id", "instance_id")}
        for record in captured_logs.records
    }
    assert context == {
        "inner": {"pipeline": "provisioning", "row_id": "r-2", "instance_id": "i-2"},
        "outer": {"pipeline": "provisioning", "row_id": "r-1", "instance_id": None},
        "after_error": {"pipeline": "provisioning", "row_id": "r-1", "instance_id": None},
        "none": {"pipeline": None, "row_id": None, "instance_id": None},
    }
    assert all("request_id" not in record for record in captured_logs.records)
