"""Without PostgreSQL the tests are skipped with a visible reason, or fail when CI requires it."""

from __future__ import annotations

import pytest

from tests.fixtures import postgres


def test_missing_postgres_skips_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        postgres._unavailable(postgres.NOT_INSTALLED)


def test_missing_postgres_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="NOVITA_MANAGER_REQUIRE_POSTGRES=1"):
        postgres._unavailable(postgres.NOT_INSTALLED)
