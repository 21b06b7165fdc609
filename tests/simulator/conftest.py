"""The simulator's own tests describe the `classic` profile unless a test chooses another
(indirect parametrisation), whatever `--simulator-profile` or DEFAULT_PROFILE say."""

from __future__ import annotations

import pytest


@pytest.fixture
def simulator_profile(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", None) or "classic")
