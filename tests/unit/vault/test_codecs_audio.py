"""The encoder's sound: AAC in MP4, FLAC in Matroska, PCM in MOV, in sync with the pictures."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera.errors import CodecError, JoinRefused
from lumiera.vault.codecs import REGISTRY, AudioEncoder, Encoder
from lumiera.vault.codecspec import EncoderSpec
from lumiera.vault.join import join

W, H = 64, 48
RATE = Fraction(25)
SR = 48000
PER_FRAME = 1920  # samples of one frame at 25 fps and 48 kHz
FLASH = (4, 11)  # frames that are white and beep
AAC_PACKET = 1024

Pcm = np.ndarray[Any, np.dtype[np.float32]]


def beep(frames: int, flash: tuple[int, ...] = FLASH, channels: int = 2) -> Pcm:
    """Silence, and a 1 kHz sine at 0.5 over exactly the samples of the ``flash`` frames."""
    pcm = np.zeros((channels, frames * PER_FRAME), np.float32)
    t = np.arange(PER_FRAME) / SR
    for k in (f for f in flash if f < frames):
        pcm[:, k * PER_FRAME : (k + 1) * PER_FRAME] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    return pcm


def picture(k: int, flash: tuple[int, ...] = FLASH) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.full((H, W, 3), 255 if k in flash else 0, np.uint8)


def decoded_audio(path: Path) -> tuple[Pcm, float, str, int]:
    """(planar float samples, time of the first decoded sample in s, codec, sample rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.time or 0.0)
            data = frame.to_ndarray()
            if frame.format.name in ("s16", "s16p"):
                data = data.astype(np.float32) / 32767.0
            if not frame.format.is_planar:
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append(data.astype(np.float32))
        return np.concatenate(chunks, axis=1), start or 0.0, stream.codec_context.name, stream.rate


def flash_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [
            float(f.time or 0.0)
            for f in container.decode(container.streams.video[0])
            if f.to_ndarray(format="gray").mean() > 128
        ]


def onsets(pcm: Pcm, start: float) -> list[float]:
    """The times where the sound rises above 0.1 after at least 10 ms of quiet."""
    loud = np.abs(pcm).max(axis=0) > 0.1
    times: list[float] = []
    quiet = -SR  # quiet since the start
    for i in map(int, np.flatnonzero(loud)):
        if i - quiet > SR // 100:
            times.append(start + i / SR)
        quiet = i
    return times


def render(path: Path, codec: str, frames: int = 16, chunks: list[int] | None = None) -> Path:
    """``frames`` frames and their sound: each frame's samples in one call, or in ``chunks``."""
    pcm = beep(frames)
    with Encoder(path, REGISTRY.encoder(codec), W, H, RATE, audio=(SR, "stereo")) as enc:
        at = 0
        for k in range(frames):
            enc.write(picture(k))
            sizes = chunks or [PER_FRAME]
            for size in sizes:
                enc.write_audio(pcm[:, at : at + size])
                at += size
    return path


# -- which codec ----------------------------------------------------------------------------


def test_each_container_has_its_audio_codec():
    assert REGISTRY.encoder("h264").audio == "aac"
    assert REGISTRY.encoder("ffv1").audio == "flac"
    assert REGISTRY.encoder("prores").audio == "pcm_s16le"
    assert EncoderSpec("x", "ffv1", "avi").audio == "pcm_s16le"  # any other container
    assert EncoderSpec("x", "ffv1", "matroska", audio_codec="pcm_s16le").audio == "pcm_s16le"


# -- in sync --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "suffix", "audio_codec", "within"),
    [
        ("h264", "mp4", "aac", AAC_PACKET / SR),
        ("ffv1", "mkv", "flac", 0.001),
        ("prores", "mov", "pcm_s16le", 0.001),
    ],
)
def test_the_beep_starts_with_the_flash(tmp_path, codec, suffix, audio_codec, within):
    out = render(tmp_path / f"beep.{suffix}", codec)
    pcm, start, name, rate = decoded_audio(out)
    assert (name, rate, pcm.shape[0]) == (audio_codec, SR, 2)
    flashes = flash_times(out)
    assert flashes == pytest.approx([k / 25 for k in FLASH], abs=0.001)
    beeps = onsets(pcm, start)
    assert len(beeps) == len(FLASH), beeps
    for flash, onset in zip(flashes, beeps, strict=True):
        assert abs(onset - flash) <= within, (flash, onset)


def test_lossless_sound_comes_back_sample_for_sample(tmp_path):
    out = render(tmp_path / "master.mkv", "ffv1", chunks=[1601, 1, 318])  # any chunk sizes
    pcm, start, _, _ = decoded_audio(out)
    assert start == 0.0
    want = beep(16)
    assert pcm.shape == want.shape
    assert np.abs(pcm - want).max() <= 1.5 / 32767


def test_aac_keeps_every_sample_of_the_range(tmp_path):
    out = render(tmp_path / "film.mp4", "h264", frames=10)
    pcm, start, _, _ = decoded_audio(out)
    assert abs(start) < 1 / SR  # the priming is hidden by the edit list
    assert pcm.shape[1] >= 10 * PER_FRAME  # padded to whole packets at the end at most
    assert pcm.shape[1] < 10 * PER_FRAME + AAC_PACKET


# -- without sound, sound alone, refusals -------------------------------------------------------


def test_an_encoder_without_audio_writes_no_audio_stream_and_refuses_sound(tmp_path):
    out = tmp_path / "silent.mp4"
    with Encoder(out, REGISTRY.encoder("h264"), W, H, RATE) as enc:
        enc.write(picture(0))
        with pytest.raises(CodecError, match="no audio stream"):
            enc.write_audio(np.zeros((2, 10), np.float32))
    with av.open(str(out)) as container:
        assert not container.streams.audio


def test_sound_of_the_wrong_channel_count_is_refused(tmp_path):
    with Encoder(
        tmp_path / "a.mkv", REGISTRY.encoder("ffv1"), W, H, RATE, audio=(SR, "mono")
    ) as enc:
        enc.write(picture(0))
        with pytest.raises(ValueError, match=r"\(1, samples\)"):
            enc.write_audio(np.zeros((2, 10), np.float32))
        enc.write_audio(np.zeros((1, 10), np.float32))


@pytest.mark.parametrize(("codec", "suffix"), [("h264", "mp4"), ("ffv1", "mkv")])
def test_an_audio_encoder_writes_sound_alone_under_its_name_only_at_the_end(
    tmp_path, codec, suffix
):
    out = tmp_path / f"sound.{suffix}"
    enc = AudioEncoder(out, REGISTRY.encoder(codec), SR, "stereo")
    enc.write_audio(beep(5))
    assert not out.exists()
    enc.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    with av.open(str(out)) as container:
        assert not container.streams.video
        assert container.streams.audio[0].codec_context.name == REGISTRY.encoder(codec).audio
    pcm, _, _, _ = decoded_audio(out)
    assert pcm.shape[1] >= 5 * PER_FRAME


def test_an_audio_encoder_given_nothing_leaves_no_file(tmp_path):
    out = tmp_path / "none.mkv"
    enc = AudioEncoder(out, REGISTRY.encoder("ffv1"), SR, "stereo")
    with pytest.raises(CodecError, match="no audio was written"):
        enc.close()
    assert list(tmp_path.iterdir()) == []


def test_an_audio_codec_that_is_not_there_is_a_codec_error_and_no_file(tmp_path):
    spec = EncoderSpec("odd", "libx264", "mp4", audio_codec="no-such-codec")
    with pytest.raises(CodecError, match="cannot encode odd"):
        Encoder(tmp_path / "odd.mp4", spec, W, H, RATE, audio=(SR, "stereo"))
    assert list(tmp_path.iterdir()) == []


# -- a farm's sound: encoded once, joined with the pictures' parts --------------------------------


@pytest.mark.parametrize(
    ("codec", "suffix", "within"), [("h264", "mp4", AAC_PACKET / SR), ("ffv1", "mkv", 0.001)]
)
def test_the_sound_joined_with_the_parts_starts_with_the_flash(tmp_path, codec, suffix, within):
    spec = REGISTRY.encoder(codec)
    frames, cuts = 16, (0, 6, 12, 16)
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):  # segments: fresh encoders, no sound
        with Encoder(tmp_path / f"part-{k}", spec, W, H, RATE) as enc:
            for n in range(a, b):
                enc.write(picture(n))
        parts.append(enc.path)
    sound = tmp_path / "sound"
    with AudioEncoder(sound, spec, SR, "stereo") as audio:
        audio.write_audio(beep(frames))
    out = tmp_path / f"joined.{suffix}"
    report = join(parts, out, RATE, frames, counts=[6, 6, 4], audio=sound)
    assert report.audio_codec == spec.audio
    pcm, start, _, _ = decoded_audio(out)
    assert abs(start) < 1 / SR
    assert frames * PER_FRAME <= pcm.shape[1] < frames * PER_FRAME + AAC_PACKET
    flashes = flash_times(out)
    assert flashes == pytest.approx([k / 25 for k in FLASH], abs=0.001)
    for flash, onset in zip(flashes, onsets(pcm, start), strict=True):
        assert abs(onset - flash) <= within, (flash, onset)


def test_a_join_without_sound_has_none_and_a_sound_file_of_pictures_is_refused(tmp_path):
    spec = REGISTRY.encoder("ffv1")
    with Encoder(tmp_path / "part", spec, W, H, RATE) as enc:
        enc.write(picture(0))
    report = join([enc.path], tmp_path / "a.mkv", RATE, 1)
    assert report.audio_codec == ""
    with av.open(str(report.path)) as container:
        assert not container.streams.audio
    with pytest.raises(JoinRefused, match="one audio stream"):
        join([enc.path], tmp_path / "b.mkv", RATE, 1, audio=enc.path)
    assert not (tmp_path / "b.mkv").exists()
