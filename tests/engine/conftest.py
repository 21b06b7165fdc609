"""Fixtures of the engine's step-level tests (tests/engine/steps.py)."""

from tests.engine.steps import steps

__all__ = ["steps"]
