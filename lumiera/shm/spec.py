"""Ring declarations: ``NAME:POLICY[:SLOTS[:SLOT_MB]]``, as in ``[rings] declared`` of setup.ini.

Light on purpose (no numpy): the configuration checks declarations with it
before anything starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RING_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
POLICIES = ("block", "drop")


@dataclass(frozen=True)
class RingSpec:
    """One ring to create: its name, policy, slot count and payload bytes per slot."""

    name: str
    policy: str
    slots: int
    slot_bytes: int


def parse_specs(text: str, default_slots: int, default_slot_mb: int) -> list[RingSpec]:
    """Parse a comma-separated list of declarations; ValueError says what is wrong."""
    specs: list[RingSpec] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        fields = item.split(":")
        if not 2 <= len(fields) <= 4:
            raise ValueError(f"{item!r}: expected NAME:POLICY[:SLOTS[:SLOT_MB]]")
        name, policy = fields[0], fields[1].lower()
        if not RING_NAME.fullmatch(name):
            raise ValueError(f"{item!r}: ring name must be 1-32 of a-z 0-9 _ -")
        if policy not in POLICIES:
            raise ValueError(f"{item!r}: policy must be block or drop")
        try:
            slots = int(fields[2]) if len(fields) > 2 else default_slots
            slot_mb = int(fields[3]) if len(fields) > 3 else default_slot_mb
        except ValueError:
            raise ValueError(f"{item!r}: SLOTS and SLOT_MB are whole numbers") from None
        if not 1 <= slots <= 1024 or not 1 <= slot_mb <= 4096:
            raise ValueError(f"{item!r}: SLOTS must be 1-1024 and SLOT_MB 1-4096")
        if name in (s.name for s in specs):
            raise ValueError(f"{item!r}: ring {name} is declared twice")
        specs.append(RingSpec(name, policy, slots, slot_mb * 2**20))
    return specs


def check_name(name: str) -> str:
    """``name`` if it is a valid ring name, else ValueError saying what one is."""
    if not RING_NAME.fullmatch(name):
        raise ValueError(
            f"ring name {name!r}: 1-32 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return name
