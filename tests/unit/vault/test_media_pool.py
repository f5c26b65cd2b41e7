"""The media pool: exact frames by number, a bounded number of open files, and refusals.

Every frame of the media here carries its own number as a binary code in its
pixels (see mediakit), so a test can tell which frame it got, whatever the
codec did to the pixels.
"""

from __future__ import annotations

import os
import random
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumiera.errors import MediaChanged, MediaError
from lumiera.vault import streamspec
from lumiera.vault.media import SEEK_AHEAD, Identity, MediaPool, round_ratio
from lumiera.vault.streamspec import decode_threads
from tests.support import write_audio_only

from .mediakit import (
    H,
    W,
    code_at,
    coded_planes,
    image,
    keyframes,
    planes_of,
    read_code,
    write_planes,
    write_video,
)

NTSC = Fraction(30000, 1001)
GOP12 = {"g": "12", "bf": "2", "preset": "ultrafast"}
# one keyframe at 0 and the next at 250: frames up to 249 are decoded from frame 0
GOP250 = {"g": "250", "keyint_min": "250", "sc_threshold": "0", "bf": "3"}


def _opts(codec: str) -> dict[str, str] | None:
    return GOP12 if codec == "libx264" else None


# name -> frames
MEDIA = {
    "h264-gop12.mp4": 100,
    "h264-gop250.mp4": 300,
    "ffv1.mkv": 100,
    "h264-ntsc.mp4": 60,
    "ffv1-ntsc.mkv": 60,
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "h264-gop12.mp4": write_video(d / "h264-gop12.mp4", 100, options=GOP12),
        "h264-gop250.mp4": write_video(d / "h264-gop250.mp4", 300, options=GOP250),
        "ffv1.mkv": write_video(d / "ffv1.mkv", 100, "ffv1"),
        "h264-ntsc.mp4": write_video(d / "h264-ntsc.mp4", 60, rate=NTSC, options=GOP12),
        "ffv1-ntsc.mkv": write_video(d / "ffv1-ntsc.mkv", 60, "ffv1", rate=NTSC),
    }


@pytest.fixture
def pool():
    p = MediaPool()
    yield p
    p.close()


# -- the media themselves ----------------------------------------------------------


def test_the_test_media_have_the_keyframes_the_tests_rely_on(media):
    assert keyframes(media["h264-gop250.mp4"]) == [0, 250]
    assert keyframes(media["h264-gop12.mp4"]) == list(range(0, 100, 12))


def test_every_frame_of_every_test_medium_decodes_to_its_own_number_without_the_pool(media):
    for name, frames in MEDIA.items():
        with av.open(str(media[name])) as container:
            codes = [read_code(f.to_ndarray(format="gray")) for f in container.decode(video=0)]
        assert codes == list(range(frames)), name


# -- exact frames --------------------------------------------------------------------


@pytest.mark.parametrize("name", MEDIA)
@settings(max_examples=20, deadline=None, database=None)
@given(data=st.data())
def test_any_sequence_of_random_positions_gives_exactly_the_frames_asked_for(media, name, data):
    frames = MEDIA[name]
    indices = data.draw(st.lists(st.integers(0, frames - 1), min_size=1, max_size=12))
    pool = MediaPool()
    try:
        assert [code_at(pool, media[name], i) for i in indices] == indices
    finally:
        pool.close()


@pytest.mark.parametrize("name", MEDIA)
def test_two_hundred_seeded_random_positions_on_one_pool_are_all_exact(media, name, pool):
    frames = MEDIA[name]
    rnd = random.Random(f"positions-{name}")
    indices = [rnd.randrange(frames) for _ in range(200)]
    assert [code_at(pool, media[name], i) for i in indices] == indices


@pytest.mark.parametrize("name", MEDIA)
def test_reading_every_frame_in_order_is_exact_and_seeks_only_once(media, name, pool):
    frames = MEDIA[name]
    assert [code_at(pool, media[name], i) for i in range(frames)] == list(range(frames))
    assert pool.seeks == 1
    assert pool.opens == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_a_pool_of_given_decoder_threads_decodes_each_frame_as_the_default_pool_does(
    media, threads
):
    path = str(media["h264-gop12.mp4"])
    ours, default = MediaPool(threads=threads), MediaPool()
    try:
        rnd = random.Random(f"threads-{threads}")
        for index in [*range(MEDIA["h264-gop12.mp4"]), *(rnd.randrange(100) for _ in range(30))]:
            got, want = ours.frame(path, index, "yuv420p"), default.frame(path, index, "yuv420p")
            assert all((g == w).all() for g, w in zip(got, want, strict=True)), index
            assert code_at(ours, path, index) == index  # and it is the frame asked for
        assert ours._open[path].stream.codec_context.thread_count == threads
    finally:
        ours.close()
        default.close()


def test_decode_threads_one_for_an_engine_of_two_cores_or_fewer_else_ffmpegs_count(monkeypatch):
    monkeypatch.setattr(streamspec, "usable_cores", lambda: 16)
    assert [decode_threads(0, workers) for workers in (1, 2, 3, 16)] == [1, 1, 0, 0]
    monkeypatch.setattr(streamspec, "usable_cores", lambda: 2)  # 16 workers on 2 cores
    assert [decode_threads(0, workers) for workers in (2, 16)] == [1, 1]
    assert decode_threads(4, 2) == 4  # configured: as configured
    assert decode_threads(1, 16) == 1
    with pytest.raises(ValueError, match="decode_threads"):
        decode_threads(-1, 2)
    with pytest.raises(ValueError, match="threads"):
        MediaPool(threads=-1)


def test_reading_forward_within_the_seek_ahead_distance_keeps_decoding(media, pool):
    path = media["h264-gop12.mp4"]
    forward = [0, 1, 3, 7, 7 + SEEK_AHEAD - 1]
    assert [code_at(pool, path, i) for i in forward] == forward
    assert pool.seeks == 1


def test_a_jump_far_ahead_or_backwards_seeks_and_is_still_exact(media, pool):
    path = media["h264-gop12.mp4"]
    assert code_at(pool, path, 5) == 5
    assert pool.seeks == 1
    assert code_at(pool, path, 5 + SEEK_AHEAD + 10) == 5 + SEEK_AHEAD + 10
    assert pool.seeks == 2
    assert code_at(pool, path, 2) == 2
    assert pool.seeks == 3
    assert code_at(pool, path, 3) == 3  # and forward again from there
    assert pool.seeks == 3


def test_a_frame_deep_in_a_long_gop_is_decoded_from_the_keyframe_before_it(media, pool):
    path = media["h264-gop250.mp4"]
    for index in (249, 1, 200, 250, 251, 299, 120):
        assert code_at(pool, path, index) == index


def test_the_same_frame_twice_gives_the_same_pixels(media, pool):
    path = media["h264-gop12.mp4"]
    first = image(pool, path, 30, "rgb24")
    again = image(pool, path, 30, "rgb24")
    assert np.array_equal(first, again)
    assert read_code(again) == 30


@pytest.mark.parametrize("name", MEDIA)
def test_the_first_and_the_last_frame_are_exact_read_in_either_order(media, name):
    last = MEDIA[name] - 1
    for order in ([0, last], [last, 0]):
        pool = MediaPool()
        try:
            assert [code_at(pool, media[name], i) for i in order] == order
        finally:
            pool.close()


@pytest.mark.parametrize("name", MEDIA)
def test_a_frame_past_the_end_is_a_media_error_naming_the_file_and_frame(media, name, pool):
    frames, path = MEDIA[name], media[name]
    for index in (frames, frames + 1, frames + 1000):
        with pytest.raises(MediaError, match=f"frame {index} does not exist") as err:
            pool.frame(str(path), index)
        assert type(err.value) is MediaError
        assert str(path) in str(err.value)
    assert code_at(pool, path, frames - 1) == frames - 1  # the pool goes on


def test_the_frame_after_the_last_one_read_in_order_is_a_media_error(media, pool):
    path = media["ffv1.mkv"]
    assert [code_at(pool, path, i) for i in range(95, 100)] == list(range(95, 100))
    with pytest.raises(MediaError, match="frame 100 does not exist"):
        pool.frame(str(path), 100)
    assert code_at(pool, path, 99) == 99


@pytest.mark.parametrize("index", [-1, -2, -1000])
def test_a_negative_frame_is_a_media_error_naming_the_file(media, pool, index):
    path = media["h264-gop12.mp4"]
    with pytest.raises(MediaError, match=f"frame {index} does not exist") as err:
        pool.frame(str(path), index)
    assert str(path) in str(err.value)
    assert code_at(pool, path, 0) == 0


def test_a_returned_frame_is_not_changed_by_reading_later_frames(media, pool):
    path = media["ffv1.mkv"]
    kept = {fmt: pool.frame(str(path), 10, fmt) for fmt in ("gray", "rgb24", "rgba", "yuv420p")}
    copies = {
        fmt: tuple(p.copy() for p in v) if isinstance(v, tuple) else v.copy()
        for fmt, v in kept.items()
    }
    for i in range(11, 40):
        pool.frame(str(path), i, "gray")
    for fmt, value in kept.items():
        if isinstance(value, tuple):
            assert all(np.array_equal(a, b) for a, b in zip(value, copies[fmt], strict=True))
        else:
            assert np.array_equal(value, copies[fmt]), fmt


# -- more files than handles ---------------------------------------------------------


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Five files whose frames are numbered apart: file k holds frames k*1000 + 0..19."""
    d = tmp_path_factory.mktemp("five")
    out = []
    for k in range(5):
        codec, suffix = ("ffv1", "mkv") if k % 2 else ("libx264", "mp4")
        out.append(
            write_video(d / f"f{k}.{suffix}", 20, codec, first=k * 1000, options=_opts(codec))
        )
    return out


def test_interleaved_access_to_more_files_than_handles_is_exact_and_bounded(five):
    pool = MediaPool(max_open=2)
    try:
        reads = 0
        for i in range(20):
            for k, path in enumerate(five):
                assert code_at(pool, path, i) == k * 1000 + i
                reads += 1
                assert pool.open_count <= 2
        # round robin over five files with two handles: every read reopens its file
        assert pool.opens == reads
    finally:
        pool.close()
    assert pool.open_count == 0


def test_the_least_recently_used_file_is_the_one_closed(five):
    a, b, c = five[:3]
    pool = MediaPool(max_open=2)
    try:
        code_at(pool, a, 0)
        code_at(pool, b, 0)
        code_at(pool, a, 1)  # a is now more recent than b
        code_at(pool, c, 0)  # closes b
        assert pool.opens == 3
        assert code_at(pool, a, 2) == 2  # still open, decoding on
        assert pool.opens == 3
        assert code_at(pool, b, 1) == 1001  # reopened
        assert pool.opens == 4
        assert pool.open_count == 2
    finally:
        pool.close()


def test_a_closed_pool_reopens_files_on_demand(five):
    pool = MediaPool(max_open=3)
    try:
        assert code_at(pool, five[0], 3) == 3
        pool.close()
        assert pool.open_count == 0
        assert code_at(pool, five[0], 4) == 4
        assert (pool.opens, pool.open_count) == (2, 1)
    finally:
        pool.close()


def test_a_pool_of_one_handle_still_gives_exact_frames(five):
    pool = MediaPool(max_open=1)
    try:
        for i in (5, 0, 19):
            for k, path in enumerate(five):
                assert code_at(pool, path, i) == k * 1000 + i
                assert pool.open_count == 1
    finally:
        pool.close()


@pytest.mark.parametrize("max_open", [0, -1])
def test_a_pool_needs_at_least_one_handle(max_open):
    with pytest.raises(ValueError, match="at least 1"):
        MediaPool(max_open=max_open)


# -- files that are not usable media -------------------------------------------------


def _truncated_mp4(d: Path) -> Path:
    data = write_video(d / "src.mp4", 50, options=GOP12).read_bytes()
    bad = d / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    return bad


def _text(d: Path) -> Path:
    bad = d / "notes.mp4"
    bad.write_text("this is not a video\n" * 200)
    return bad


def _empty(d: Path) -> Path:
    bad = d / "empty.mkv"
    bad.write_bytes(b"")
    return bad


def _missing(d: Path) -> Path:
    return d / "missing.mp4"


def _directory(d: Path) -> Path:
    bad = d / "clips.mp4"
    bad.mkdir()
    return bad


def _audio_only(d: Path) -> Path:
    return write_audio_only(d / "silence.wav")


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_truncated_mp4, "cannot open"),
        (_text, "cannot open"),
        (_empty, "cannot open"),
        (_missing, "No such file"),
        (_directory, "cannot open"),
        (_audio_only, "no video stream"),
    ],
    ids=["truncated-mp4", "text", "empty", "missing", "directory", "audio-only"],
)
def test_a_file_that_cannot_be_opened_is_a_media_error_and_the_pool_goes_on(
    tmp_path, media, pool, make, what
):
    good = media["ffv1.mkv"]
    assert code_at(pool, good, 0) == 0
    bad = make(tmp_path)
    for index in (0, 3):
        with pytest.raises(MediaError, match=what) as err:
            pool.frame(str(bad), index)
        assert str(bad) in str(err.value)
        assert type(err.value) is MediaError
    assert pool.open_count == 1
    assert code_at(pool, good, 1) == 1


def test_a_matroska_file_cut_in_half_gives_its_first_frames_and_errors_after(tmp_path, pool):
    data = write_video(tmp_path / "src.mkv", 100, "ffv1").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    assert [code_at(pool, cut, i) for i in range(20)] == list(range(20))
    failures = 0
    for index in (99, 80, 60, 0, 10):
        try:
            assert code_at(pool, cut, index) == index
        except MediaError as e:
            assert str(cut) in str(e)
            failures += 1
    assert failures >= 2  # 99 and 80 are gone for sure
    assert code_at(pool, cut, 5) == 5


def _corrupt(tmp_path: Path, codec: str, suffix: str, seed: int) -> Path:
    """100 frames with random bytes over the middle third of the file."""
    src = write_video(tmp_path / f"src.{suffix}", 100, codec, options=_opts(codec))
    data = bytearray(src.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = random.Random(seed).randbytes(third)
    bad = tmp_path / f"corrupt.{suffix}"
    bad.write_bytes(bytes(data))
    return bad


def _exact_or_errors(pool: MediaPool, bad: Path) -> int:
    """Read every frame of ``bad``: each one exact or a MediaError naming it; errors counted."""
    errors = 0
    for index in [*range(100), 90, 50, 10, 0]:
        try:
            got = code_at(pool, bad, index)
        except MediaError as e:
            assert str(bad) in str(e)
            errors += 1
        else:
            assert got == index, "a wrong frame"
    return errors


@pytest.mark.parametrize(("codec", "suffix"), [("libx264", "mp4"), ("ffv1", "mkv")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_file_with_random_bytes_in_the_middle_gives_exact_frames_or_media_errors(
    tmp_path, pool, codec, suffix, seed
):
    bad = _corrupt(tmp_path, codec, suffix, seed)
    assert _exact_or_errors(pool, bad) > 0
    assert code_at(pool, tmp_path / f"src.{suffix}", 42) == 42  # the pool goes on


def test_a_frame_the_decoder_flags_as_corrupt_is_a_media_error_not_a_wrong_picture(tmp_path, pool):
    bad = _corrupt(tmp_path, "libx264", "mkv", seed=1)
    assert _exact_or_errors(pool, bad) > 0


# -- files changed on disk -----------------------------------------------------------


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_video(tmp_path / "clip.mkv", 30, "ffv1")


def test_a_file_rewritten_after_registration_raises_media_changed_naming_it(clip, pool):
    pool.register(str(clip))
    write_video(clip, 40, "ffv1", first=1000)
    with pytest.raises(MediaChanged) as err:
        pool.frame(str(clip), 0)
    assert str(clip) in str(err.value)
    assert isinstance(err.value, MediaError)


def test_a_file_touched_after_registration_raises_media_changed(clip, pool):
    pool.register(str(clip))
    st = os.stat(clip)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(MediaChanged):
        pool.frame(str(clip), 0)


def test_a_file_replaced_by_a_copy_with_the_same_size_and_mtime_raises_media_changed(clip, pool):
    was = pool.register(str(clip))
    copy = clip.with_name("copy.mkv")
    shutil.copy2(clip, copy)
    os.replace(copy, clip)
    now = Identity.of(str(clip))
    assert (now.size, now.mtime_ns) == (was.size, was.mtime_ns)
    assert now.inode != was.inode
    with pytest.raises(MediaChanged):
        pool.frame(str(clip), 0)


def test_an_identity_probed_before_a_change_is_checked_when_registered_after_it(clip, pool):
    probed = Identity.of(str(clip))
    write_video(clip, 30, "ffv1", first=1000)
    assert pool.register(str(clip), probed) == probed
    with pytest.raises(MediaChanged):
        pool.frame(str(clip), 0)


def test_an_unregistered_file_is_remembered_as_first_opened_and_checked_on_reopening(clip, five):
    pool = MediaPool(max_open=1)
    try:
        assert code_at(pool, clip, 3) == 3
        code_at(pool, five[0], 0)  # closes clip
        write_video(clip, 30, "ffv1", first=1000)
        with pytest.raises(MediaChanged):
            pool.frame(str(clip), 3)
    finally:
        pool.close()


def test_after_media_changed_other_files_are_served_and_a_new_registration_is_accepted(
    clip, media, pool
):
    pool.register(str(clip))
    write_video(clip, 30, "ffv1", first=1000)
    with pytest.raises(MediaChanged):
        pool.frame(str(clip), 0)
    with pytest.raises(MediaChanged):  # still refused: it is not what was probed
        pool.frame(str(clip), 0)
    assert code_at(pool, media["ffv1.mkv"], 7) == 7
    pool.register(str(clip))  # probed again
    assert code_at(pool, clip, 7) == 1007


def test_an_unchanged_registered_file_is_served(clip, pool):
    assert pool.register(str(clip)) == Identity.of(str(clip))
    assert code_at(pool, clip, 29) == 29


def test_the_identity_of_a_missing_file_is_a_media_error_naming_it(tmp_path):
    missing = tmp_path / "gone.mkv"
    with pytest.raises(MediaError, match="No such file") as err:
        Identity.of(str(missing))
    assert str(missing) in str(err.value)


def test_a_file_rewritten_while_the_pool_has_it_open_is_reported_not_decoded(clip, pool):
    pool.register(str(clip))
    assert code_at(pool, clip, 0) == 0
    write_video(clip, 30, "ffv1", first=1000)  # rewritten in place: same inode
    with pytest.raises(MediaChanged):
        pool.frame(str(clip), 29)  # today: frame 1029 of the new file


# -- pixel formats and sizes ---------------------------------------------------------


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[np.ndarray, ...]]]:
    """Lossless 65x49 media of random planes (chroma 33x25), and those planes."""
    rng = np.random.default_rng(7)
    frames = [
        (
            rng.integers(0, 256, (49, 65), dtype=np.uint8),
            rng.integers(0, 256, (25, 33), dtype=np.uint8),
            rng.integers(0, 256, (25, 33), dtype=np.uint8),
        )
        for _ in range(6)
    ]
    path = write_planes(tmp_path_factory.mktemp("odd") / "odd.mkv", frames, "ffv1")
    return path, list(frames)


@pytest.mark.parametrize(
    ("fmt", "shape"), [("rgb24", (H, W, 3)), ("rgba", (H, W, 4)), ("gray", (H, W))]
)
def test_each_pixel_format_has_its_shape_and_carries_the_frame(media, pool, fmt, shape):
    pixels = image(pool, media["h264-gop12.mp4"], 17, fmt)
    assert pixels.shape == shape
    assert pixels.dtype == np.uint8
    assert read_code(pixels) == 17


def test_yuv420p_comes_as_three_planes_with_half_size_chroma(media, pool):
    y, u, v = planes_of(pool, media["h264-gop12.mp4"], 17)
    assert (y.shape, u.shape, v.shape) == ((H, W), (H // 2, W // 2), (H // 2, W // 2))
    assert all(p.dtype == np.uint8 for p in (y, u, v))
    assert read_code(y) == 17


def test_rgba_is_opaque_and_rgb24_of_a_gray_picture_is_gray(media, pool):
    rgba = image(pool, media["ffv1.mkv"], 3, "rgba")
    assert (rgba[..., 3] == 255).all()
    rgb = image(pool, media["ffv1.mkv"], 3, "rgb24")
    assert np.array_equal(rgb, rgba[..., :3])
    spread = rgb.astype(int).max(axis=2) - rgb.astype(int).min(axis=2)
    assert spread.max() <= 2


def test_an_unknown_pixel_format_is_refused(media, pool):
    with pytest.raises(ValueError, match="pixel format 'bgr48'"):
        pool.frame(str(media["ffv1.mkv"]), 0, "bgr48")


def test_odd_sized_yuv420p_planes_come_back_exactly_without_line_padding(odd, pool):
    path, frames = odd
    for index in (3, 0, 5, 1):
        got = planes_of(pool, path, index)
        assert [p.shape for p in got] == [(49, 65), (25, 33), (25, 33)]
        for plane, expected in zip(got, frames[index], strict=True):
            assert np.array_equal(plane, expected)


@pytest.mark.parametrize(
    ("fmt", "shape"), [("rgb24", (49, 65, 3)), ("rgba", (49, 65, 4)), ("gray", (49, 65))]
)
def test_odd_sized_frames_have_their_shape_in_every_format(odd, pool, fmt, shape):
    pixels = image(pool, odd[0], 2, fmt)
    assert pixels.shape == shape
    assert pixels.dtype == np.uint8


def test_odd_sized_gray_is_the_luma_plane(odd, pool):
    path, frames = odd
    gray = image(pool, path, 4, "gray").astype(int)
    # gray is full range, the luma limited: the same picture, stretched
    assert np.corrcoef(gray.ravel(), frames[4][0].astype(int).ravel())[0, 1] > 0.99


@pytest.mark.parametrize("size", [(64, 48), (32, 24), (128, 96), (65, 49), (31, 17), (100, 30)])
def test_a_frame_is_scaled_to_the_size_asked_in_every_format(media, pool, size):
    w, h = size
    path = media["h264-gop12.mp4"]
    shapes = {fmt: image(pool, path, 21, fmt, size=size).shape for fmt in ("rgb24", "rgba", "gray")}
    assert shapes == {"rgb24": (h, w, 3), "rgba": (h, w, 4), "gray": (h, w)}
    y, u, v = planes_of(pool, path, 21, size=size)
    half = ((h + 1) // 2, (w + 1) // 2)
    assert (y.shape, u.shape, v.shape) == ((h, w), half, half)


@pytest.mark.parametrize("size", [(64, 48), (32, 24), (128, 96), (96, 72)])
def test_a_scaled_frame_still_shows_the_frame_asked_for(media, pool, size):
    scale = (size[0] / W, size[1] / H)
    path = media["h264-gop12.mp4"]
    for index in (40, 41, 3):
        assert read_code(image(pool, path, index, "gray", size=size), scale) == index
        y = planes_of(pool, path, index, size=size)[0]
        assert read_code(y, scale) == index


def test_a_frame_written_with_the_kit_reads_back_with_its_number(tmp_path, pool):
    path = write_planes(tmp_path / "one.mkv", [coded_planes(4242)], "ffv1")
    assert code_at(pool, path, 0) == 4242


# -- known limits --------------------------------------------------------------------


def test_frames_of_an_mpeg_ts_file_are_exact_at_any_position(tmp_path, pool):
    path = write_video(tmp_path / "cam.ts", 50, options=GOP12)
    positions = [0, 30, 5, 49, 10, 11]
    got: list[int | str] = []
    for index in positions:
        try:
            got.append(code_at(pool, path, index))
        except MediaError as e:
            got.append(str(e))
    assert got == positions


# -- straight into the caller's buffers (a ring slot) -------------------------------------


@pytest.mark.parametrize(
    ("fmt", "shapes"),
    [
        ("rgb24", [(H, W, 3)]),
        ("rgba", [(H, W, 4)]),
        ("gray", [(H, W)]),
        ("yuv420p", [(H, W), (H // 2, W // 2), (H // 2, W // 2)]),
    ],
)
def test_frame_into_fills_the_callers_buffers_exactly_as_frame_returns_them(
    media, pool, fmt, shapes
):
    path = str(media["ffv1.mkv"])
    out = tuple(np.zeros(s, np.uint8) for s in shapes)
    assert pool.frame_into(path, 9, out, fmt) is out
    expected = pool.frame(path, 9, fmt)
    for got, want in zip(
        out, expected if isinstance(expected, tuple) else (expected,), strict=True
    ):
        assert (got == want).all()


def test_frame_into_scales_to_the_size_of_the_buffers(media, pool):
    path = str(media["h264-gop12.mp4"])
    out = (np.zeros((96, 128, 3), np.uint8),)
    pool.frame_into(path, 21, out, "rgb24")
    assert (out[0] == pool.frame(path, 21, "rgb24", (128, 96))).all()
    assert read_code(out[0], (2.0, 2.0)) == 21


def test_frame_into_odd_sized_planes_has_no_line_padding(odd, pool):
    path, frames = odd
    out = (np.zeros((49, 65), np.uint8), np.zeros((25, 33), np.uint8), np.zeros((25, 33), np.uint8))
    pool.frame_into(str(path), 4, out, "yuv420p")
    for got, want in zip(out, frames[4], strict=True):
        assert (got == want).all()


def test_frame_into_refuses_the_wrong_number_of_planes_and_leaves_bad_frames_unwritten(media, pool):
    path = str(media["ffv1.mkv"])
    with pytest.raises(ValueError, match="3 output planes"):
        pool.frame_into(path, 0, (np.zeros((H, W), np.uint8),), "yuv420p")
    out = (np.full((H, W, 3), 7, np.uint8),)
    with pytest.raises(MediaError, match="does not exist"):
        pool.frame_into(path, 10_000, out, "rgb24")
    assert (out[0] == 7).all()


def test_a_frame_decoded_into_a_ring_slot_reaches_a_consumer_exactly(media, pool):
    from lumiera.shm.layout import PixelFormat
    from tests.unit.shm.ringkit import ring_kit

    path = str(media["ffv1.mkv"])
    with ring_kit() as kit:
        kit.create("r", slots=2, payload_bytes=W * H * 3)
        producer, consumer = kit.producer(), kit.consumer()
        slot = producer.claim(W, H, PixelFormat.RGB24, pts=5)
        assert slot is not None
        pool.frame_into(path, 5, tuple(slot.planes), "rgb24")  # decoded into shared memory
        producer.publish(slot)
        got = consumer.acquire(5.0)
        try:
            assert got.pts == 5
            assert (got.planes[0] == pool.frame(path, 5, "rgb24")).all()
            assert read_code(got.planes[0]) == 5
        finally:
            consumer.release(got)


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**15), 10**15), st.integers(1, 10**9))
def test_round_ratio_is_rounding_the_fraction_halves_to_even(n, d):
    # a frame's number from its pts: the pool's integer form of round(Fraction(n, d))
    assert round_ratio(n, d) == round(Fraction(n, d))


@pytest.mark.parametrize("n", range(-7, 8))
def test_round_ratio_rounds_exact_halves_to_the_even_neighbour(n):
    assert round_ratio(n, 2) == round(n / 2) == round(Fraction(n, 2))
