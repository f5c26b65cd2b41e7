"""A render's loop in the Player: pictures (and sound) from the rings, in order, into a file.

:func:`encode` is the render's thread (:mod:`lumiera.steam.player`); its
:func:`write_frames` takes picture n from the frames' ring, then, for a
render with sound, sound n from the sound ring (:mod:`lumiera.shm.layout`,
AUDIO RINGS), and hands both to the :class:`~lumiera.vault.codecs.Encoder`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from lumiera.bus.client import ControlClient
from lumiera.bus.topics import EngineRenderEnded
from lumiera.errors import (
    EngineSilent,
    EngineStreamEnded,
    FrameOutOfOrder,
    RenderStopped,
    RingTimeout,
)
from lumiera.runtime_dir import RuntimeDir
from lumiera.steam.playout import PlayerStream
from lumiera.vault.codecs import Encoder
from lumiera.vault.feeds import pcm_of_slot

FRAME_WAIT_S = 1.0  # a render's reader checks on the engine after this long without a frame
ENGINE_SILENT_S = 120.0  # ... and gives up when the engine says nothing for this long

Ended = Callable[[PlayerStream], EngineRenderEnded | None]
log = logging.getLogger("lumiera.player")  # as the actor's own


def encode(
    stream: PlayerStream,
    consumers: list[Any],
    encoder: Encoder,
    ended: Ended,
    *,
    stopping: threading.Event,
    rd: RuntimeDir,
) -> None:
    """The render's thread: frames from the rings, in order, into the encoder; never raises.

    ``consumers``: the frames' ring's, and the sound ring's when the render has
    sound. Ends with ``stream.state`` done (the file complete, under its name),
    stopped (the user's stop) or failed (``error``); else the Engine's stream is
    stopped (unless the Player is stopping: ``stopping``). Closes the consumers.
    """
    try:
        write_frames(stream, consumers, encoder, ended)
        encoder.close()  # only now does the file get its name
        stream.state = "done"
    except Exception as e:  # noqa: BLE001 - this render fails; the player goes on
        encoder.abort()
        stopped = stream.cancel.is_set() and not stopping.is_set()  # a stop of the render
        stream.state = "stopped" if stopped else "failed"
        stream.error = f"{type(e).__name__}: {e}"
        log.error("render %s to %s failed: %s", stream.id, stream.output, stream.error)
        if stream.engine_stream is not None and not stopping.is_set():
            with contextlib.suppress(Exception), ControlClient(rd, 5.0) as client:
                client.request("engine", "stop_stream", {"stream": stream.engine_stream})
    finally:
        for consumer in consumers:
            consumer.close()
        stream.ended = time.monotonic()


def write_frames(
    stream: PlayerStream, consumers: list[Any], encoder: Encoder, ended: Ended
) -> None:
    """Every frame of ``stream`` into ``encoder``, in order (the caller closes it).

    ``consumers``: the frames' ring's, and the sound ring's when the render has
    sound (each picture n is followed by its sound n). ``ended``: how the
    engine's stream ended (None while it runs). Raises what :func:`acquire`
    raises, FrameOutOfOrder, and the encoder's CodecError.
    """
    channels = encoder.audio.channels if encoder.audio is not None else 0
    expected = stream.first
    while expected < stream.first + stream.count:
        frame = acquire(stream, consumers[0], expected, ended)
        try:
            if frame.pts != expected:
                raise FrameOutOfOrder(f"frame {frame.pts} came where {expected} was due")
            # No local name for the planes: views of the ring must not outlive
            # the release (the consumer could not unmap at close).
            encoder.write(tuple(frame.planes) if len(frame.planes) > 1 else frame.planes[0])
        finally:
            consumers[0].release(frame)
        if len(consumers) > 1:
            sound = acquire(stream, consumers[1], expected, ended)
            try:
                if sound.pts != expected:
                    raise FrameOutOfOrder(
                        f"the sound of frame {sound.pts} came where {expected}'s was due"
                    )
                encoder.write_audio(pcm_of_slot(sound.planes[0], channels))  # copied
            finally:
                consumers[1].release(sound)
        expected += 1
        stream.frames += 1


def acquire(stream: PlayerStream, consumer: Any, expected: int, ended: Ended) -> Any:
    """The next frame of ``consumer``'s ring (frame ``expected``'s picture or sound).

    Waits while the engine's stream runs; raises RenderStopped (a stop),
    EngineStreamEnded (the stream ended and left nothing more in the ring) or
    EngineSilent (nothing came for ENGINE_SILENT_S).
    """
    silent_since = time.monotonic()
    while True:
        if stream.cancel.is_set():
            raise RenderStopped("the render was stopped")
        try:
            return consumer.acquire(FRAME_WAIT_S)
        except RingTimeout:  # nothing for a while: is the engine's stream still on?
            pass
        end = ended(stream)
        if end is not None:
            try:  # it published everything before it ended: one last look
                return consumer.acquire(0.0)
            except RingTimeout:
                raise EngineStreamEnded(
                    f"the engine's stream {end.state}: {end.error or 'no more frames'}"
                    f" (frame {expected} did not come)"
                ) from None
        if time.monotonic() - silent_since > ENGINE_SILENT_S:
            raise EngineSilent(f"no frame from the engine for {ENGINE_SILENT_S:g} s")
