"""What the farm render tests share: a session whose frames carry their numbers, and checks.

The session shows m1's frames 0..19, then m2's (numbered from SECOND) from its
3rd on: ``EXPECTED[n]`` is the number output frame n must carry.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from lumiera.steam.core import SessionCore
from tests.support import render_cli
from tests.unit.vault.mediakit import read_code, write_video

FRAMES = 20  # m1's frames 0..19, then m2's (numbered from SECOND) from its 3rd on
SECOND = 1000
RATE = 25
LENGTH = 2 * FRAMES
EXPECTED = [n if n < FRAMES else SECOND + 2 + n - FRAMES for n in range(LENGTH)]
EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 69, 130


def write_session(where: Path) -> Path:
    """A 2-clip session file ``cut.lumiera`` in ``where`` (the media m1.mkv, m2.mkv beside it)."""
    session = where / "cut.lumiera"
    m1 = write_video(where / "m1.mkv", FRAMES, "ffv1")
    m2 = write_video(where / "m2.mkv", FRAMES + 2, "ffv1", first=SECOND)
    commands: list[tuple[str, dict[str, Any]]] = [
        ("add_media", {"path": str(m1)}),
        ("add_media", {"path": str(m2)}),
        ("add_track", {"name": "V1"}),
        ("set_output", {"width": 64, "height": 48, "rate": str(RATE)}),
        ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": FRAMES}),
        (
            "add_clip",
            {
                "media": "m2",
                "track": "t1",
                "position": FRAMES,
                "source_in": 2,
                "source_out": FRAMES + 2,
            },
        ),
    ]
    core = SessionCore(session)
    try:
        for command, args in commands:
            core.execute(command, args)
    finally:
        core.close()
    return session


def decoded(path: Path) -> tuple[list[av.VideoFrame], Fraction, list[Fraction]]:
    """The frames, the container's duration (s) and each frame's time (s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert container.duration is not None and stream.time_base is not None
        times = [Fraction(f.pts) * stream.time_base for f in frames if f.pts is not None]
        return frames, Fraction(container.duration, av.time_base), times


def codes(frames: list[av.VideoFrame]) -> list[int]:
    return [read_code(f.to_ndarray(format="gray")) for f in frames]


def only(directory: Path, *names: str) -> None:
    """Nothing but ``names`` in the directory (no temp parts, no partial file)."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


render = render_cli  # the suite's one: tests/support.py
