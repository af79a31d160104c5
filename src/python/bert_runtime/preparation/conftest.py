"""Fixtures shared by the preparation tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory per test module for the fixtures it prepares (each prepared once there)."""
    return tmp_path_factory.mktemp("prepared")
