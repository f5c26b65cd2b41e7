"""Hooks of the fuzz tests: the profile (see :mod:`.profiles`) and a tally for ``tools/fuzz.py``.

With ``LUMIERA_FUZZ_REPORT=FILE`` the number of cases each test ran is
written to FILE as JSON at the end of the session.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.fuzz.profiles import CASES, PROFILE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report = os.environ.get("LUMIERA_FUZZ_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump({"profile": PROFILE, "cases": dict(CASES)}, f)
