"""Sound through the render path, with real processes: Engine mix -> audio ring -> Player -> file.

The media beep and flash together: a 1 kHz sine over exactly the samples of
some frames, which are white (the rest black and silent). After ``lumiera
render`` the decoded file must show the flash and start the beep at the same
time, within one audio packet (AAC: 1024 samples; FLAC is exact). A sound
alone on an audio track renders over a black picture; a timeline without
sound renders as before, with no sound stream. A farm render (``--jobs``)
renders pictures in segments and the sound once, and joins them in sync.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera.testing import Instance, synced_tap
from tests.integration import farmkit
from tests.support import one_clip, render_cli, stop
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration

W, H = 64, 48
RATE = 25
SR = 48000
PER_FRAME = SR // RATE  # 1920 samples
FRAMES = 40
FLASH = (8, 23)  # the media's frames that are white and beep
AAC_PACKET = 1024

Pcm = np.ndarray[Any, np.dtype[np.float32]]


# -- media --------------------------------------------------------------------------------


def beep_pcm(frames: int, flash: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Stereo s16, silent but for a 1 kHz sine at half scale over the samples of ``flash``."""
    pcm = np.zeros((2, frames * PER_FRAME), np.int16)
    t = np.arange(PER_FRAME) / SR
    sine = np.rint(16383 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    for k in flash:
        pcm[:, k * PER_FRAME : (k + 1) * PER_FRAME] = sine
    return pcm


def write_beeps(path: Path, *, video: bool = True) -> Path:
    """FRAMES frames at RATE (FFV1, white at FLASH) and their sound (PCM), or the sound alone."""
    pcm = beep_pcm(FRAMES, FLASH)
    with av.open(str(path), "w") as out:
        v = None
        if video:
            v = out.add_stream("ffv1", rate=RATE)
            v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=SR, layout="stereo")
        for k in range(FRAMES):
            if v is not None:
                rgb = np.full((H, W, 3), 255 if k in FLASH else 0, np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = k
                for packet in v.encode(frame):
                    out.mux(packet)
            chunk = pcm[:, k * PER_FRAME : (k + 1) * PER_FRAME]
            sound = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T.reshape(1, -1)), format="s16", layout="stereo"
            )
            sound.sample_rate, sound.pts = SR, k * PER_FRAME
            for packet in a.encode(sound):
                out.mux(packet)
        for stream in (v, a):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
    return path


# -- what a file holds ---------------------------------------------------------------------


def decoded_audio(path: Path) -> tuple[Pcm, float, str]:
    """(planar float samples, time of the first decoded sample in s, codec name)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.time or 0.0)
            data = frame.to_ndarray()
            if data.dtype == np.int16:
                data = data.astype(np.float32) / 32767.0
            elif data.dtype == np.int32:
                data = data.astype(np.float32) / 2147483647.0
            if not frame.format.is_planar:
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append(data.astype(np.float32))
        return np.concatenate(chunks, axis=1), start or 0.0, stream.codec_context.name


def pictures(path: Path) -> list[tuple[float, float]]:
    """(time in s, mean luma) of each decoded frame."""
    with av.open(str(path)) as container:
        return [
            (float(f.time or 0.0), float(f.to_ndarray(format="gray").mean()))
            for f in container.decode(container.streams.video[0])
        ]


def onsets(pcm: Pcm, start: float) -> list[float]:
    """The times where the sound rises above 0.1 after at least 10 ms of quiet."""
    loud = np.abs(pcm).max(axis=0) > 0.1
    times: list[float] = []
    quiet = -SR
    for i in map(int, np.flatnonzero(loud)):
        if i - quiet > SR // 100:
            times.append(start + i / SR)
        quiet = i
    return times


def audio_streams(path: Path) -> int:
    with av.open(str(path)) as container:
        return len(container.streams.audio)


# -- running lumiera -----------------------------------------------------------------------


def render(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return render_cli(*args, timeout=timeout)


def session_of(path: Path, media: Path, track_kind: str, clip: dict[str, Any]) -> Path:
    """A session file: ``media`` as m1 on one track of ``track_kind``, the output 64x48 at 25."""
    with Instance(["--headless", str(path)]) as inst:
        inst.wait_running()
        inst.request("session", "add_media", {"path": str(media)})
        inst.request("session", "add_track", {"name": "T1", "kind": track_kind})
        inst.request("session", "set_output", {"width": W, "height": H, "rate": str(RATE)})
        inst.request("session", "add_clip", {"media": "m1", "track": "t1", **clip})
        stop(inst)
    return path


@pytest.fixture(scope="module")
def beeps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session: the beep-and-flash media's frames 2..39 at output frames 3..40 of V1."""
    base = tmp_path_factory.mktemp("beeps")
    media = write_beeps(base / "beeps.mkv")
    clip = {"position": 3, "source_in": 2, "source_out": FRAMES}
    return session_of(base / "beeps.lum", media, "video", clip)


# -- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "expect"),  # expect: the file's suffix, its sound's codec, the sync it keeps (s)
    [("h264", ("mp4", "aac", AAC_PACKET / SR)), ("ffv1", ("mkv", "flac", 0.001))],
)
def test_the_beep_and_the_flash_agree_in_the_rendered_file(beeps, tmp_path, codec, expect):
    suffix, audio_codec, within = expect
    out = tmp_path / f"film.{suffix}"
    result = render(str(beeps), "-o", str(out), "--codec", codec)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]

    shown = pictures(out)
    assert len(shown) == 3 + FRAMES - 2
    flashes = [t for t, luma in shown if luma > 128]
    moved = [3 + k - 2 for k in FLASH]  # where the clip put the media's flashes
    assert flashes == pytest.approx([n / RATE for n in moved], abs=0.001)

    pcm, start, name = decoded_audio(out)
    assert name == audio_codec and pcm.shape[0] == 2
    assert abs(start) < 1 / SR  # AAC's priming is hidden by the edit list
    beeps_at = onsets(pcm, start)
    assert len(beeps_at) == len(FLASH), beeps_at
    for flash, onset in zip(flashes, beeps_at, strict=True):
        assert abs(onset - flash) <= within, (flash, onset)
    seconds = len(shown) / RATE  # the sound lasts as long as the pictures
    assert seconds * SR <= pcm.shape[1] < seconds * SR + AAC_PACKET


def test_a_farm_render_joins_the_pictures_of_its_segments_with_the_sound_made_once(beeps, tmp_path):
    out = tmp_path / "farm.mp4"
    left: list[str] = []
    result = farmkit.render(
        str(beeps), "-o", str(out), "--jobs", "1", "--segment-frames", "12",
        timeout=150, left=left,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert left == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    shown = pictures(out)
    flashes = [t for t, luma in shown if luma > 128]
    assert flashes == pytest.approx([(3 + k - 2) / RATE for k in FLASH], abs=0.001)
    pcm, start, name = decoded_audio(out)
    assert name == "aac" and abs(start) < 1 / SR  # primed once: at the start, hidden
    beeps_at = onsets(pcm, start)
    assert len(beeps_at) == len(FLASH), beeps_at  # one beep per flash, however many joins
    for flash, onset in zip(flashes, beeps_at, strict=True):
        assert abs(onset - flash) <= AAC_PACKET / SR, (flash, onset)
    seconds = len(shown) / RATE
    assert seconds * SR <= pcm.shape[1] < seconds * SR + AAC_PACKET


def test_a_sound_alone_on_an_audio_track_renders_over_black(tmp_path):
    media = write_beeps(tmp_path / "beeps.wav", video=False)
    session = session_of(tmp_path / "sound.lum", media, "audio", {"position": 0})
    out = tmp_path / "sound.mkv"
    result = render(str(session), "-o", str(out), "--codec", "ffv1")
    assert result.returncode == 0, result.stderr

    shown = pictures(out)
    assert len(shown) == FRAMES
    assert max(luma for _, luma in shown) < 20  # black
    pcm, start, name = decoded_audio(out)
    assert name == "flac"
    assert onsets(pcm, start) == pytest.approx([k / RATE for k in FLASH], abs=0.001)


def test_a_timeline_without_sound_renders_pictures_only(tmp_path):
    video = write_video(tmp_path / "v.mkv", 12, "ffv1")
    session = session_of(tmp_path / "silent.lum", video, "video", {"position": 0})
    out = tmp_path / "silent.mp4"
    result = render(str(session), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert audio_streams(out) == 0
    assert len(pictures(out)) == 12


def test_a_render_asked_for_sound_of_a_silent_timeline_has_silence_as_long_as_it(tmp_path):
    video = write_video(tmp_path / "v.mkv", 10, "ffv1")
    out = tmp_path / "quiet.mkv"
    with one_clip(video) as inst:
        tap = synced_tap(inst.rd, ["player.render."])
        try:
            inst.request("player", "render", {"output": str(out), "codec": "ffv1", "audio": True})
            done = tap.wait_topic("player.render.done", 30)
        finally:
            tap.close()
        assert done["frames"] == 10
        stop(inst)
    pcm, _, name = decoded_audio(out)
    assert name == "flac"
    assert pcm.shape == (2, 10 * PER_FRAME)
    assert not pcm.any()
