"""The live viewer's server side: the Player's viewer ring, as JPEG pictures, to each page.

A :class:`ViewerFeed` is one more consumer of the Player's viewer ring
(``viewer-<W>x<H>``, drop policy; yuv420p previews at ``[gui]
preview_width/height``, see :mod:`lumiera.steam.player`). Its reader thread
waits on the ring (a blocking wait must not stall the event loop), encodes
each frame as JPEG (simplejpeg, straight from the yuv planes: no scaling, no
conversion) while any page watches, and hands the picture to the loop. A
picture is :data:`~lumiera.stage.gui.uibus.FRAME_HEADER` (the frame number and
the ring's publish time, CLOCK_MONOTONIC seconds) followed by the JPEG.

Per page, latest frame wins: a page is sent a picture only once it acked the
one before (``viewer_ack``); what comes meanwhile replaces the one waiting and
counts as dropped, as do the ring's frames this feed never saw (the drop ring
gave way while it encoded). So a page holds at most one picture in flight and
one waiting, whatever its speed: never a growing queue.

Which ring: the one the Player's newest playback stream names (``player
streams``), asked every :data:`FIND_EVERY_S` until there is one (a ring is
made by the first ``play``; every :data:`IDLE_FIND_EVERY_S` while no page
watches, and at once when one turns its viewer on), then every
:data:`RECHECK_EVERY_S` while no frame comes: a new ring (another output
size) or one that went away (the instance was restarted) is attached anew.

While no page watches, nothing is encoded: the reader keeps a copy of the
newest frame, and encodes it when a page turns its viewer on (so a paused
player's frame shows at once).

Sound (the playback's ``audio_ring``): after each wait every frame of it that came
goes to each page that is on, in order, never latest-wins (:meth:`_pass_sound`).

Threads: :meth:`add_page`, :meth:`ack`, :meth:`remove_page`, :meth:`counts`
and :meth:`start`/:meth:`stop` run in the web UI's event loop thread; the
reader thread touches only the ring, its own bus client, its held frame and
``_watching``; it hands pictures to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import simplejpeg  # type: ignore[import-untyped]  # no stubs

from lumiera.bus.client import ControlClient
from lumiera.config import Config
from lumiera.errors import LumieraError, RingTimeout
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import SHM_DIR, segment_name
from lumiera.shm.ring import Consumer, Frame, PixelFormat
from lumiera.stage.gui.uibus import FRAME_HEADER, SOUND_HEADER, SOUND_TAG
from lumiera.vault.feeds import pcm_of_slot

log = logging.getLogger("lumiera.gui.viewer")

QUALITY = 85  # JPEG quality of a picture
READ_WAIT_S = 0.05  # one wait on the ring: the reader sees a stop this often
FIND_EVERY_S = 0.2  # no ring yet: ask the Player this often (its first frame is due 0.25 s
# after the ring is made, so the first play is seen from its start)
IDLE_FIND_EVERY_S = 1.0  # ... and this often while no page watches
RECHECK_EVERY_S = 1.0  # a ring and no frame: check this often that it is still the Player's
ASK_TIMEOUT_S = 2.0  # one ``player streams`` request
RETRY_S = 1.0  # after a failure of the reader, it looks for the ring again this much later
STOP_WAIT_S = 3.0  # stop() waits this long for the reader thread (a wait plus an encode)
SOUND_BATCH = 32  # frames of sound passed on after one wait, at most

Send = Callable[[bytes], Awaitable[None]]
Locate = Callable[[], "str | None"]


@dataclass(frozen=True)
class Picture:
    """One encoded frame: its number, the ring's publish time, the bytes a page is sent."""

    frame: int
    published: float
    data: bytes


@dataclass
class _Page:
    """One page's viewer. Invariant: ``pending`` is None unless ``busy``."""

    send: Send
    on: bool = False  # it wants pictures
    busy: bool = False  # a picture went to it and was not acked yet
    pending: Picture | None = None  # the newest picture that came while busy
    sent: int = 0
    dropped: int = 0
    last: int | None = None  # the frame number of the last picture sent


def encode(frame: Frame, quality: int = QUALITY) -> bytes:
    """The JPEG of a ring frame (yuv420p, gray, rgb24 or rgba), read in place."""
    planes = frame.planes
    jpeg: bytes
    if frame.fmt is PixelFormat.YUV420P:
        jpeg = simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality, fastdct=True)
    elif frame.fmt is PixelFormat.GRAY:
        jpeg = simplejpeg.encode_jpeg_yuv_planes(planes[0], None, None, quality=quality)
    else:
        space = "RGBA" if frame.fmt is PixelFormat.RGBA else "RGB"
        jpeg = simplejpeg.encode_jpeg(
            planes[0], quality=quality, colorspace=space, colorsubsampling="420", fastdct=True
        )
    return jpeg


class ViewerFeed:
    """The viewer ring's frames, encoded once, sent to each page latest-frame-wins."""

    def __init__(self, rd: RuntimeDir, config: Config, *, locate: Locate | None = None) -> None:
        """``locate``: which ring to read (None: none yet); default, ask the Player."""
        self.rd = rd
        self.config = config
        self._locate: Locate = locate or self._player_ring
        self._pages: dict[int, _Page] = {}
        self._latest: Picture | None = None  # for a page that turns its viewer on
        self._watching = False  # any page on: the reader encodes only then
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a page turned on, or stop: look for the ring now
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: ControlClient | None = None  # the reader thread's own
        self.ring: str | None = None  # the ring read now (set by the reader thread)
        self.read = 0  # frames read from the ring
        self.missed = 0  # frames of the ring this feed never saw (the ring gave way)
        self.encode_s = 0.0  # time spent encoding, in the reader thread
        self._seen_drops = 0  # the consumer's drop count when last looked at
        self._checked = 0.0  # when the reader last checked that its ring is the Player's
        # The newest frame read while no page watched (a copy): encoded once one turns on.
        self._held: Frame | None = None
        self._sound: Consumer | None = None  # the playback's audio ring (reader thread)
        self._sound_of: tuple[str, int, int] | None = None  # the Player's: ring, rate, channels
        self._sound_checked = 0.0  # when the reader last asked for the audio ring
        self.sounds = 0  # frames of sound passed on

    # -- the loop's side --------------------------------------------------------------

    async def start(self) -> None:
        """Start the reader thread (returns at once; a ring is found when there is one)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="viewer-feed", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the reader thread (bounded: :data:`STOP_WAIT_S`); pages get nothing more."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, STOP_WAIT_S)
            if thread.is_alive():
                log.error("the viewer's reader thread did not end within %g s", STOP_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        self._pages.clear()
        self._watching = False

    def add_page(self, page_id: int, send: Send) -> None:
        """A page connected; it gets pictures once it acks with ``on`` (``viewer_ack``)."""
        self._pages[page_id] = _Page(send)

    def ack(self, page_id: int, on: bool, frame: int | None) -> None:
        """The page drew ``frame`` (or turned its viewer on or off): the next may go.

        Turning on sends the newest picture at once (a paused player's frame shows).
        """
        page = self._pages.get(page_id)
        if page is None:
            return
        was_on, page.on = page.on, on
        page.busy = False
        waiting, page.pending = page.pending, None
        if on:
            picture = waiting or (None if was_on else self._latest)
            if picture is not None:
                self._send(page, picture)
        watching, self._watching = self._watching, any(p.on for p in self._pages.values())
        if self._watching and not watching:
            self._wake.set()

    def remove_page(self, page_id: int) -> None:
        """The page is gone: its waiting picture goes with it."""
        self._pages.pop(page_id, None)
        self._watching = any(p.on for p in self._pages.values())

    def counts(self, page_id: int) -> tuple[int, int, int | None]:
        """(pictures sent, dropped, the frame number of the last sent) of a page."""
        page = self._pages.get(page_id)
        return (0, 0, None) if page is None else (page.sent, page.dropped, page.last)

    def _offer(self, picture: Picture | None, missed: int) -> None:
        """A new picture (None: only frames missed) from the reader: to every page that is on."""
        if picture is not None:
            self._latest = picture
        for page in self._pages.values():
            if not page.on:
                continue
            page.dropped += missed
            if picture is None:
                continue
            if not page.busy:
                self._send(page, picture)
            else:
                if page.pending is not None:
                    page.dropped += 1  # latest wins: the one waiting is never sent
                page.pending = picture

    def _offer_sound(self, sound: Picture | None, _missed: int) -> None:
        """A frame of sound from the reader: to every page that is on, in order, never dropped."""
        for page in self._pages.values():
            if page.on and sound is not None:
                task = asyncio.get_running_loop().create_task(self._deliver(page, sound))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _forget(self, _picture: Picture | None, _missed: int) -> None:
        """The reader holds a newer frame than the newest picture (it sends it when needed)."""
        self._latest = None

    def _send(self, page: _Page, picture: Picture) -> None:
        page.busy = True
        page.sent += 1
        page.last = picture.frame
        task = asyncio.get_running_loop().create_task(self._deliver(page, picture))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, page: _Page, picture: Picture) -> None:
        try:
            await page.send(picture.data)
        except Exception:  # one page's send; the others go on
            log.exception("a viewer picture could not be sent to a page")

    # -- the reader thread --------------------------------------------------------------

    def _run(self) -> None:
        """The reader thread: find the ring, read it, encode, hand over. Never raises.

        A failure (a ring that cannot be read, a frame that cannot be encoded) is
        logged, the ring let go, and looked for again after :data:`RETRY_S`.
        """
        consumer: Consumer | None = None
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    consumer = self._step(consumer)
                except Exception:  # logged; the viewer tries again, the GUI goes on
                    failures += 1
                    if failures == 1 or failures % 100 == 0:
                        log.exception("the viewer's reader failed (%d times so far)", failures)
                    if consumer is not None:
                        consumer.close()
                    consumer, self.ring = None, None
                    self._drop_sound()
                    self._stopping.wait(RETRY_S)
        finally:
            if consumer is not None:
                consumer.close()
            self._drop_sound()
            if self._client is not None:
                self._client.close()

    def _step(self, consumer: Consumer | None) -> Consumer | None:
        """One wait of the reader: for the ring, or for a frame (read and handed over)."""
        if self._held is not None and self._watching:  # a page turned on: the newest frame
            held, self._held = self._held, None
            self._hand_over(self._offer, self._picture(held), 0)
        if consumer is None:
            consumer = self._attach()
            self._checked = time.monotonic()
            if consumer is None:
                idle = not self._watching
                self._wake.wait(IDLE_FIND_EVERY_S if idle else FIND_EVERY_S)
                self._wake.clear()
            return consumer
        try:
            frame = consumer.acquire(READ_WAIT_S)
        except RingTimeout:
            self._pass_sound()
            if time.monotonic() - self._checked >= RECHECK_EVERY_S:
                self._checked = time.monotonic()
                if self._moved(consumer):
                    consumer.close()
                    consumer, self.ring = None, None
            return consumer
        self._pass_sound()  # sound n came before picture n: it goes first
        self._read(consumer, frame)
        return consumer

    def _pass_sound(self) -> None:
        """Each frame of sound that came, as ``SOUND_HEADER`` + int16 PCM, to the pages on."""
        if self._sound is None:
            if time.monotonic() - self._sound_checked < RECHECK_EVERY_S:
                return
            self._sound_checked = time.monotonic()
            if self._sound_of is None:
                self._locate()  # the Player's answer names it, if the playback has sound
            if self._sound_of is None:
                return
            try:
                self._sound = Consumer(self.rd, self._sound_of[0], timeout=READ_WAIT_S)
            except (LumieraError, OSError):
                return  # not there yet: again in RECHECK_EVERY_S
        _name, rate, channels = self._sound_of or ("", 0, 1)
        for _ in range(SOUND_BATCH):
            try:
                frame = self._sound.acquire(0.0)
            except RingTimeout:
                return
            try:
                data = None
                if self._watching:  # else read and let go
                    pcm = np.clip(pcm_of_slot(frame.planes[0], channels).T, -1.0, 1.0)
                    data = SOUND_HEADER.pack(frame.pts, frame.published, SOUND_TAG, rate, channels)
                    data += (pcm * 32767).round().astype("<i2").tobytes()
            finally:
                self._sound.release(frame)
            if data is not None:
                self.sounds += 1
                self._hand_over(self._offer_sound, Picture(frame.pts, frame.published, data), 0)

    def _drop_sound(self) -> None:  # (reader thread)
        if self._sound is not None:
            self._sound.close()
        self._sound, self._sound_of = None, None

    def _attach(self) -> Consumer | None:
        """A consumer of the ring the Player names, or None (no ring yet, or not attachable)."""
        name = self._locate()
        if name is None:
            return None
        try:
            consumer = Consumer(self.rd, name, timeout=READ_WAIT_S)
        except (LumieraError, OSError) as e:
            log.info("cannot attach to the viewer ring %s yet: %s", name, e)
            return None
        log.info("the viewer reads ring %s", name)
        self.ring = name
        self._seen_drops = consumer.drops
        return consumer

    def _moved(self, consumer: Consumer) -> bool:
        """Whether the ring read now is no longer the Player's (another, or unlinked)."""
        try:  # a segment made anew under the same name is another file
            now = os.stat(SHM_DIR / segment_name(self.rd.instance, consumer.name)).st_ino
        except OSError:
            return True
        if now != os.fstat(consumer.seg.fd).st_ino:
            return True
        located = self._locate()
        return located is not None and located != consumer.name

    def _read(self, consumer: Consumer, frame: Frame) -> None:
        try:
            missed = consumer.drops - self._seen_drops
            self._seen_drops += missed
            picture = None
            if self._watching:
                picture, self._held = self._picture(frame), None
            else:  # nobody watches: a copy, encoded for the page that turns on next
                if self._held is None:
                    self._hand_over(self._forget, None, 0)  # the newest picture is older
                self._held = dataclasses.replace(
                    frame, planes=tuple(p.copy() for p in frame.planes)
                )
        finally:
            consumer.release(frame)
        if picture is not None or missed:
            self._hand_over(self._offer, picture, missed)
        # Counted once handed over: whoever sees the count, the loop has the picture queued.
        self.read += 1
        self.missed += missed

    def _picture(self, frame: Frame) -> Picture:
        began = time.perf_counter()
        jpeg = encode(frame)
        self.encode_s += time.perf_counter() - began
        header = FRAME_HEADER.pack(frame.pts, frame.published)
        return Picture(frame.pts, frame.published, header + jpeg)

    def _hand_over(
        self, call: Callable[[Picture | None, int], None], picture: Picture | None, missed: int
    ) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: we are stopping
                self._loop.call_soon_threadsafe(call, picture, missed)

    def _player_ring(self) -> str | None:
        """The ring of the Player's newest playback stream (None: none, or no answer)."""
        try:
            if self._client is None:
                self._client = ControlClient(self.rd, timeout=ASK_TIMEOUT_S)
            streams = self._client.request("player", "streams")
        except LumieraError as e:
            log.debug("player streams: %s", e)
            if self._client is not None:  # a lost reply leaves the DEALER out of step
                self._client.close()
                self._client = None
            return None
        playing = [s for s in streams if s.get("mode") == "playback"]
        sound = playing[-1].get("sound") if playing else None
        if isinstance(sound, dict) and isinstance(sound.get("ring"), str):
            self._sound_of = (sound["ring"], int(sound["rate"]), int(sound["channels"]))
        named = [r for r in (s.get("ring") for s in playing) if isinstance(r, str)]
        return named[-1] if named else None
