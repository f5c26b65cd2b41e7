"""Sound in playback, with real processes: Engine mix -> audio ring ``viewer-audio-*`` -> sink.

The media beep and flash together (:mod:`tests.integration.test_audio_render_e2e`):
a 1 kHz sine over exactly the samples of frames that are white. Played
headless with the ``wav`` sink, the WAV file must start each beep at the
sample of its flash frame (within one frame's samples); read from the rings,
sound n comes with pts n, in order, beside picture n, and is loud exactly
where picture n is white; a seek goes on with the new position's sound, a
pause stops it. No timing assertions: only order, positions and content.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumiera.errors import RingTimeout
from lumiera.shm.ring import Consumer
from lumiera.steam.soundsink import read_wav
from lumiera.testing import Instance, wait_for
from lumiera.vault.feeds import pcm_of_slot
from tests.integration.test_audio_render_e2e import FLASH, FRAMES, PER_FRAME, onsets, write_beeps
from tests.support import build, stop

pytestmark = pytest.mark.integration

W, H = 64, 48
VIEWER = f"viewer-{W}x{H}"
SOUND = "viewer-audio-1mb"  # 1920 stereo float32 samples a frame: a slot of 1 MiB
FIRST = 3  # the clip's position: media frame 2 is output frame 3
LENGTH = FIRST + FRAMES - 2
FLASHES = [FIRST + k - 2 for k in FLASH]  # output frames that are white and beep

Got = tuple[int, float, float]  # pts, published (CLOCK_MONOTONIC), loudness (sound) or luma


def sounding(tmp_path: Path, sink: str = "wav") -> Instance:
    """A headless instance (not started) whose playback's sound goes to ``sink``."""
    defs = ["engine.workers=2", f"audio.sink={sink}", f"audio.wav_path={tmp_path}/{{stream}}.wav"]
    return Instance(["--headless"], defs=defs)


def edit(inst: Instance, media: Path) -> None:
    clip = {"media": "m1", "track": "t1", "position": FIRST, "source_in": 2, "source_out": FRAMES}
    build(inst, [media], [clip])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_beeps(tmp_path_factory.mktemp("media") / "beeps.mkv")


def read(consumer: Consumer, sound: bool, until: float, stop_at: int | None = None) -> list[Got]:
    """What comes into the ring until time ``until`` (or frame ``stop_at``)."""
    got: list[Got] = []
    while time.monotonic() < until:
        try:
            frame = consumer.acquire(0.02)
        except RingTimeout:
            continue
        try:
            if sound:
                level = float(np.abs(pcm_of_slot(frame.planes[0], 2)).max())
            else:
                level = float(frame.planes[0].mean())
            got.append((frame.pts, frame.published, level))
        finally:
            consumer.release(frame)
        if stop_at is not None and frame.pts >= stop_at:
            break
    return got


def player_stream(inst: Instance) -> dict[str, Any]:
    (listed,) = inst.request("player", "streams")
    assert isinstance(listed, dict)
    return listed


def test_the_played_wav_starts_each_beep_at_the_sample_of_its_flash_frame(media, tmp_path):
    with sounding(tmp_path) as inst:
        inst.wait_running()
        edit(inst, media)
        reply = inst.request("player", "play")
        assert reply["audio_ring"] == SOUND and reply["sound"]["sink"] == "wav"
        wait_for(lambda: player_stream(inst)["state"] == "done", 20, "playback done")
        wait_for(lambda: player_stream(inst)["sound"]["sent"] > 0, 5, "the sound read")
        listed = player_stream(inst)
        engine = [s for s in inst.request("engine", "streams") if s["id"] == reply["engine_stream"]]
        stop(inst)
    sound = listed["sound"]
    assert sound.get("error") is None  # a nil field is left out
    # Every frame's sound was either played or, due but missing, written as silence.
    assert sound["sent"] + sound["dropped"] == LENGTH, sound
    assert engine[0]["sound_frames"] + engine[0]["sound_dropped"] == LENGTH, engine
    rate, pcm = read_wav(tmp_path / f"{reply['id']}.wav")
    assert rate == 48000 and pcm.shape == (2, LENGTH * PER_FRAME)
    beeps = [round(t * rate) for t in onsets(pcm, 0.0)]  # the file's sample of each onset
    assert len(beeps) == len(FLASHES), beeps
    for frame, onset in zip(FLASHES, beeps, strict=True):
        assert abs(onset - frame * PER_FRAME) < PER_FRAME, (frame, onset)
    if sound["dropped"] == 0:  # nothing missing: the beep starts on its frame's first sample
        # (the sine rises above onsets()'s threshold at its third sample)
        assert [b - f * PER_FRAME for f, b in zip(FLASHES, beeps, strict=True)] == [2, 2]


def test_sound_n_comes_in_order_with_picture_n_and_is_loud_where_it_flashes(media, tmp_path):
    with sounding(tmp_path, "none") as inst:
        inst.wait_running()
        edit(inst, media)
        reply = inst.request("player", "play")
        with Consumer(inst.rd, SOUND) as sounds, Consumer(inst.rd, VIEWER) as pictures:
            until = time.monotonic() + 20
            heard: list[Got] = []
            seen: list[Got] = []
            while (not heard or heard[-1][0] < LENGTH - 1) and time.monotonic() < until:
                heard += read(sounds, True, time.monotonic() + 0.05)
                seen += read(pictures, False, time.monotonic() + 0.05)
            seen += read(pictures, False, time.monotonic() + 0.3)
            lost = sounds.drops
        engine = [s for s in inst.request("engine", "streams") if s["id"] == reply["engine_stream"]]
        stop(inst)
    assert lost == 0  # this reader kept up with the sound
    heard_pts = [p for p, _, _ in heard]
    assert heard_pts == sorted(set(heard_pts)) and heard_pts[-1] == LENGTH - 1
    # Sound is never dropped for a picture: missing only what was not mixed in time.
    assert len(heard_pts) == LENGTH - engine[0]["sound_dropped"], engine
    by_pts = {p: (published, level) for p, published, level in heard}
    for p, published, luma in seen:
        if p in by_pts:  # its sound, published with it (just before it)
            assert by_pts[p][0] <= published, (p, by_pts[p][0], published)
        assert (luma > 128) == (p in FLASHES), (p, luma)
    loud = sorted(p for p, (_, level) in by_pts.items() if level > 0.1)
    assert loud == [p for p in FLASHES if p in by_pts], loud


def test_a_seek_goes_on_with_the_new_positions_sound_and_a_pause_stops_it(media, tmp_path):
    with sounding(tmp_path) as inst:
        inst.wait_running()
        edit(inst, media)
        played = inst.request("player", "play")
        with Consumer(inst.rd, SOUND) as sounds:
            before = read(sounds, True, time.monotonic() + 5, stop_at=6)
            assert before and before[-1][0] >= 6
            sought = inst.request("player", "seek", {"frame": 20})
            answered = time.monotonic()
            after = read(sounds, True, time.monotonic() + 5, stop_at=24)
            new = [g for g in after if g[1] > answered]  # published after the seek was done
            old = [g for g in after if g[1] <= answered]
            assert new and new[0][0] == 20, new  # the new position's sound, from its first frame
            assert [p for p, _, _ in new] == list(range(20, new[-1][0] + 1))
            assert all(p < 20 for p, _, _ in old), old  # what came before it was the old stream's

            paused = inst.request("player", "pause")
            stopped_at = time.monotonic()
            late = read(sounds, True, time.monotonic() + 0.6)
            assert all(g[1] <= stopped_at for g in late), late  # nothing published after it
            sent = player_stream(inst)["sound"]["sent"]
            time.sleep(0.3)
            assert player_stream(inst)["sound"]["sent"] == sent  # no sound while paused
            wav = tmp_path / f"{played['id']}.wav"
            size = wav.stat().st_size
            time.sleep(0.3)
            assert wav.stat().st_size == size  # paused time is not written
        assert sought["id"] == played["id"] and paused["state"] == "paused"
        stop(inst)
    # The file: frames 0.. as played up to the seek, then 20.. up to the pause: its
    # last beep is the one of frame 24 (the flash at 9 was passed before the seek).
    _rate, pcm = read_wav(wav)
    assert pcm.shape[1] % PER_FRAME == 0
    beeps = onsets(pcm, 0.0)
    assert 1 <= len(beeps) <= 2, beeps
