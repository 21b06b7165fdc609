from __future__ import annotations

import subprocess
import sys

import pytest

from novita_manager.config import ConfigurationError, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(novita_api_key="sk_test")
    assert settings.novita_api_base_url == "https://api.novita.ai/gpu-instance/openapi"
    assert settings.host == "127.0.0.1"
    assert settings.port == 3000
    assert settings.default_region == "CN-HK-01"
    assert settings.instance_poll_interval == 30
    assert settings.instance_startup_timeout == 600
    assert settings.request_timeout == 30
    assert settings.max_retry_attempts == 3
    assert settings.webhook_timeout == 10
    assert settings.webhook_allow_private is False
    assert settings.cache_ttl == 300
    assert settings.log_level == "info"
    assert settings.log_format == "json"
    assert settings.database_url.startswith("sqlite+aiosqlite:///./data/")


def test_environment_and_fractional_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVITA_API_KEY", "sk_live_123456")
    monkeypatch.setenv("INSTANCE_POLL_INTERVAL", "0.05")
    monkeypatch.setenv("API_KEYS", "alpha-key, beta-key,")
    monkeypatch.setenv("LOG_FORMAT", "CONSOLE")
    settings = load_settings()
    assert settings.instance_poll_interval == pytest.approx(0.05)
    assert [key.get_secret_value() for key in settings.api_keys] == ["alpha-key", "beta-key"]
    assert settings.log_format == "console"
    assert "sk_live_123456" not in repr(settings)


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("NOVITA_API_KEY=sk_from_env_file\nPORT=4100\n")
    settings = load_settings()
    assert settings.port == 4100
    assert settings.novita_key == "sk_from_env_file"


def test_key_optional_for_the_local_simulator() -> None:
    settings = load_settings(novita_api_base_url="http://127.0.0.1:8900/gpu-instance/openapi")
    assert settings.novita_api_key is None
    assert settings.novita_key  # a placeholder the simulator accepts


def test_several_bad_variables_give_one_message_naming_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    monkeypatch.setenv("INSTANCE_POLL_INTERVAL", "-1")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    monkeypatch.setenv("WEBHOOK_URL", "ftp://example.com/hook")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    for variable in (
        "PORT",
        "LOG_LEVEL",
        "INSTANCE_POLL_INTERVAL",
        "DATABASE_URL",
        "WEBHOOK_URL",
        "NOVITA_API_KEY",
    ):
        assert variable in message, message
    assert "Traceback" not in message


def test_secret_values_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_c2VjcmV0")
    monkeypatch.setenv("PORT", "nope")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "whsec_c2VjcmV0" not in str(caught.value)


def test_a_database_password_is_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://admin:hunter2-secret@db.example:3306/x")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)
    assert "admin:***@db.example" in str(caught.value)


def test_serve_exits_2_with_one_message(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PORT": "0x", "LOG_LEVEL": "loud", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "novita_manager", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "LOG_LEVEL" in result.stderr
    assert "NOVITA_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_signing_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_not base64!!")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(novita_api_key="sk_test")
    assert "WEBHOOK_SECRET" in str(caught.value)
    assert "not base64!!" not in str(caught.value)


def test_default_webhook_url_obeys_the_ssrf_policy() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(novita_api_key="sk_test", webhook_url="http://169.254.169.254/latest")
    assert "WEBHOOK_URL" in str(caught.value)
    allowed = load_settings(
        novita_api_key="sk_test", webhook_url="http://127.0.0.1:9/hook", webhook_allow_private=True
    )
    assert allowed.webhook_url == "http://127.0.0.1:9/hook"
