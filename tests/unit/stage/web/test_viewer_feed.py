"""The viewer feed with a real ring and no browser: pictures, acks, latest frame wins.

A page here is a list its ``send`` appends to. Frames carry their number in
their pixels (:mod:`tests.unit.vault.mediakit`), so a picture is checked by
decoding its JPEG and reading the code back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import numpy as np
import pytest
import simplejpeg  # type: ignore[import-untyped]

from lumiera import config
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, Policy, frame_bytes
from lumiera.stage.gui.uibus import FRAME_HEADER
from lumiera.stage.web import viewer
from lumiera.stage.web.viewer import ViewerFeed
from tests.unit.shm.ringkit import RingKit, ring_kit
from tests.unit.vault.mediakit import coded_planes, read_code

WAIT_S = 10.0  # the longest any wait of these tests may take
W, H = 64, 48


@pytest.fixture
def kit() -> Iterator[RingKit]:
    with ring_kit() as k:
        yield k


class Page:
    """A page's viewer: what it was sent."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.got.append(data)

    def frames(self) -> list[int]:
        return [FRAME_HEADER.unpack_from(d)[0] for d in self.got]


def holds(page: Page, count: int) -> Callable[[], bool]:
    """Whether ``page`` was sent ``count`` pictures."""
    return lambda: len(page.got) == count


def picture(data: bytes) -> tuple[int, float, int]:
    """(frame number, publish time, the number coded in its pixels) of a picture."""
    frame, published = FRAME_HEADER.unpack_from(data)
    gray = simplejpeg.decode_jpeg(data[FRAME_HEADER.size :], colorspace="GRAY")
    return frame, published, read_code(gray[..., 0])


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.002)


def run(
    kit: RingKit,
    test: Callable[[ViewerFeed, ring.Producer], Coroutine[Any, Any, None]],
    *,
    size: tuple[int, int] = (W, H),
    locate: Callable[[], str | None] = lambda: "v",
) -> None:
    """Run ``test`` with a feed reading ring ``v`` (yuv420p, drop policy) and its producer."""
    kit.create(
        "v", slots=4, payload_bytes=frame_bytes(PixelFormat.RGB24, *size), policy=Policy.DROP
    )
    producer = kit.producer("v")

    async def main() -> None:
        feed = ViewerFeed(kit.rd, config.load(), locate=locate)
        await feed.start()
        try:
            await until(lambda: feed.ring == "v", "the feed attached to the ring")
            await test(feed, producer)
        finally:
            await feed.stop()

    asyncio.run(main())


def put(producer: ring.Producer, number: int) -> None:
    """Write frame ``number``; a drop ring whose slots the reader holds (a loaded machine)
    refuses it for a moment, so it is written again shortly (the reader is a thread)."""
    deadline = time.monotonic() + WAIT_S
    while not producer.write(coded_planes(number, W, H), PixelFormat.YUV420P, pts=number):
        assert time.monotonic() < deadline, f"frame {number}: every slot held"
        time.sleep(0.005)


def test_a_page_that_acks_each_picture_gets_every_frame_as_a_jpeg_of_it(kit):
    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        page = Page()
        feed.add_page(1, page.send)
        feed.ack(1, True, None)
        for n in range(20):
            before = time.monotonic()
            put(producer, n)
            await until(holds(page, n + 1), f"picture {n}")
            frame, published, code = picture(page.got[-1])
            assert (frame, code) == (n, n)
            assert before <= published <= time.monotonic()  # the ring's publish time
            feed.ack(1, True, frame)
        assert feed.counts(1) == (20, 0, 19)

    run(kit, test)


def test_a_page_that_never_acks_gets_nothing_new_and_memory_stays_bounded(kit):
    size = (320, 240)
    rng = np.random.default_rng(5)
    noise = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(4)]
    count = 150

    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        page = Page()
        feed.add_page(1, page.send)
        feed.ack(1, True, None)

        async def put_rgb(n: int) -> None:
            # A drop ring refuses a frame while the reader holds every slot (a loaded
            # machine): written again shortly, so every frame goes in once.
            deadline = time.monotonic() + WAIT_S
            while not producer.write(noise[n % 4], PixelFormat.RGB24, pts=n):
                assert time.monotonic() < deadline, f"frame {n}: every slot held"
                await asyncio.sleep(0.005)

        await put_rgb(0)
        await until(lambda: len(page.got) == 1, "the first picture")
        size_one = len(page.got[0])
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(1, count):
                await put_rgb(n)
                await asyncio.sleep(0.001)  # the loop takes the pictures as they come
            await until(lambda: feed.read + feed.missed == count, "every frame read or missed")
            await asyncio.sleep(0.05)  # the last picture's hand-over to the loop
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        sent, dropped, last = feed.counts(1)
        assert (len(page.got), sent, last) == (1, 1, 0)  # nothing new without an ack
        assert dropped == count - 2  # all but the one sent and the one waiting
        assert grown < 3 * size_one, (grown, size_one)  # one waiting, not a queue of 149
        feed.ack(1, True, 0)  # now the newest comes, and only it
        await until(lambda: len(page.got) == 2, "the newest picture after the ack")
        assert page.frames() == [0, count - 1]
        assert feed.counts(1) == (2, count - 2, count - 1)

    run(kit, test, size=size)


def test_a_slow_page_gets_the_newest_frame_and_those_between_count_as_dropped(kit):
    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        slow, quick = Page(), Page()
        feed.add_page(1, slow.send)
        feed.add_page(2, quick.send)
        feed.ack(1, True, None)
        feed.ack(2, True, None)
        for n in range(10):
            put(producer, n)
            await until(holds(quick, n + 1), f"picture {n} to the quick page")
            feed.ack(2, True, n)
        assert slow.frames() == [0]
        feed.ack(1, True, 0)
        await until(lambda: len(slow.got) == 2, "the slow page's second picture")
        assert picture(slow.got[1])[::2] == (9, 9)
        assert feed.counts(1) == (2, 8, 9)  # 1..8 never went to it
        assert feed.counts(2) == (10, 0, 9)

    run(kit, test)


def test_a_page_that_is_off_gets_nothing_and_turning_on_shows_the_newest_at_once(kit):
    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        on, later = Page(), Page()
        feed.add_page(1, later.send)  # connected, viewer not on yet
        for n in range(3):
            put(producer, n)
        await until(lambda: feed.read == 3, "three frames read")
        await asyncio.sleep(0.2)
        assert feed.encode_s == 0 and later.got == []  # nobody watches: nothing encoded
        feed.add_page(2, on.send)
        feed.ack(2, True, None)  # a paused player's frame shows without a new one
        await until(holds(on, 1), "the newest frame when turning on")
        assert picture(on.got[0])[::2] == (2, 2)
        feed.ack(2, True, 2)
        put(producer, 3)
        await until(holds(on, 2), "the next picture to the page that is on")
        assert later.got == []
        feed.ack(1, True, None)  # the newest picture at once
        await until(holds(later, 1), "the newest picture when turning on")
        assert later.frames() == [3]
        feed.ack(1, False, 3)
        put(producer, 4)
        await until(lambda: len(on.got) == 2 and feed.read == 5, "frame 4 read")
        feed.ack(2, True, 3)
        await until(lambda: on.frames() == [2, 3, 4], "frame 4 to the page that is on")
        assert later.frames() == [3]  # off: nothing more
        feed.remove_page(2)
        assert feed.counts(2) == (0, 0, None)

    run(kit, test)


def test_the_feed_follows_the_player_to_another_ring(kit, monkeypatch):
    monkeypatch.setattr(viewer, "RECHECK_EVERY_S", 0.1)
    kit.create("w", slots=4, payload_bytes=frame_bytes(PixelFormat.RGB24, W, H), policy=Policy.DROP)
    other = kit.producer("w")
    name = ["v"]

    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        page = Page()
        feed.add_page(1, page.send)
        feed.ack(1, True, None)
        put(producer, 7)
        await until(lambda: page.frames() == [7], "a picture from ring v")
        feed.ack(1, True, 7)
        name[0] = "w"  # the player plays into another ring now
        await until(lambda: feed.ring == "w", "the feed moved to ring w")
        assert other.write(coded_planes(8, W, H), PixelFormat.YUV420P, pts=8)
        await until(lambda: page.frames() == [7, 8], "a picture from ring w")

    run(kit, test, locate=lambda: name[0])


def test_a_ring_made_anew_under_the_same_name_is_attached_anew(kit, monkeypatch):
    monkeypatch.setattr(viewer, "RECHECK_EVERY_S", 0.1)

    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        page = Page()
        feed.add_page(1, page.send)
        feed.ack(1, True, None)
        put(producer, 1)
        await until(holds(page, 1), "a picture from the first ring")
        feed.ack(1, True, 1)
        # The instance ends and comes back: its ring v is unlinked and made again.
        kit.detach(producer)
        old = kit.segments.pop(0)
        old.unlink()
        old.close()
        kit.create("v", slots=4, payload_bytes=frame_bytes(PixelFormat.RGB24, W, H))
        again = kit.producer("v")
        deadline = time.monotonic() + WAIT_S
        while len(page.got) < 2:  # frames until the feed, attached anew, sees one
            assert time.monotonic() < deadline, "no picture from the ring made anew"
            put(again, 2)
            await asyncio.sleep(0.05)
        assert page.frames()[:2] == [1, 2]

    run(kit, test)


def test_a_frame_that_cannot_be_encoded_is_logged_and_the_viewer_goes_on(kit, monkeypatch, caplog):
    monkeypatch.setattr(viewer, "RETRY_S", 0.05)
    real, failed = viewer.encode, list[int]()

    def encode_once_badly(frame: ring.Frame, quality: int = viewer.QUALITY) -> bytes:
        if not failed:
            failed.append(frame.pts)
            raise ValueError("cannot encode this one")
        return real(frame, quality)

    monkeypatch.setattr(viewer, "encode", encode_once_badly)

    async def test(feed: ViewerFeed, producer: ring.Producer) -> None:
        page = Page()
        feed.add_page(1, page.send)
        feed.ack(1, True, None)
        put(producer, 1)  # this one fails
        await until(lambda: bool(failed), "the failure")
        # The reader attaches again after RETRY_S and sees only frames published after
        # that (feed.ring may still name the ring meanwhile), so frames go on until one
        # arrives: the viewer went on.
        for number in range(2, 200):
            put(producer, number)
            with contextlib.suppress(AssertionError):
                await until(holds(page, 1), "a picture after the failure", timeout=0.1)
                break
        assert failed == [1] and len(page.frames()) == 1 and page.frames()[0] >= 2

    run(kit, test)
    assert "the viewer's reader failed (1 times so far)" in caplog.text
    assert "cannot encode this one" in caplog.text


@pytest.mark.parametrize("fmt", [PixelFormat.RGB24, PixelFormat.GRAY, PixelFormat.RGBA])
def test_a_frame_of_any_ring_format_becomes_a_jpeg_of_the_same_picture(kit, fmt):
    y = coded_planes(1234, W, H)[0]
    pixels = {
        PixelFormat.GRAY: y,
        PixelFormat.RGB24: np.repeat(y[..., None], 3, axis=2),
        PixelFormat.RGBA: np.repeat(y[..., None], 4, axis=2),
    }[fmt]
    kit.create("f", slots=2, payload_bytes=frame_bytes(PixelFormat.RGBA, W, H))
    producer, consumer = kit.producer("f"), kit.consumer("f")
    producer.write(pixels, fmt, pts=1)
    frame = consumer.acquire(WAIT_S)
    try:
        jpeg = viewer.encode(frame)
    finally:
        consumer.release(frame)
    gray = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY")
    assert gray.shape[:2] == (H, W)
    assert read_code(gray[..., 0]) == 1234
