"""Media probing with PyAV on real files: what a video holds, and refusals of what is not one."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from lumiera.errors import BadArguments, MediaError
from lumiera.steam.core import SessionCore
from lumiera.steam.probe import probe_media

from .kit import make_audio, make_video


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    text = d / "notes.txt"
    text.write_text("not a video\n" * 20)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    mp4 = make_video(d / "five.mp4", frames=5)
    truncated = d / "truncated.mp4"
    truncated.write_bytes(mp4.read_bytes()[:200])
    return {
        "mp4": mp4,
        "mkv": make_video(d / "seven.mkv", frames=7),
        "ntsc": make_video(d / "ntsc.mp4", frames=3, rate=Fraction(30000, 1001)),
        "wav": make_audio(d / "silence.wav"),
        "text": text,
        "empty": empty,
        "truncated": truncated,
        "dir": d,
    }


def test_an_mp4_is_probed_for_its_frames_rate_size_pixel_format_and_identity(media):
    path = media["mp4"]
    st = os.stat(path)
    assert probe_media(str(path)) == {
        "frames": 5,
        "rate": "25",
        "width": 64,
        "height": 48,
        "pix_fmt": "yuv420p",
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
    }


def test_a_container_without_a_frame_count_has_its_frames_counted(media):
    found = probe_media(str(media["mkv"]))
    assert (found["frames"], found["rate"], found["width"], found["height"]) == (7, "25", 64, 48)


def test_a_fractional_frame_rate_is_kept_exact(media):
    assert probe_media(str(media["ntsc"]))["rate"] == "30000/1001"


@pytest.mark.parametrize(
    "name, message",
    [
        ("text", "not decodable"),
        ("empty", "not decodable"),
        ("truncated", "not decodable"),
        ("dir", "not decodable"),
    ],
)
def test_a_file_that_is_not_media_is_a_media_error_naming_it(media, name, message):
    path = str(media[name])
    with pytest.raises(MediaError) as err:
        probe_media(path)
    assert path in str(err.value) and message in str(err.value)


def test_an_audio_file_probes_as_audio_only_and_the_session_gives_it_frames_of_its_rate(
    media, tmp_path
):
    found = probe_media(str(media["wav"]))
    assert (found["width"], found["height"], found["pix_fmt"]) == (0, 0, "")
    assert found["audio_rate"] == 8000 and found["audio_channels"] == 1
    assert found["audio_samples"] == 800  # 0.1 s
    assert "frames" not in found and "rate" not in found
    core = SessionCore(tmp_path / "a.lum")
    try:
        applied = core.execute("add_media", {"path": str(media["wav"])})["applied"]
        assert (applied["frames"], applied["rate"]) == (3, "25")  # 0.1 s: 2.5 frames, ceil
        core.execute("add_track", {"kind": "audio"})
        core.execute("add_track", {})
        core.execute("add_clip", {"media": "m1", "track": "t1", "position": 0})
        with pytest.raises(BadArguments, match="has no video: put it on an audio track"):
            core.execute("add_clip", {"media": "m1", "track": "t2", "position": 0})
    finally:
        core.close()


def test_a_missing_file_is_a_media_error_naming_it(tmp_path):
    path = str(tmp_path / "gone.mp4")
    with pytest.raises(MediaError, match="No such file"):
        probe_media(path)


def test_a_session_adds_real_media_with_what_the_probe_found_and_refuses_the_rest(media, tmp_path):
    core = SessionCore(tmp_path / "s.lum")  # the real probe
    try:
        result = core.execute("add_media", {"path": str(media["mp4"])})
        assert result["applied"]["frames"] == 5
        rows = core.seq
        before = core.describe()
        for bad in ("text",):
            with pytest.raises(MediaError):
                core.execute("add_media", {"path": str(media[bad])})
        with pytest.raises(MediaError):
            core.execute("add_media", {"path": str(tmp_path / "gone.mp4")})
        assert core.describe() == before and core.seq == rows
        core.execute("add_track", {})
        core.execute("add_clip", {"media": "m1", "track": "t1", "position": 0})
        [clip] = core.describe()["clips"]
        assert (clip["source_in"], clip["source_out"]) == (0, 5)  # the whole media by default
    finally:
        core.close()
    # Replay repeats what the probe found; it does not probe again.
    again = SessionCore(tmp_path / "s.lum", probe=_no_probe)
    try:
        assert again.describe()["media"][0]["frames"] == 5
    finally:
        again.close()


def _no_probe(path: str) -> dict[str, object]:
    raise AssertionError(f"replay probed {path}")
