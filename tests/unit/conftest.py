"""Hooks of the unit tests (the suite-wide leak check is in tests/conftest.py)."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

_hypothesis_home: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Keep Hypothesis's caches out of the source tree (it fills them while collecting)."""
    global _hypothesis_home
    _hypothesis_home = tempfile.mkdtemp(prefix="lumiera-hypothesis-")
    set_hypothesis_home_dir(_hypothesis_home)


def pytest_unconfigure(config: pytest.Config) -> None:
    set_hypothesis_home_dir(None)
    if _hypothesis_home is not None:
        shutil.rmtree(_hypothesis_home, ignore_errors=True)
