"""The fuzz profiles: ``ci`` (the default) and ``long``, picked by ``LUMIERA_FUZZ_PROFILE``.

``ci``: few examples, derandomized, so the normal test run is deterministic
and short. ``long``: many examples, random; what ``tools/fuzz.py`` runs.
``LUMIERA_FUZZ_SCALE`` multiplies the long profile's examples and the live
tests' time per socket. The profile is applied to the fuzz tests only (as
the decorator :data:`FUZZ`), not loaded globally, so the rest of the suite
keeps its own settings when it runs in the same process.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("LUMIERA_FUZZ_PROFILE", "ci")
SCALE = max(0.01, float(os.environ.get("LUMIERA_FUZZ_SCALE", "1")))
LONG = PROFILE == "long"

_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile(
    "long",
    max_examples=max(10, int(1000 * SCALE)),
    derandomize=False,
    **_COMMON,  # type: ignore[arg-type]
)
if PROFILE not in ("ci", "long"):
    raise ValueError(f"LUMIERA_FUZZ_PROFILE={PROFILE!r}: ci or long")

FUZZ = settings.get_profile(PROFILE)
"""The selected profile, as a decorator for the fuzz tests."""

LIVE_SECONDS = float(os.environ.get("LUMIERA_FUZZ_LIVE_S") or (40.0 * SCALE if LONG else 1.5))
"""Seconds of garbage per socket in the live tests (``LUMIERA_FUZZ_LIVE_S`` overrides)."""

CASES: Counter[str] = Counter()
"""Cases run per test (the tests count them), for ``tools/fuzz.py``'s report."""


def count(test: str, n: int = 1) -> None:
    CASES[test] += n
