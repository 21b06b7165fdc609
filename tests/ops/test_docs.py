"""Generated documents stay in step with the code: docs/openapi.json, docs/configuration.md,
.env.example; the webhook receiver example verifies what the service signs; README links."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from novita_manager.config import Settings
from novita_manager.engine.webhook_outcome import encode_body
from novita_manager.webhooks.signing import WebhookSigner

ROOT = Path(__file__).resolve().parents[2]


def load(relative: str) -> ModuleType:
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def test_openapi_json_matches_the_app() -> None:
    exporter = load("scripts/export_openapi.py")
    expected = exporter.render(exporter.openapi_document())
    assert (ROOT / "docs/openapi.json").read_text() == expected, (
        "docs/openapi.json is out of date: run scripts/export_openapi.py"
    )
    paths = json.loads(expected)["paths"]
    for path in ("/api/instances", "/health", "/health/live", "/health/ready", "/metrics"):
        assert path in paths


def test_configuration_md_and_env_example_match_settings() -> None:
    generator = load("scripts/gen_config_docs.py")
    for path, text in generator.outputs().items():
        assert path.read_text() == text, f"{path.name} drifted: run scripts/gen_config_docs.py"


def test_env_example_names_exactly_the_settings_variables() -> None:
    names = re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE)
    assert sorted(names) == sorted(name.upper() for name in Settings.model_fields)
    assert len(names) == len(set(names))


def test_env_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied to .env with only the simulator URL changed, it configures a working service."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("NOVITA_API_BASE_URL", "http://127.0.0.1:8900/gpu-instance/openapi")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings == Settings(
        _env_file=None,  # type: ignore[call-arg]
        novita_api_base_url="http://127.0.0.1:8900/gpu-instance/openapi",
    )


@pytest.mark.parametrize("secret", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "plain-secret-1"])
def test_receiver_example_verifies_the_services_signature(secret: str) -> None:
    receiver = load("docs/examples/webhook_receiver.py")
    payload = {
        "type": "instance.running",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"instanceId": "i-1", "status": "running", "instance": {"name": "ü"}},
    }
    body = encode_body(payload)
    headers = WebhookSigner(secret).headers("wh_1", datetime.now(UTC), body)
    assert receiver.verify(secret, body, dict(headers)) == payload
    with pytest.raises(receiver.WebhookVerificationError):
        receiver.verify(secret, body.replace(b"running", b"failed!"), dict(headers))
    with pytest.raises(receiver.WebhookVerificationError):
        receiver.verify("another-secret", body, dict(headers))


def test_readme_points_to_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in (
        "docs/api.md",
        "docs/configuration.md",
        "docs/deployment.md",
        "docs/operations.md",
        "docs/troubleshooting.md",
        "docs/webhook-receiver.md",
        "docs/openapi.json",
    ):
        assert f"({doc})" in readme, doc
        assert (ROOT / doc).exists(), doc


def test_troubleshooting_covers_every_error_code() -> None:
    text = (ROOT / "docs/troubleshooting.md").read_text()
    codes = ["VALIDATION_ERROR", "UNAUTHORIZED", "INSTANCE_NOT_FOUND", "INVALID_STATE"]
    codes += ["IDEMPOTENCY_KEY_REUSED", "RATE_LIMITED", "UPSTREAM_ERROR", "UPSTREAM_UNAVAILABLE"]
    codes += ["INTERNAL_ERROR", "NOT_FOUND", "PAYLOAD_TOO_LARGE"]
    for code in codes:
        assert f"`{code}`" in text, code
