"""Where the sound of a playback goes: the Player's sound sinks, and the thread that feeds one.

A playback of a sounding timeline has an audio ring beside its viewer ring
(``viewer-audio-<M>mb``, drop policy; layout: :mod:`lumiera.shm.layout`, AUDIO
RINGS): the Engine puts frame n's sound there with pts n, at frame n's due
time, on the stream's one clock (:mod:`lumiera.vault.stream`). A
:class:`SoundOut` (a thread of the Player) reads that ring in order and hands
each frame's samples to the sink ``[audio] sink`` names:

- ``none``: nothing is played (the frames are still read and counted).
- ``wav``: a WAV file (IEEE float32, the output's rate and channels), written
  as the sound comes, its header kept valid after every write. Its timing is
  the playback's: the file holds what was played, frame after frame, from the
  play position on, so for a play without seeks its sample k is timeline
  sample ``Output.sample_of(first) + k``. A frame of sound that was due but did
  not come (the Engine could not mix it in time, or this reader fell behind and
  the drop ring gave way) is written as silence of its length, so the timing
  holds. Paused time is not written: a resume goes on where the pause left off.
  A seek goes on with the new position's sound (the file is the sound as heard).
- ``device``: a sound device through the optional package ``sounddevice``
  (PortAudio: PulseAudio or ALSA underneath), never a dependency; without it,
  :class:`SoundUnavailable` says what is missing. The device plays at the
  latency ``[audio] latency`` asks for. A pause or a seek drops what the device
  still holds, and frames published before it that are read after it are not
  played (no stale sound after a seek).
- ``auto``: the device if the backend and a device are there, else none.
"""

from __future__ import annotations

import importlib
import logging
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lumiera.bus.timeline import Output
from lumiera.errors import RingTimeout, Unavailable
from lumiera.runtime_dir import RuntimeDir
from lumiera.vault.feeds import pcm_of_slot

log = logging.getLogger("lumiera.player.sound")

SINKS = ("auto", "none", "wav", "device")
READ_WAIT_S = 0.05  # one wait on the ring: the thread sees a stop this often
DRAIN_MAX = 64  # frames read after the end (those still in the ring), at most

Pcm = np.ndarray[Any, np.dtype[np.float32]]


class SoundUnavailable(Unavailable):
    """The sink asked for cannot play here (no backend, no device)."""


class NoSink:
    """Plays nothing."""

    name = "none"
    live = False  # a live sink drops frames read after a pause that were published before it

    def write(self, pcm: Pcm) -> None:
        pass

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def close(self) -> None:
        pass


_WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHHH4sII4sI")  # RIFF, fmt (float), fact, data
_IEEE_FLOAT = 3


class WavSink(NoSink):
    """A float32 WAV file, written as the sound comes (its header valid after each write)."""

    name = "wav"

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self.path, self.rate, self.channels = path, rate, channels
        self.samples = 0  # per channel, written so far
        self._file = path.open("wb")
        self._header()

    def _header(self) -> None:
        data = self.samples * self.channels * 4
        block = self.channels * 4
        header = _WAV_HEADER.pack(
            *(b"RIFF", 4 + 26 + 12 + 8 + data, b"WAVE"),
            *(b"fmt ", 18, _IEEE_FLOAT, self.channels, self.rate, self.rate * block, block, 32, 0),
            *(b"fact", 4, self.samples),
            *(b"data", data),
        )
        self._file.seek(0)
        self._file.write(header)
        self._file.seek(0, 2)

    def write(self, pcm: Pcm) -> None:
        """(channels, n) float32 samples, planar, appended (interleaved in the file)."""
        self._file.write(np.ascontiguousarray(pcm.T, "<f4").tobytes())
        self.samples += pcm.shape[1]
        self._header()
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_wav(path: Path) -> tuple[int, Pcm]:
    """(rate, (channels, n) float32 samples) of a WAV file :class:`WavSink` wrote."""
    raw = path.read_bytes()
    fields = _WAV_HEADER.unpack_from(raw)
    if fields[0] != b"RIFF" or fields[3] != b"fmt " or fields[5] != _IEEE_FLOAT:
        raise ValueError(f"{path}: not a float32 WAV file of this sink")
    channels, rate = fields[6], fields[7]
    data = np.frombuffer(raw, "<f4", offset=_WAV_HEADER.size, count=fields[-1] // 4)
    return rate, data.reshape(-1, channels).T.copy()


class DeviceSink(NoSink):
    """A sound device through ``sounddevice`` (optional): blocking writes, float32."""

    name = "device"
    live = True

    def __init__(self, rate: int, channels: int, device: str, latency: float) -> None:
        backend = load_backend()
        self.paused = False
        try:
            self._out = backend.OutputStream(
                samplerate=rate,
                channels=channels,
                dtype="float32",
                device=_device(device),
                latency=latency,
            )
            self._out.start()
        except Exception as e:  # PortAudioError and the like: no such device, busy
            raise SoundUnavailable(f"the sound device cannot play: {e}") from e

    def write(self, pcm: Pcm) -> None:
        if not self.paused:
            self._out.write(np.ascontiguousarray(pcm.T, np.float32))

    def pause(self) -> None:
        """Stop at once: what the device still holds is dropped."""
        if not self.paused:
            self.paused = True
            self._out.abort()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._out.start()

    def close(self) -> None:
        self._out.abort()
        self._out.close()


def _device(name: str) -> int | str | None:
    text = name.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def load_backend() -> Any:
    """The ``sounddevice`` module, or SoundUnavailable saying what is missing."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError:
        raise SoundUnavailable(
            "the device sink needs the optional package sounddevice "
            "(pip install sounddevice; it plays through PortAudio: PulseAudio or ALSA); "
            "it is not installed: use [audio] sink = wav or none"
        ) from None
    except OSError as e:  # the module is there, the PortAudio library is not
        raise SoundUnavailable(f"sounddevice cannot load PortAudio: {e}") from None


@dataclass(frozen=True)
class SinkConfig:
    """``[audio]``: which sink, and its settings."""

    sink: str = "auto"
    wav_path: str = ""
    device: str = ""
    latency: float = 0.1


def open_sink(cfg: SinkConfig, output: Output, stream: str, runtime_dir: Path) -> NoSink:
    """The sink ``cfg`` names for a playback of ``output``'s sound (stream id ``stream``).

    Raises SoundUnavailable for ``device`` without a backend or a device; ``auto``
    then plays nothing (logged).
    """
    rate, channels = output.audio_rate, output.channels
    if cfg.sink == "none":
        return NoSink()
    if cfg.sink == "wav":
        template = cfg.wav_path or str(runtime_dir / "playback-{stream}.wav")
        return WavSink(Path(template.replace("{stream}", stream)), rate, channels)
    if cfg.sink == "device":
        return DeviceSink(rate, channels, cfg.device, cfg.latency)
    try:
        return DeviceSink(rate, channels, cfg.device, cfg.latency)
    except SoundUnavailable as e:
        log.info("no sound device (%s): the playback's sound is not played", e)
        return NoSink()


class SoundOut:
    """The thread that reads a playback's audio ring in order into its sink.

    The Player tells it where the sound is: :meth:`segment` when a stream of
    the Engine starts (play, resume, seek; before its request, so each frame
    of the ring belongs to the segment of the newest start published no
    later than it), :meth:`pause` when one is stopped, :meth:`finish` at the
    end (what is still in the ring is read, then the sink is closed).
    ``consumer``: the ring's :class:`~lumiera.shm.ring.Consumer`, attached
    before the first stream starts; used by this thread only from then on.
    """

    def __init__(self, consumer: Any, sink: NoSink, output: Output) -> None:
        self.consumer, self.sink, self.output = consumer, sink, output
        self.sent = 0  # frames of sound handed to the sink
        self.dropped = 0  # frames of sound due but not come (written as silence by a wav sink)
        self.stale = 0  # frames read after a pause or seek that a live sink did not play
        self.error: str | None = None
        self._segments: list[tuple[int, float]] = []  # (first frame, since), oldest first
        self._paused_since: float | None = None
        self._expected: int | None = None  # the next pts of the segment read now
        self._current: tuple[int, float] | None = None
        self._lock = threading.Lock()
        self._ending = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sound-out", daemon=True)

    @classmethod
    def open(
        cls, rd: RuntimeDir, ring: str, cfg: SinkConfig, stream: str, output: Output
    ) -> SoundOut:
        """A reader of ``ring`` (attached now) into the sink ``cfg`` names, its thread started.

        Raises SoundUnavailable (the device sink, no device) with nothing left open.
        """
        from lumiera.shm.ring import Consumer

        consumer = Consumer(rd, ring)
        try:
            sink = open_sink(cfg, output, stream, rd.path)
        except BaseException:
            consumer.close()
            raise
        out = cls(consumer, sink, output)
        out.start()
        return out

    def start(self) -> None:
        self._thread.start()

    def segment(self, first: int, since: float) -> None:
        """A stream from frame ``first`` starts; its frames are published from ``since`` on."""
        with self._lock:
            self._segments.append((first, since))
            self._paused_since = None
        self.sink.resume()

    def pause(self, since: float) -> None:
        """The Engine's stream was stopped at ``since`` (a pause, or the first step of a seek)."""
        with self._lock:
            self._paused_since = since
        self.sink.pause()

    def finish(self, timeout: float) -> None:
        """The playback ended: read what is left in the ring, close the sink (bounded wait)."""
        self._ending.set()
        if self._thread.ident is None:  # never started: nothing reads, close here
            self._thread = threading.Thread(target=self._run, name="sound-out", daemon=True)
            self._thread.start()
        self._thread.join(timeout)

    def state(self) -> dict[str, Any]:
        """What ``player streams`` says of the sound."""
        return {
            "sink": self.sink.name,
            "ring": self.consumer.name,
            "rate": self.output.audio_rate,
            "channels": self.output.channels,
            "sent": self.sent,
            "dropped": self.dropped,
            "stale": self.stale,
            "error": self.error,
        }

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._ending.is_set():
                try:
                    frame = self.consumer.acquire(READ_WAIT_S)
                except RingTimeout:
                    continue
                self._take(frame)
            for _ in range(DRAIN_MAX):  # published before the end: still part of the playback
                try:
                    frame = self.consumer.acquire(0.0)
                except RingTimeout:
                    break
                self._take(frame)
        except Exception as e:  # noqa: BLE001 - the sound ends; the pictures go on
            self.error = f"{type(e).__name__}: {e}"
            log.error("the playback's sound failed: %s", self.error)
        finally:
            self.consumer.close()
            try:
                self.sink.close()
            except Exception as e:  # noqa: BLE001 - logged, nothing else to do
                log.error("closing the sound sink: %s", e)

    def _take(self, frame: Any) -> None:
        try:
            pts, published = frame.pts, frame.published
            pcm = pcm_of_slot(frame.planes[0], self.output.channels).copy()
        finally:
            self.consumer.release(frame)
        with self._lock:
            segment = None
            for seg in self._segments:
                if seg[1] <= published:
                    segment = seg
            newest = self._segments[-1] if self._segments else None
            paused = self._paused_since is not None
        if segment is not None and segment != self._current:  # a new segment: no gap before it
            self._current, self._expected = segment, segment[0]
        if self.sink.live and (paused or segment != newest):
            self.stale += 1  # of a stream stopped since: heard now it would be late
            return
        expected = pts if self._expected is None else self._expected
        if pts > expected:  # due, but not come: silence of their length keeps the timing
            self.dropped += pts - expected
            for n in range(expected, pts):
                self.sink.write(np.zeros((self.output.channels, self.output.samples_in(n)), "f4"))
        self.sink.write(pcm)
        self.sent += 1
        self._expected = pts + 1
