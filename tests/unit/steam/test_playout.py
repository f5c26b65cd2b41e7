"""The Player's parts: the viewer's preview (the output scaled down to fit the GUI's box,
never up), its render ring's size, its engine watcher."""

from __future__ import annotations

import contextlib
import os
import time
from fractions import Fraction
from typing import Any

import pytest

from lumiera.bus.timeline import Output, Timeline
from lumiera.runtime_dir import RuntimeDir
from lumiera.steam.playout import (
    RENDER_RING_MB,
    EngineWatcher,
    PlayerRings,
    preview,
    yuv420p_slot_mb,
)
from lumiera.vault.streamspec import render_slots


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1920, 1080), (960, 540), (960, 540)),
        ((3840, 2160), (960, 540), (960, 540)),
        ((1920, 1080), (1280, 1280), (1280, 720)),
        ((1080, 1920), (960, 540), (304, 540)),  # portrait: the height limits, sides even
        ((1440, 1080), (960, 540), (720, 540)),
        ((641, 481), (320, 320), (320, 240)),
        ((5000, 3), (100, 100), (100, 2)),  # never below 2 pixels
    ],
)
def test_a_larger_output_is_scaled_down_to_fit_the_box_with_even_sides(size, box, expected):
    timeline = Timeline(output=Output(width=size[0], height=size[1], rate=Fraction(30000, 1001)))
    shown = preview(timeline, box)
    assert (shown.output.width, shown.output.height) == expected
    assert shown.output.rate == Fraction(30000, 1001)
    assert shown.clips == timeline.clips and shown.media == timeline.media


@pytest.mark.parametrize("size", [(64, 48), (960, 540), (33, 17)])
def test_an_output_that_fits_is_played_at_its_own_size(size):
    timeline = Timeline(output=Output(width=size[0], height=size[1]))
    assert preview(timeline, (960, 540)) is timeline


# -- the Player's render ring ---------------------------------------------------------------


class Requests:
    """A control client that records what it is asked (the ring is appstate's to make)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, target: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((target, command, args))
        return {}


def test_a_frame_s_yuv420p_slot_is_its_size_rounded_up_to_whole_mib():
    assert yuv420p_slot_mb(1920, 1080) == 3  # 3,110,400 B
    assert yuv420p_slot_mb(3840, 2160) == 12
    assert yuv420p_slot_mb(33, 17) == 1  # odd sides: chroma rounds up; at least 1 MiB
    assert yuv420p_slot_mb(1024, 1024) == 2  # exactly 1.5 MiB -> 2


@pytest.mark.parametrize(
    ("workers", "size", "slots"),
    [
        (2, (1920, 1080), render_slots(2)),  # the Engine's window and 2: 8 x 3 MiB
        (16, (1920, 1080), RENDER_RING_MB // 3),  # 36 wanted: within 32 MiB of /dev/shm
        (16, (3840, 2160), 4),  # 4K: RING_KINDS' 4 slots at least, as before
        (1, (640, 360), render_slots(1)),
    ],
)
def test_the_render_ring_has_a_slot_per_frame_of_the_window_within_its_budget(
    workers: int, size: tuple[int, int], slots: int
):
    client = Requests()
    rings = PlayerRings(lambda: client, workers)  # type: ignore[arg-type, return-value]
    name = rings.frames("render", *size)
    assert name == f"render-{size[0]}x{size[1]}"
    assert rings.frames("render", *size) == name  # made once
    [(target, command, args)] = client.asked
    assert (target, command) == ("appstate", "create_ring")
    assert args == {
        "name": name,
        "policy": "block",
        "slots": slots,
        "slot_mb": yuv420p_slot_mb(*size),
    }


# -- the engine watcher -----------------------------------------------------------------------


def links() -> set[str]:
    """What this process's file descriptors are (``pipe:[inode]``, ``socket:[...]``, paths)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own fd)
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_the_engine_watcher_ends_at_once_on_stop_and_closes_its_pipe(tmp_path):
    rd = RuntimeDir(tmp_path, "w", default_location=False)  # nothing bound: no event comes
    watcher = EngineWatcher(lambda ended: None)
    watcher.close()  # never started: nothing to close
    before = links()
    watcher.start(rd)
    pipe = {link for link in links() - before if link.startswith("pipe:")}
    assert len(pipe) == 1  # its wake-up pipe (both ends)
    time.sleep(0.1)  # in its wait for an event
    started = time.monotonic()
    watcher.stop()
    watcher.thread.join(EngineWatcher.WAIT_S * 5)
    assert not watcher.thread.is_alive()
    assert time.monotonic() - started < EngineWatcher.WAIT_S / 2  # woken, not timed out
    watcher.close()
    watcher.close()  # twice: harmless
    assert not pipe & links()  # both ends closed
