"""How many background processes `serve` (role all) runs (`background_processes`)."""

from __future__ import annotations

import pytest

from novita_manager.cli.pipeline_worker import background_processes
from novita_manager.config import ConfigurationError, Settings, load_settings

POSTGRES = "postgresql+asyncpg://nm@127.0.0.1:5432/nm"
SQLITE = "sqlite+aiosqlite:///./data/x.db"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NOVITA_API_KEY", "sk_test")
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (None, 1), (64, 2)])
def test_on_postgresql_two_when_the_machine_has_two_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, expected: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)  # the machine's cores cannot be changed
    assert background_processes(load_settings(database_url=POSTGRES)) == expected


def test_sqlite_runs_one_and_an_explicit_count_wins() -> None:
    assert background_processes(load_settings(database_url=SQLITE)) == 1
    assert background_processes(load_settings(database_url=SQLITE, pipeline_processes=1)) == 1
    assert background_processes(load_settings(database_url=POSTGRES, pipeline_processes=3)) == 3
    assert background_processes(load_settings(database_url=POSTGRES, pipeline_processes=1)) == 1
    with pytest.raises(ConfigurationError, match="PIPELINE_PROCESSES=2 needs PostgreSQL"):
        load_settings(database_url=SQLITE, pipeline_processes=2)
