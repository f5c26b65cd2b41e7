"""Encoders by name, plugins from entry points, and files written whole or not at all."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lumiera.errors import CodecError, MediaError
from lumiera.vault.codecs import REGISTRY, Encoder, _packed_yuv420p
from lumiera.vault.codecspec import BUILTIN, EncoderSpec, Registry
from lumiera.vault.media import MediaPool

from .mediakit import H, W, code_at, coded_planes, image, luma, planes_of

BUILTIN_NAMES = sorted(s.name for s in BUILTIN)


@pytest.fixture
def pool() -> Iterator[MediaPool]:
    p = MediaPool()
    yield p
    p.close()


def _random_planes(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, ...]:
    cw, ch = (width + 1) // 2, (height + 1) // 2
    return (
        rng.integers(0, 256, (height, width), dtype=np.uint8),
        rng.integers(0, 256, (ch, cw), dtype=np.uint8),
        rng.integers(0, 256, (ch, cw), dtype=np.uint8),
    )


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(W, H), (65, 49), (17, 5)])
def test_ffv1_gives_back_every_yuv420p_plane_exactly(tmp_path, pool, size):
    width, height = size
    rng = np.random.default_rng(11)
    frames = [_random_planes(rng, width, height) for _ in range(6)]
    target = tmp_path / "master.mkv"
    with Encoder(target, REGISTRY.encoder("ffv1"), width, height, Fraction(25)) as enc:
        for planes in frames:
            enc.write(planes)
    assert enc.frames == 6
    for index in (0, 5, 2, 3):
        got = planes_of(pool, target, index)
        assert len(got) == 3
        for plane, expected in zip(got, frames[index], strict=True):
            assert plane.shape == expected.shape
            assert np.array_equal(plane, expected)
    with pytest.raises(MediaError):
        pool.frame(str(target), 6)


def test_ffv1_rgb_gives_back_rgb24_pixels_exactly(tmp_path, pool):
    rng = np.random.default_rng(12)
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(4)]
    target = tmp_path / "rgb.mkv"
    with Encoder(target, REGISTRY.encoder("ffv1-rgb"), W, H, Fraction(25)) as enc:
        for pixels in frames:
            enc.write(pixels)
    for index in (3, 0, 1, 2):
        assert np.array_equal(image(pool, target, index, "rgb24"), frames[index])


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)], ids=["25", "ntsc"])
def test_every_builtin_encoder_writes_a_decodable_file_of_all_its_frames(
    tmp_path, pool, name, rate
):
    spec = REGISTRY.encoder(name)
    target = tmp_path / f"out-{name}"
    with Encoder(target, spec, W, H, rate) as enc:
        for i in range(30):
            enc.write(np.repeat(luma(i)[:, :, None], 3, axis=2))
    assert [code_at(pool, target, i) for i in range(30)] == list(range(30))
    with pytest.raises(MediaError, match="frame 30 does not exist"):
        pool.frame(str(target), 30)
    with av.open(str(target)) as container:
        assert spec.container in container.format.name.split(",")
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (W, H)
        assert stream.format.name == spec.pix_fmt
        assert stream.average_rate == rate
        assert sum(1 for _ in container.decode(stream)) == 30


@pytest.mark.parametrize("kind", ["rgb24", "gray", "planes"])
def test_frames_may_be_given_as_rgb24_gray_or_yuv420p_planes(tmp_path, pool, kind):
    target = tmp_path / f"{kind}.mkv"
    with Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc:
        for i in range(5):
            if kind == "rgb24":
                enc.write(np.repeat(luma(i)[:, :, None], 3, axis=2))
            elif kind == "gray":
                enc.write(luma(i), fmt="gray")
            else:
                enc.write(coded_planes(i))
    assert [code_at(pool, target, i) for i in range(5)] == list(range(5))


# -- the file is there complete, or not at all ---------------------------------------


def test_frames_go_to_a_partial_file_and_the_target_appears_only_at_close(tmp_path):
    target = tmp_path / "cut.mkv"
    enc = Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25))
    try:
        assert enc.tmp == tmp_path / ".cut.mkv.partial"
        for i in range(10):
            enc.write(coded_planes(i))
            assert not target.exists()
        assert _names(tmp_path) == [".cut.mkv.partial"]
    except BaseException:
        enc.abort()
        raise
    enc.close()
    assert _names(tmp_path) == ["cut.mkv"]


def test_an_aborted_encoder_leaves_nothing(tmp_path):
    target = tmp_path / "cut.mp4"
    enc = Encoder(target, REGISTRY.encoder("h264"), W, H, Fraction(25))
    for i in range(10):
        enc.write(coded_planes(i))
    enc.abort()
    assert _names(tmp_path) == []


def test_an_exception_inside_the_with_block_leaves_nothing_and_is_raised(tmp_path):
    target = tmp_path / "cut.mkv"
    with (
        pytest.raises(KeyError, match="stop"),
        Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc,
    ):
        for i in range(10):
            enc.write(coded_planes(i))
        raise KeyError("stop")
    assert _names(tmp_path) == []


def test_a_with_block_that_ends_normally_leaves_only_the_finished_file(tmp_path, pool):
    target = tmp_path / "cut.mkv"
    with Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc:
        for i in range(3):
            enc.write(coded_planes(i))
    assert _names(tmp_path) == ["cut.mkv"]
    assert code_at(pool, target, 2) == 2


def test_an_existing_file_is_kept_until_the_new_one_is_complete(tmp_path, pool):
    target = tmp_path / "cut.mkv"
    with Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc:
        enc.write(coded_planes(7))
    old = target.read_bytes()

    with (
        pytest.raises(RuntimeError),
        Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc,
    ):
        enc.write(coded_planes(8))
        assert target.read_bytes() == old
        raise RuntimeError("render cancelled")
    assert target.read_bytes() == old
    assert _names(tmp_path) == ["cut.mkv"]

    with Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25)) as enc:
        enc.write(coded_planes(9))
        assert target.read_bytes() == old
    assert code_at(pool, target, 0) == 9


def test_a_frame_the_codec_refuses_is_a_codec_error_and_the_with_block_leaves_nothing(tmp_path):
    target = tmp_path / "odd.mp4"
    with (  # libx264 needs an even size for yuv420p
        pytest.raises(CodecError, match=r"odd\.mp4"),
        Encoder(target, REGISTRY.encoder("h264"), 65, 49, Fraction(25)) as enc,
    ):
        enc.write(coded_planes(0, 65, 49))
    assert _names(tmp_path) == []


def test_a_bad_codec_option_is_a_codec_error_on_the_first_frame(tmp_path):
    spec = EncoderSpec("bad", "libx264", "mp4", options={"crf": "not a number"})
    with pytest.raises(CodecError), Encoder(tmp_path / "x.mp4", spec, W, H, Fraction(25)) as enc:
        enc.write(coded_planes(0))
    assert _names(tmp_path) == []


@pytest.mark.parametrize(
    "spec",
    [
        EncoderSpec("nocodec", "no-such-codec", "matroska"),
        EncoderSpec("nocontainer", "ffv1", "no-such-container"),
    ],
    ids=["codec", "container"],
)
def test_an_unknown_codec_or_container_is_a_codec_error_naming_encoder_and_file(tmp_path, spec):
    target = tmp_path / "x.mkv"
    with pytest.raises(CodecError) as err:
        Encoder(target, spec, W, H, Fraction(25))
    assert spec.name in str(err.value)
    assert str(target) in str(err.value)
    assert _names(tmp_path) == []


def test_closing_an_encoder_that_got_no_frames_is_a_codec_error_and_leaves_nothing(tmp_path):
    with pytest.raises(CodecError):
        Encoder(tmp_path / "empty.mkv", REGISTRY.encoder("ffv1"), W, H, Fraction(25)).close()
    assert _names(tmp_path) == []


# -- the registry --------------------------------------------------------------------


def test_the_builtin_encoders_are_there_by_name():
    registry = Registry(load_plugins=False)
    assert registry.names() == BUILTIN_NAMES
    assert BUILTIN_NAMES == ["ffv1", "ffv1-rgb", "h264", "h264-veryfast", "prores"]
    spec = registry.encoder("ffv1")
    assert (spec.codec, spec.container, spec.pix_fmt, spec.lossless) == (
        "ffv1",
        "matroska",
        "yuv420p",
        True,
    )
    assert registry.encoder("h264").lossless is False


def test_an_unknown_encoder_name_is_a_codec_error_listing_the_names():
    with pytest.raises(CodecError, match="no encoder 'h265'") as err:
        Registry(load_plugins=False).encoder("h265")
    listed = str(err.value).split("have: ", 1)[1].rstrip(")").split(", ")
    assert listed == BUILTIN_NAMES


def test_an_encoder_added_by_hand_is_found_and_a_second_one_of_its_name_refused():
    registry = Registry(load_plugins=False)
    spec = EncoderSpec("mjpeg", "mjpeg", "avi", "yuvj420p")
    registry.add(spec)
    assert registry.encoder("mjpeg") is spec
    assert "mjpeg" in registry.names()
    with pytest.raises(CodecError, match="'mjpeg' is registered already"):
        registry.add(EncoderSpec("mjpeg", "mjpeg", "mov"))
    with pytest.raises(CodecError, match="'h264' is registered already"):
        registry.add(EncoderSpec("h264", "libx264", "mkv"))
    assert registry.encoder("mjpeg") is spec


# -- plugins through entry points ----------------------------------------------------

PLUGIN = """
from lumiera.vault.codecs import EncoderSpec

CALLS = []
SPEC = EncoderSpec("test-ffv1", "ffv1", "matroska", "yuv420p", {}, True, "FFV1 from a plugin")
NOT_AN_ENCODER = 42
DUPLICATE = EncoderSpec("h264", "mpeg4", "avi")


def register(registry):
    CALLS.append(registry)
    registry.add(EncoderSpec("test-ffv1-rgb", "ffv1", "matroska", "bgr0", {}, True, "more"))


def explode(registry):
    raise RuntimeError("the plugin exploded")
"""

GOOD = {"test-ffv1": "lumtestcodec:SPEC", "test-more": "lumtestcodec:register"}

Install = Callable[[dict[str, str]], None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install the test package ``lumtestcodec`` (with the entry points given) on sys.path."""
    root = tmp_path / "site"

    def _install(entry_points: dict[str, str]) -> None:
        (root / "lumtestcodec").mkdir(parents=True)
        (root / "lumtestcodec" / "__init__.py").write_text(PLUGIN)
        (root / "lumtestbroken").mkdir()
        (root / "lumtestbroken" / "__init__.py").write_text(
            "raise ImportError('no such library')\n"
        )
        info = root / "lumtestcodec-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lumtestcodec\nVersion: 1.0\n")
        lines = [f"{name} = {value}" for name, value in entry_points.items()]
        (info / "entry_points.txt").write_text("[lumiera.codecs]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(root))

    yield _install
    for module in ("lumtestcodec", "lumtestbroken"):
        sys.modules.pop(module, None)


def test_a_plugin_spec_and_a_plugin_callable_are_found_through_entry_points(install):
    install(GOOD)
    registry = Registry()
    assert {"test-ffv1", "test-ffv1-rgb"} <= set(registry.names())
    assert set(BUILTIN_NAMES) <= set(registry.names())
    assert registry.plugin_errors == []
    spec = registry.encoder("test-ffv1")
    assert (spec.codec, spec.container, spec.doc) == ("ffv1", "matroska", "FFV1 from a plugin")
    assert registry.encoder("test-ffv1-rgb").pix_fmt == "bgr0"
    plugin = sys.modules["lumtestcodec"]
    assert [registry] == plugin.CALLS  # called once, with the registry itself


def test_an_encoder_from_a_plugin_encodes(install, tmp_path, pool):
    install(GOOD)
    target = tmp_path / "plugin.mkv"
    with Encoder(target, Registry().encoder("test-ffv1"), W, H, Fraction(25)) as enc:
        for i in range(3):
            enc.write(coded_planes(i))
    assert [code_at(pool, target, i) for i in range(3)] == [0, 1, 2]


def test_plugins_are_loaded_once_when_a_name_not_built_in_is_first_asked_for(install):
    install({**GOOD, "explodes": "lumtestcodec:explode"})
    registry = Registry()
    assert "lumtestcodec" not in sys.modules  # nothing loaded before the first use
    registry.encoder("h264")
    assert "lumtestcodec" not in sys.modules  # a built-in name: no plugin needed (nor imports)
    registry.names()
    registry.encoder("test-ffv1")
    assert len(sys.modules["lumtestcodec"].CALLS) == 1
    assert len(registry.plugin_errors) == 1


def test_a_registry_without_plugins_ignores_the_entry_points(install):
    install(GOOD)
    registry = Registry(load_plugins=False)
    assert registry.names() == BUILTIN_NAMES
    with pytest.raises(CodecError, match="no encoder 'test-ffv1'"):
        registry.encoder("test-ffv1")


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("lumtestcodec:explode", "RuntimeError: the plugin exploded"),
        ("lumtestcodec:NOT_AN_ENCODER", "neither an EncoderSpec nor a callable"),
        ("lumtestcodec:DUPLICATE", "'h264' is registered already"),
        ("lumtestcodec:NOWHERE", "AttributeError"),
        ("lumtestbroken:SPEC", "ImportError: no such library"),
        ("lumtestnowhere:SPEC", "ModuleNotFoundError"),
    ],
    ids=["raises", "not-an-encoder", "duplicate", "no-attribute", "import-fails", "no-module"],
)
def test_a_plugin_that_cannot_be_loaded_is_recorded_and_the_registry_still_works(
    install, caplog, target, why
):
    install({**GOOD, "broken": target})
    registry = Registry()
    with caplog.at_level(logging.ERROR, logger="lumiera.vault"):
        names = registry.names()
    assert len(registry.plugin_errors) == 1
    error = registry.plugin_errors[0]
    assert error.startswith(f"codec plugin broken ({target}): ")
    assert why in error
    assert [r.getMessage() for r in caplog.records if r.name == "lumiera.vault"] == [error]
    assert {"test-ffv1", "test-ffv1-rgb", *BUILTIN_NAMES} <= set(names)
    assert registry.encoder("h264").codec == "libx264"
    assert registry.encoder("h264").container == "mp4"  # not the plugin's duplicate


def test_every_broken_plugin_is_recorded_once_and_the_good_ones_still_load(install):
    install(
        {
            **GOOD,
            "explodes": "lumtestcodec:explode",
            "not-an-encoder": "lumtestcodec:NOT_AN_ENCODER",
            "import-fails": "lumtestbroken:SPEC",
        }
    )
    registry = Registry()
    assert {"test-ffv1", "test-ffv1-rgb"} <= set(registry.names())
    recorded = sorted(e.split(" (")[0] for e in registry.plugin_errors)
    assert recorded == [
        "codec plugin explodes",
        "codec plugin import-fails",
        "codec plugin not-an-encoder",
    ]


# -- planes packed in one buffer (a ring slot) are encoded where they lie ------------------


def _packed(buf: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Y, U, V views of one buffer, packed as a ring slot holds them."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = buf[: width * height].reshape(height, width)
    u = buf[width * height : width * height + cw * ch].reshape(ch, cw)
    v = buf[width * height + cw * ch : width * height + 2 * cw * ch].reshape(ch, cw)
    return y, u, v


@pytest.mark.parametrize("name", ["ffv1", "h264", "prores"])
def test_packed_planes_may_be_overwritten_as_soon_as_write_returns(tmp_path, pool, name):
    # The slot is given back (and rewritten by the producer) right after write():
    # every frame in the file must still be the one that was in the buffer then.
    buf = np.empty(W * H * 3 // 2, np.uint8)
    sent = []
    target = tmp_path / f"out-{name}"
    with Encoder(target, REGISTRY.encoder(name), W, H, Fraction(25)) as enc:
        for i in range(30):
            y, u, v = _packed(buf, W, H)
            planes = coded_planes(i)
            y[...], u[...], v[...] = planes
            sent.append(tuple(p.copy() for p in planes))
            assert _packed_yuv420p((y, u, v)) is not None  # the path without a copy
            enc.write((y, u, v))
            buf[:] = 255 - buf  # the producer writes the next frame over it at once
    assert [code_at(pool, target, i) for i in range(30)] == list(range(30))
    if name == "ffv1":  # lossless: every sample
        for i in (0, 13, 29):
            for got, want in zip(planes_of(pool, target, i), sent[i], strict=True):
                assert np.array_equal(got, want)


def test_planes_that_are_not_packed_or_odd_sized_take_the_copying_path(tmp_path, pool):
    rng = np.random.default_rng(3)
    loose = _random_planes(rng, W, H)  # three separate arrays
    buf = np.zeros(65 * 49 + 2 * 33 * 25, np.uint8)
    odd = _packed(buf, 65, 49)  # packed, but odd: chroma rows are not half a luma row
    odd[0][...] = rng.integers(0, 256, (49, 65), dtype=np.uint8)
    for planes, (w, h), name in ((loose, (W, H), "a.mkv"), (odd, (65, 49), "b.mkv")):
        assert _packed_yuv420p(planes) is None
        with Encoder(tmp_path / name, REGISTRY.encoder("ffv1"), w, h, Fraction(25)) as enc:
            enc.write(planes)
        for got, want in zip(planes_of(pool, tmp_path / name, 0), planes, strict=True):
            assert np.array_equal(got, want)


def test_a_marker_names_the_partial_file_while_it_is_written_and_goes_with_it(tmp_path):
    marks = tmp_path / "tmp"
    marks.mkdir()
    for ending in ("close", "abort"):
        target = tmp_path / f"{ending}.mkv"
        enc = Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25), marks=marks)
        (mark,) = marks.iterdir()
        assert mark.read_text() == str(tmp_path / f".{ending}.mkv.partial")
        enc.write(coded_planes(0))
        getattr(enc, ending)()
        assert list(marks.iterdir()) == []


def test_a_render_to_an_output_another_process_is_writing_is_refused_and_takes_nothing(
    tmp_path,
):
    target = tmp_path / "out.mkv"
    partial = tmp_path / ".out.mkv.partial"
    partial.write_bytes(b"another render's frames")
    with partial.open("ab") as held:
        other = subprocess.Popen(["sleep", "30"], stdout=held)  # the other render
    marks = tmp_path / "tmp"
    marks.mkdir()
    try:
        with pytest.raises(CodecError, match=r"another render is writing .*\.out\.mkv\.partial"):
            Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25), marks=marks)
        assert partial.read_bytes() == b"another render's frames"  # neither cut nor removed
        assert list(marks.iterdir()) == []  # the refused claim took its marker back
    finally:
        other.kill()
        other.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.partial", "tmp"]


def test_a_second_encoder_of_this_process_to_the_same_output_is_refused(tmp_path, pool):
    target = tmp_path / "out.mkv"
    first = Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25))
    with pytest.raises(CodecError, match="another render is writing"):
        Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25))
    first.write(coded_planes(0))
    first.close()  # the refused one took nothing: the first completes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]
    assert code_at(pool, target, 0) == 0


def test_an_abort_leaves_a_partial_file_that_is_not_the_one_it_made(tmp_path):
    target = tmp_path / "out.mkv"
    enc = Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25))
    partial = tmp_path / ".out.mkv.partial"
    partial.unlink()  # someone removed it, and another writer made the name again
    partial.write_bytes(b"another writer's")
    enc.abort()
    assert partial.read_bytes() == b"another writer's"


def test_a_leftover_partial_file_nobody_writes_is_replaced_by_a_new_render(tmp_path, pool):
    target = tmp_path / "out.mkv"
    (tmp_path / ".out.mkv.partial").write_bytes(b"what a dead writer left")
    enc = Encoder(target, REGISTRY.encoder("ffv1"), W, H, Fraction(25))
    enc.write(coded_planes(0))
    enc.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]
    assert code_at(pool, target, 0) == 0


def test_a_partial_file_another_running_process_has_open_is_not_removed(tmp_path):
    # A render of another instance to the same output took the name over after the
    # marker's writer died: its file is kept while it is written, removed after.
    from lumiera.runtime_dir import partial_mark, remove_partials

    marks = tmp_path / "tmp"
    marks.mkdir()
    partial = tmp_path / ".out.mp4.partial"
    (marks / partial_mark(2**22 + 7, 1)).write_text(str(partial))  # its writer is dead
    with partial.open("wb") as held:
        other = subprocess.Popen(["sleep", "30"], stdout=held)  # the other writer
    try:
        assert remove_partials(marks) == []
        assert partial.exists()
    finally:
        other.kill()
        other.wait()
    assert remove_partials(marks) == [str(partial)]
    assert not partial.exists()


def test_what_a_dead_writer_left_is_removed_by_its_marker_and_nothing_else(tmp_path):
    from lumiera.runtime_dir import partial_mark, remove_partials

    marks = tmp_path / "tmp"
    marks.mkdir()
    partial = tmp_path / ".out.mp4.partial"
    partial.write_bytes(b"half a file")
    mine = tmp_path / "mine.txt"  # a marker that names anything else is not obeyed
    mine.write_text("keep")
    dead = 2**22 + 7  # no such process: the writer died
    (marks / partial_mark(dead, 1)).write_text(str(partial))
    (marks / partial_mark(dead, 2)).write_text(str(mine))
    (marks / partial_mark(dead, 3)).write_text(str(tmp_path / ".gone.mp4.partial"))
    writing = tmp_path / ".other.mp4.partial"  # a live writer's (this process): still written
    writing.write_bytes(b"in progress")
    (marks / partial_mark(os.getpid(), 4)).write_text(str(writing))
    assert remove_partials(marks) == [str(partial)]
    assert not partial.exists() and mine.read_text() == "keep"
    assert writing.exists()
