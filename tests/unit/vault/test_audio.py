"""lumiera.vault.audio: sample-exact decoding of real files, and the timeline's mix."""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track, Transition
from lumiera.errors import MediaChanged, MediaError
from lumiera.vault.audio import AudioMixer, AudioSource, samples_of_range
from tests.unit.vault.audiokit import (
    beeps,
    has_encoder,
    media_of,
    onset,
    write_audio,
    write_av,
    write_silence_flac,
)

SR = 48000
PER_FRAME = 1920  # samples per frame at 25 fps and 48 kHz
BEEP_FRAMES = (10, 37, 81)
FORMATS = [
    ".wav",
    ".flac",
    ".mp4",
    ".m4a",
    pytest.param(
        ".mp3", marks=pytest.mark.skipif(not has_encoder("libmp3lame"), reason="no MP3 encoder")
    ),
]
LOSSY = (".mp4", ".m4a", ".mp3")


def timeline(
    media: list[Media],
    clips: list[Clip],
    *,
    rate: Fraction = Fraction(25),
    layout: str = "stereo",
    transitions: tuple[Transition, ...] = (),
    kinds: dict[str, str] | None = None,
) -> Timeline:
    kinds = kinds or {}
    tracks = sorted({c.track for c in clips})
    made = Timeline(
        Output(64, 48, rate, SR, layout),
        tuple(media),
        tuple(Track(t, t, kinds.get(t, "audio")) for t in tracks),
        tuple(clips),
        transitions=transitions,
    )
    assert made.invalid() is None, made.invalid()
    return made


def frames_of(source: AudioSource, first: int, count: int) -> np.ndarray[Any, Any]:
    """Frames ``first ..`` at 25 fps read one by one, as one array."""
    return np.concatenate([source.read(SR // 25 * n, PER_FRAME) for n in range(first, count)], 1)


@pytest.fixture(scope="module")
def beeping(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s of mono sound at 48 kHz, a one-frame beep at each of BEEP_FRAMES, in each format."""
    where = tmp_path_factory.mktemp("beeps")
    signal = beeps(SR, 4 * SR, [f * PER_FRAME for f in BEEP_FRAMES], PER_FRAME)
    written = {}
    for suffix in (".wav", ".flac", ".mp4", ".m4a", ".mp3"):
        if suffix != ".mp3" or has_encoder("libmp3lame"):
            written[suffix] = write_audio(where / f"beeps{suffix}", signal, SR)
    return written


def onsets(sound: np.ndarray[Any, Any], per: int = PER_FRAME) -> list[int]:
    """The onset of each beep (beeps are at least a frame apart)."""
    found, at = [], 0
    while (k := onset(sound[0, at:])) >= 0:
        found.append(at + k)
        at += k + 2 * per
    return found


# -- decoding: where the samples are -------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_beep_is_at_its_exact_sample_reading_on(beeping: dict[str, Path], suffix: str) -> None:
    # Measured: FFmpeg's AAC in MP4/M4A (edit list) and LAME's MP3 header let the
    # decoder drop the priming exactly: 0 samples off, for every format here.
    source = AudioSource(media_of(beeping[suffix]), SR, "mono")
    with_frames = frames_of(source, 0, 100)
    assert with_frames.shape == (1, 100 * PER_FRAME)
    assert with_frames.dtype == np.float32
    assert onsets(with_frames) == [f * PER_FRAME for f in BEEP_FRAMES]
    assert source.seeks == 1  # frame after frame: one seek (to the start), then decoding on
    source.close()


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_read_anywhere_seeks_to_the_exact_sample(beeping: dict[str, Path], suffix: str) -> None:
    whole = AudioSource(media_of(beeping[suffix]), SR, "mono").read(0, 4 * SR)
    source = AudioSource(media_of(beeping[suffix]), SR, "mono")
    for frame in reversed(BEEP_FRAMES):  # backwards: every read seeks
        start = frame * PER_FRAME - 500
        part = source.read(start, 3000)
        assert onset(part) == 500
        if suffix in LOSSY:  # the decoder warmed up in the preroll: as decoded straight
            assert np.abs(part - whole[:, start : start + 3000]).max() < 1e-3
        else:
            assert np.array_equal(part, whole[:, start : start + 3000])
    assert source.seeks == len(BEEP_FRAMES)
    source.close()


@pytest.mark.parametrize(("name", "codec"), [("aac.mkv", "aac"), ("mp3.mkv", "libmp3lame")])
def test_a_coarse_clock_is_read_on_the_codec_frame_grid(
    tmp_path: Path, name: str, codec: str
) -> None:
    # Matroska's 1 ms clock is 48 samples: a seek placed by pts alone was 16 off
    # (measured); on the frame grid of a fixed-size codec it is exact.
    if not has_encoder(codec):
        pytest.skip(f"no {codec} encoder")
    signal = beeps(SR, 4 * SR, [f * PER_FRAME for f in BEEP_FRAMES], PER_FRAME)
    path = write_audio(tmp_path / name, signal, SR, codec=codec)
    assert onsets(frames_of(AudioSource(media_of(path), SR, "mono"), 0, 100)) == [
        f * PER_FRAME for f in BEEP_FRAMES
    ]
    source = AudioSource(media_of(path), SR, "mono")
    for frame in reversed(BEEP_FRAMES):
        assert onset(source.read(frame * PER_FRAME - 700, 3000)) == 700


def test_raw_aac_keeps_its_priming(tmp_path: Path) -> None:
    # ADTS has no edit list: the encoder's 1024 priming samples are heard first
    # and everything is 1024 samples late (measured); MP4/M4A/MKV trim it.
    signal = beeps(SR, 2 * SR, [10 * PER_FRAME], PER_FRAME)
    path = write_audio(tmp_path / "raw.aac", signal, SR)
    assert onsets(AudioSource(media_of(path), SR, "mono").read(0, 2 * SR)) == [
        10 * PER_FRAME + 1024
    ]


def test_reads_outside_the_sound_are_silence(beeping: dict[str, Path]) -> None:
    source = AudioSource(media_of(beeping[".flac"]), SR, "stereo")
    before = source.read(-100, 200)
    assert before.shape == (2, 200) and not before[:, :100].any()
    assert not source.read(4 * SR - 10, 1000)[:, 10:].any()  # past its end
    assert not source.read(10 * SR, 500).any()
    assert source.read(5, 0).shape == (2, 0)
    source.close()


def test_resampled_sound_keeps_its_place(tmp_path: Path) -> None:
    rate = 44100
    at = [round(f * rate / 25) for f in BEEP_FRAMES]
    path = write_audio(tmp_path / "cd.flac", beeps(rate, 4 * rate, at, rate // 25), rate)
    source = AudioSource(media_of(path), SR, "mono")
    found = onsets(frames_of(source, 0, 100))
    assert all(abs(f - b * PER_FRAME) <= 1 for f, b in zip(found, BEEP_FRAMES, strict=True))
    assert abs(onset(source.read(BEEP_FRAMES[1] * PER_FRAME - 300, 1000)) - 300) <= 1


def test_mono_sounds_in_both_channels_of_stereo(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "mono.wav", np.full((1, SR), 0.5), SR)
    left, right = AudioSource(media_of(path), SR, "stereo").read(1000, 100)
    assert np.array_equal(left, right)
    assert left == pytest.approx(0.5 / math.sqrt(2), abs=1e-4)  # FFmpeg's -3 dB centre
    surround = AudioSource(media_of(path), SR, "5.1").read(1000, 100)
    assert surround.shape == (6, 100)
    assert surround[2] == pytest.approx(0.5, abs=1e-4) and not surround[[0, 1, 3, 4, 5]].any()


# -- what a source refuses -------------------------------------------------------


def test_missing_changed_and_soundless_media_are_refused(
    beeping: dict[str, Path], tmp_path: Path
) -> None:
    media = media_of(beeping[".wav"])
    with pytest.raises(MediaError, match=r"gone\.wav"):
        AudioSource(dataclasses.replace(media, path=str(tmp_path / "gone.wav")), SR, "mono")
    changed = dataclasses.replace(media, size=media.size + 1)
    with pytest.raises(MediaChanged, match="changed on disk"):
        AudioSource(changed, SR, "mono")
    silent = dataclasses.replace(media, audio_rate=0, audio_channels=0, width=64)
    with pytest.raises(MediaError, match="has no audio"):
        AudioSource(silent, SR, "mono")
    from tests.unit.vault.mediakit import write_video

    video = media_of(write_video(tmp_path / "v.mkv", 5, "ffv1"))
    claims = dataclasses.replace(video, audio_rate=SR, audio_channels=1)
    with pytest.raises(MediaError, match="no audio stream"):
        AudioSource(claims, SR, "mono")


def test_a_file_rewritten_while_open_is_caught(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.wav", np.zeros((1, SR)), SR)
    source = AudioSource(media_of(path), SR, "mono")
    source.read(0, 100)
    write_audio(path, np.zeros((1, 2 * SR)), SR)
    with pytest.raises(MediaChanged):
        source.read(100, 100)


def corrupt(path: Path, where: float = 0.4, size: int = 2000) -> Path:
    data = bytearray(path.read_bytes())
    at = int(len(data) * where)
    data[at : at + size] = np.random.default_rng(7).integers(0, 256, size, np.uint8).tobytes()
    bad = path.with_name(f"bad-{path.name}")
    bad.write_bytes(bytes(data))
    return bad


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """6 s of a tone in noise (every byte matters) in each format."""
    where = tmp_path_factory.mktemp("noisy")
    t = np.arange(6 * SR) / SR
    noise = np.random.default_rng(3).standard_normal(t.size)
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * noise)[None, :]
    written = {}
    for suffix in (".wav", ".flac", ".mp4", ".m4a", ".mp3"):
        if suffix != ".mp3" or has_encoder("libmp3lame"):
            written[suffix] = write_audio(where / f"noisy{suffix}", signal, SR)
    return written


@pytest.mark.parametrize("suffix", [".flac", ".mp4", ".m4a", ".mp3"])
def test_corrupt_sound_is_a_media_error_naming_file_and_sample(
    noisy: dict[str, Path], suffix: str
) -> None:
    if suffix not in noisy:
        pytest.skip("no MP3 encoder")
    assert AudioSource(media_of(noisy[suffix]), SR, "mono").read(0, 6 * SR).any()
    bad = corrupt(noisy[suffix])
    source = AudioSource(media_of(bad), SR, "mono")
    with pytest.raises(MediaError, match=rf"{re.escape(str(bad))}.* at sample \d+") as caught:
        for n in range(150):
            source.read(n * PER_FRAME, PER_FRAME)
    at = int(str(caught.value).split(" at sample ")[1].split()[0])
    assert SR < at < 5 * SR  # where the garbage is (40% into the file), roughly


def test_a_truncated_flac_is_a_media_error(noisy: dict[str, Path], tmp_path: Path) -> None:
    data = noisy[".flac"].read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2 + 333])
    source = AudioSource(media_of(cut), SR, "mono")
    with pytest.raises(MediaError, match=re.escape(str(cut))):
        source.read(0, 6 * SR)


def test_the_mix_of_corrupt_sound_is_a_media_error(noisy: dict[str, Path]) -> None:
    media = media_of(corrupt(noisy[".m4a"]), "m")
    with (
        AudioMixer(timeline([media], [Clip("c", "m", "A1", 0, 0, 150)])) as mixer,
        pytest.raises(MediaError, match=re.escape(media.path)),
    ):
        mixer.mix(*samples_of_range(mixer.output, 0, 150))


def test_garbage_in_pcm_is_noise_nobody_can_tell(noisy: dict[str, Path]) -> None:
    # PCM has no redundancy: a WAV's garbage decodes as (loud) sound, not an error.
    source = AudioSource(media_of(corrupt(noisy[".wav"])), SR, "mono")
    assert source.read(0, 6 * SR).shape == (1, 6 * SR)


# -- the mix ---------------------------------------------------------------------


def dc(tmp_path: Path, name: str, level: float, seconds: int = 4, channels: int = 2) -> Media:
    """A WAV of a constant level (exact in s16 for 0.25, 0.5, -0.5 ...)."""
    path = write_audio(tmp_path / f"{name}.wav", np.full((channels, seconds * SR), level), SR)
    return media_of(path, name)


def test_two_tracks_mix_with_their_gains(tmp_path: Path) -> None:
    a, b = dc(tmp_path, "a", 0.25), dc(tmp_path, "b", 0.5)
    clips = [Clip("ca", "a", "A1", 0, 0, 50), Clip("cb", "b", "A2", 10, 0, 50, gain_db=-6.0)]
    with AudioMixer(timeline([a, b], clips)) as mixer:
        alone = mixer.frame(5)
        both = mixer.frame(20)
        first, count = samples_of_range(mixer.output, 9, 2)
        edge = mixer.mix(first, count)  # frame 9 (a) and 10 (a and b)
    assert alone.shape == (2, PER_FRAME) and alone == pytest.approx(0.25)
    assert both == pytest.approx(0.25 + 0.5 * 10 ** (-6 / 20), abs=1e-6)
    assert edge[:, :PER_FRAME] == pytest.approx(0.25)
    assert edge[:, PER_FRAME:] == pytest.approx(0.25 + 0.5 * 10 ** (-6 / 20), abs=1e-6)


def test_the_mix_is_clipped_at_plus_and_minus_one(tmp_path: Path) -> None:
    up, down = dc(tmp_path, "up", 0.5), dc(tmp_path, "down", -0.5)
    clips = [
        Clip("c1", "up", "A1", 0, 0, 10, gain_db=6.0),
        Clip("c2", "up", "A2", 0, 0, 10, gain_db=6.0),
        Clip("c3", "down", "A1", 10, 0, 10, gain_db=12.0),
    ]
    with AudioMixer(timeline([up, down], clips)) as mixer:
        assert np.all(mixer.frame(3) == 1.0)
        assert np.all(mixer.frame(13) == -1.0)
        assert not mixer.frame(25).any()  # after every clip: silence


@pytest.mark.parametrize("curve", ["linear", "equal_power"])
def test_a_crossfade_blends_with_its_curve(tmp_path: Path, curve: str) -> None:
    a, b = dc(tmp_path, "a", 0.5), dc(tmp_path, "b", -0.25)
    clips = [Clip("ca", "a", "A1", 0, 0, 30), Clip("cb", "b", "A1", 20, 0, 30)]
    fade = Transition("x", "ca", "cb", curve)
    with AudioMixer(timeline([a, b], clips, transitions=(fade,))) as mixer:
        first, count = samples_of_range(mixer.output, 20, 10)  # the overlap: frames 20..29
        sound = mixer.mix(first, count)[0]
        before, after = mixer.frame(19), mixer.frame(30)
    u = np.arange(count) / count
    out, into = (1 - u, u) if curve == "linear" else (np.cos(u * np.pi / 2), np.sin(u * np.pi / 2))
    assert sound == pytest.approx(0.5 * out - 0.25 * into, abs=1e-6)
    half = 0.5 if curve == "linear" else math.sqrt(0.5)  # both gains at u = 0.5
    assert sound[count // 2] == pytest.approx(0.5 * half - 0.25 * half, abs=1e-7)
    assert sound[0] == pytest.approx(0.5)
    assert before == pytest.approx(0.5) and after == pytest.approx(-0.25)


def test_a_clip_plays_its_media_from_source_in(beeping: dict[str, Path]) -> None:
    media = media_of(beeping[".flac"], "m")  # beeps at media frames 10, 37, 81
    clip = Clip("c", "m", "A1", 5, 30, 60)  # media frame 37 at output frame 12
    for rate in (Fraction(25), Fraction(30000, 1001)):
        with AudioMixer(timeline([media], [clip], rate=rate)) as mixer:
            first, count = samples_of_range(mixer.output, 0, 40)
            sound = mixer.mix(first, count)
        start = mixer.output.sample_of(5)  # the clip's sound starts at media time 30/25 s
        assert onsets(sound) == [start + (37 - 30) * PER_FRAME]


def test_one_reader_serves_a_clip_and_its_continuation(beeping: dict[str, Path]) -> None:
    media = media_of(beeping[".flac"], "m")
    clips = [Clip("c1", "m", "A1", 0, 0, 40), Clip("c2", "m", "A1", 40, 40, 90)]
    with AudioMixer(timeline([media], clips)) as mixer:
        sound = np.concatenate([mixer.frame(n) for n in range(90)], 1)
        assert len(mixer._sources) == 1 and mixer._sources[0].seeks == 1
    assert onsets(sound) == [f * PER_FRAME for f in BEEP_FRAMES]


def test_a_video_clip_sounds_with_its_media(tmp_path: Path) -> None:
    for name, codecs in (("av.mp4", ("libx264", "aac")), ("av.mkv", ("ffv1", "flac"))):
        signal = beeps(SR, 2 * SR, [12 * PER_FRAME], PER_FRAME, channels=2)
        path = write_av(
            tmp_path / name, 50, signal, SR, video_codec=codecs[0], audio_codec=codecs[1]
        )
        media = media_of(path, "v")
        assert media.has_video and media.has_audio
        clip = Clip("c", "v", "V1", 3, 2, 40)  # media frame 12 at output frame 13
        with AudioMixer(timeline([media], [clip], kinds={"V1": "video"})) as mixer:
            sound = np.concatenate([mixer.frame(n) for n in range(45)], 1)
        assert onsets(sound) == [13 * PER_FRAME], name


@pytest.fixture(scope="module")
def long_sound(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """10 minutes of silence with beeps at minutes 1 and 9, at 48 and 44.1 kHz."""
    where = tmp_path_factory.mktemp("long")
    return {
        rate: write_silence_flac(
            where / f"long{rate}.flac", rate, 600, [60 * rate, 540 * rate], 800
        )
        for rate in (SR, 44100)
    }


@pytest.mark.parametrize(("fps", "rate"), [(Fraction(25), SR), (Fraction(30000, 1001), 44100)])
def test_ten_minutes_frame_by_frame_do_not_drift(
    long_sound: dict[int, Path], fps: Fraction, rate: int
) -> None:
    media = media_of(long_sound[rate], "m", rate=fps)
    frames = media.frames
    assert frames == math.floor(600 * fps)
    with AudioMixer(timeline([media], [Clip("c", "m", "A1", 0, 0, frames)], rate=fps)) as mixer:
        total, heard = 0, list[int]()
        for n in range(frames):
            sound = mixer.frame(n)
            assert sound.shape[1] == mixer.output.samples_in(n)
            if (k := onset(sound)) >= 0 and (not heard or total + k > heard[-1] + SR):
                heard.append(total + k)
            total += sound.shape[1]
        assert total == sum(mixer.output.samples_in(n) for n in range(frames))
        assert total == mixer.output.sample_of(frames)
        assert mixer._sources[0].seeks == 1
    slack = 0 if rate == SR else 1  # resampled: within a sample
    assert len(heard) == 2
    assert abs(heard[0] - 60 * SR) <= slack and abs(heard[1] - 540 * SR) <= slack


def test_samples_of_range() -> None:
    ntsc = Output(rate=Fraction(30000, 1001))
    assert samples_of_range(Output(), 10, 3) == (19200, 5760)
    assert samples_of_range(ntsc, 0, 5) == (0, 8008)  # 1602 1601 1602 1601 1602
    assert [samples_of_range(ntsc, n, 1)[1] for n in range(5)] == [1602, 1601, 1602, 1601, 1602]
    assert samples_of_range(ntsc, 0, 30000) == (0, 1001 * 48000)
