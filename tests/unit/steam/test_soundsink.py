"""The Player's sound sinks: a WAV file with exact samples, a device sink that says what it lacks,
and the reader that keeps a playback's timing (silence for what was due but did not come)."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from lumiera.bus.timeline import Output
from lumiera.errors import RingTimeout
from lumiera.steam.soundsink import (
    NoSink,
    SinkConfig,
    SoundOut,
    SoundUnavailable,
    WavSink,
    open_sink,
    read_wav,
)
from lumiera.vault.feeds import pcm_slot

OUT = Output(width=64, height=48, rate=Fraction(25))  # 48 kHz stereo: 1920 samples a frame
PER_FRAME = 1920

Pcm = np.ndarray[Any, np.dtype[np.float32]]


def tone(n: int, value: float) -> Pcm:
    """Frame ``n``'s sound in these tests: left ``value``, right ``-value``, a ramp in between."""
    ramp = np.linspace(0, 1e-3, PER_FRAME, dtype=np.float32)
    return np.stack([value + ramp, -value - ramp]).astype(np.float32)


# -- the wav sink ---------------------------------------------------------------------------


def test_the_wav_sink_writes_exactly_the_samples_it_is_given_and_is_valid_after_each_write(
    tmp_path,
):
    path = tmp_path / "out.wav"
    sink = WavSink(path, 48000, 2)
    first = tone(0, 0.25)
    sink.write(first)
    rate, got = read_wav(path)  # readable while still being written
    assert rate == 48000 and np.array_equal(got, first)
    second = tone(1, -0.5)[:, :7]  # any length
    sink.write(second)
    sink.close()
    rate, got = read_wav(path)
    assert np.array_equal(got, np.concatenate([first, second], axis=1))
    # Another reader agrees: FFmpeg decodes it as float32 PCM, the same samples.
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("pcm_f32le", 48000, 2)
        frames = [f.to_ndarray() for f in container.decode(stream)]
    decoded = np.concatenate([f.reshape(-1, 2).T for f in frames], axis=1)
    assert np.array_equal(decoded, np.concatenate([first, second], axis=1))


def test_the_wav_path_names_the_stream(tmp_path):
    cfg = SinkConfig(sink="wav", wav_path=str(tmp_path / "play-{stream}.wav"))
    sink = open_sink(cfg, OUT, "p7", tmp_path)
    sink.close()
    assert isinstance(sink, WavSink) and sink.path == tmp_path / "play-p7.wav"
    default = open_sink(SinkConfig(sink="wav"), OUT, "p8", tmp_path)
    default.close()
    assert isinstance(default, WavSink) and default.path == tmp_path / "playback-p8.wav"


# -- the device sink --------------------------------------------------------------------------


def test_the_device_sink_without_its_backend_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails, as on CI
    with pytest.raises(SoundUnavailable, match="optional package sounddevice") as raised:
        open_sink(SinkConfig(sink="device"), OUT, "p1", tmp_path)
    assert raised.value.code == "unavailable"
    auto = open_sink(SinkConfig(sink="auto"), OUT, "p1", tmp_path)  # auto: no sound, no error
    assert type(auto) is NoSink and auto.name == "none"


class FakeBackend:
    """What the device sink uses of sounddevice, recording what it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def OutputStream(self, **kwargs: Any) -> FakeBackend:
        self.calls.append(("open", kwargs))
        return self

    def start(self) -> None:
        self.calls.append(("start", None))

    def write(self, data: Pcm) -> None:
        self.calls.append(("write", data.shape))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def close(self) -> None:
        self.calls.append(("close", None))


def test_the_device_sink_plays_interleaved_float32_and_a_pause_drops_what_it_holds(
    tmp_path, monkeypatch
):
    backend = FakeBackend()
    monkeypatch.setitem(sys.modules, "sounddevice", backend)
    cfg = SinkConfig(sink="device", device="3", latency=0.05)
    sink = open_sink(cfg, OUT, "p1", tmp_path)
    assert sink.name == "device" and sink.live
    sink.write(tone(0, 0.1))
    sink.pause()
    sink.write(tone(1, 0.1))  # paused: not played
    sink.resume()
    sink.write(tone(2, 0.1))
    sink.close()
    opened = backend.calls[0][1]
    assert opened == {
        "samplerate": 48000, "channels": 2, "dtype": "float32", "device": 3, "latency": 0.05
    }  # fmt: skip
    assert [c for c, _ in backend.calls[1:]] == [
        "start", "write", "abort", "start", "write", "abort", "close"
    ]  # fmt: skip
    assert backend.calls[2][1] == (PER_FRAME, 2)


# -- the reader of the audio ring --------------------------------------------------------------


@dataclass
class FakeFrame:
    pts: int
    published: float
    planes: tuple[np.ndarray[Any, Any], ...]


class FakeRing:
    """An audio ring's consumer: the frames put in, then RingTimeout."""

    name = "viewer-audio-1mb"

    def __init__(self) -> None:
        self.frames: list[FakeFrame] = []
        self.lock = threading.Lock()
        self.released = 0
        self.closed = False

    def put(self, pts: int, published: float, value: float) -> None:
        with self.lock:
            self.frames.append(FakeFrame(pts, published, (pcm_slot(tone(pts, value)),)))

    def acquire(self, timeout: float) -> FakeFrame:
        with self.lock:
            if self.frames:
                return self.frames.pop(0)
        raise RingTimeout("none")

    def release(self, _frame: FakeFrame) -> None:
        self.released += 1

    def close(self) -> None:
        self.closed = True


class Recorder(NoSink):
    def __init__(self, live: bool = False) -> None:
        self.live = live
        self.got: list[Pcm] = []
        self.closed = False

    def write(self, pcm: Pcm) -> None:
        self.got.append(pcm)

    def close(self) -> None:
        self.closed = True


def test_the_reader_fills_what_did_not_come_with_silence_and_starts_a_segment_without_a_gap():
    ring, sink = FakeRing(), Recorder()
    out = SoundOut(ring, sink, OUT)
    out.segment(10, 100.0)
    ring.put(10, 100.0, 0.1)
    ring.put(11, 100.04, 0.2)
    ring.put(14, 100.16, 0.3)  # 12 and 13 never came (not mixed in time, or overtaken)
    out.pause(100.2)
    out.segment(40, 100.5)  # a seek: frame 40 on, published from 100.5 on
    ring.put(41, 100.54, 0.4)  # 40 did not come: due, so silence
    out.start()
    out.finish(5.0)
    assert [round(float(p[0, 0]), 3) for p in sink.got] == [0.1, 0.2, 0.0, 0.0, 0.3, 0.0, 0.4]
    assert all(p.shape == (2, PER_FRAME) for p in sink.got)
    assert np.array_equal(sink.got[4], tone(14, 0.3))  # each frame's samples as they came
    state = out.state()
    assert (state["sent"], state["dropped"], state["stale"]) == (4, 3, 0)
    assert state["sink"] == "none" and state["ring"] == ring.name and state["error"] is None
    assert sink.closed and ring.closed and ring.released == 4


def test_a_live_sink_plays_nothing_read_while_paused():
    ring, sink = FakeRing(), Recorder(live=True)
    out = SoundOut(ring, sink, OUT)
    out.segment(0, 10.0)
    ring.put(0, 10.0, 0.1)
    ring.put(1, 10.04, 0.2)  # published before the pause, read after it
    out.pause(10.05)
    out.start()
    out.finish(5.0)
    assert sink.got == [] and out.state()["stale"] == 2


def test_a_live_sink_drops_the_old_segment_read_after_a_seek():
    ring, sink = FakeRing(), Recorder(live=True)
    out = SoundOut(ring, sink, OUT)
    out.segment(0, 10.0)
    out.pause(10.1)
    out.segment(50, 10.2)
    ring.put(2, 10.08, 0.1)  # the old stream's, read only after the seek
    ring.put(50, 10.2, 0.5)
    out.start()
    out.finish(5.0)
    assert [round(float(p[0, 0]), 3) for p in sink.got] == [0.5]
    assert out.state()["stale"] == 1 and out.state()["sent"] == 1


def test_paused_time_is_not_written_to_the_wav_file(tmp_path):
    ring = FakeRing()
    path = tmp_path / "p.wav"
    out = SoundOut(ring, WavSink(path, 48000, 2), OUT)
    out.segment(0, 1.0)
    ring.put(0, 1.0, 0.1)
    ring.put(1, 1.04, 0.2)
    out.pause(1.05)
    out.segment(2, 9.0)  # resumed 8 s later, where it paused
    ring.put(2, 9.0, 0.3)
    out.start()
    out.finish(5.0)
    _rate, pcm = read_wav(path)
    want = np.concatenate([tone(0, 0.1), tone(1, 0.2), tone(2, 0.3)], axis=1)
    assert np.array_equal(pcm, want)  # file sample k: the timeline's sample k from frame 0


def test_a_reader_finished_before_it_started_still_closes_its_ring_and_sink():
    ring, sink = FakeRing(), Recorder()
    SoundOut(ring, sink, OUT).finish(0.1)
    assert ring.closed and sink.closed
