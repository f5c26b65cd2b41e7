"""Helpers of the session tests: a fake probe, real media files, and a session file's bytes.

The fake probe reads a media's frame count from its file name
(``/media/v10.mov`` has 10 frames); a name containing ``missing`` is a
MediaError, as the real probe says for a file that is not there. Real media is
written with PyAV (H.264 in MP4 or Matroska, a few frames of 64x48).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from lumiera.errors import MediaError
from lumiera.steam.core import SessionCore
from tests.support import write_audio_only

MEDIA_10 = "/media/v10.mov"
MEDIA_20 = "/media/v20.mov"
MISSING = "/media/missing.mov"


def fake_probe(path: str) -> dict[str, Any]:
    """What probe_media would say of ``path``, made up from its name."""
    name = os.path.basename(path)
    if "missing" in name:
        raise MediaError(f"media {path}: No such file or directory")
    found = re.search(r"\d+", name)
    return {
        "frames": int(found.group()) if found else 100,
        "rate": "25",
        "width": 64,
        "height": 48,
        "pix_fmt": "yuv420p",
        "size": 4096,
        "mtime_ns": 1_700_000_000_000_000_000,
    }


def open_core(path: Path, snapshot_every: int = 1000, undo_depth: int = 1000) -> SessionCore:
    return SessionCore(path, probe=fake_probe, snapshot_every=snapshot_every, undo_depth=undo_depth)


def state(core: SessionCore) -> dict[str, Any]:
    """Everything a client can see of a session: its description and its history."""
    return {"describe": core.describe(), "history": core.history()}


def content(core: SessionCore) -> dict[str, Any]:
    """The edit itself (media, tracks, clips, output), without revision or file facts."""
    data = core.describe()
    return {k: v for k, v in data.items() if k not in ("revision", "journal_rows", "file")}


def journal_rows(path: Path) -> int:
    """The journal's row count as another reader of the file sees it."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])
    finally:
        db.close()


def file_bytes(path: Path) -> dict[str, bytes]:
    """The bytes of a session file and of its -wal (or -journal) companion, where they exist.

    The -shm file is left out: it is SQLite's shared-memory index, which readers
    write to as well, not part of what the session file holds.
    """
    found = {}
    for name in (path.name, path.name + "-wal", path.name + "-journal"):
        p = path.with_name(name)
        if p.exists():
            found[name] = p.read_bytes()
    return found


def make_video(
    path: Path, frames: int = 5, rate: int | Fraction = 25, width: int = 64, height: int = 48
) -> Path:
    """Write ``frames`` frames of H.264 video (a grey ramp) to ``path`` (.mp4, .mkv)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 40) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_audio(path: Path) -> Path:
    """A WAV file: media, but no video stream."""
    return write_audio_only(path)


SETUP: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": MEDIA_10}),  # m1: 10 frames
    ("add_media", {"path": MEDIA_20}),  # m2: 20 frames
    ("add_track", {"name": "V1"}),  # t1
    ("add_track", {"name": "V2"}),  # t2
    ("add_clip", {"media": "m1", "track": "t1", "position": 0}),  # c1: 0..10
    ("add_clip", {"media": "m2", "track": "t1", "position": 20, "source_in": 5}),  # c2: 20..35
]


def set_up(core: SessionCore) -> None:
    """Media m1 (10 frames), m2 (20), tracks t1 < t2, clips c1 (0..10) and c2 (20..35) on t1."""
    for command, args in SETUP:
        core.execute(command, args)


@contextlib.contextmanager
def opened(path: Path, snapshot_every: int = 1000, undo_depth: int = 1000) -> Iterator[SessionCore]:
    core = open_core(path, snapshot_every, undo_depth)
    try:
        yield core
    finally:
        core.close()
