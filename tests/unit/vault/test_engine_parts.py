"""The engine's parts without media: the frame cache, the scheduler, compositing."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumiera.errors import DeadlineMissed, ShuttingDown
from lumiera.vault import composite as composite_module
from lumiera.vault.cache import FrameCache
from lumiera.vault.composite import composite, over, weight_of
from lumiera.vault.render import FrameBuffers
from lumiera.vault.scheduler import Priority, Scheduler

# -- the frame cache -----------------------------------------------------------------------


def test_the_cache_never_holds_more_bytes_than_its_bound_and_evicts_the_least_recent():
    cache = FrameCache(max_bytes=250)
    for key in "abcd":
        cache.put(key, np.zeros(100, np.uint8))
        assert cache.bytes <= 250
    assert "a" not in cache and "b" not in cache and "d" in cache
    assert cache.get("c") is not None  # c is now the most recent
    cache.put("e", np.zeros(100, np.uint8))
    assert "c" in cache and "d" not in cache
    st_ = cache.stats()
    assert st_["evictions"] == 3 and st_["hits"] == 1 and st_["frames"] == 2


def test_the_cache_counts_planes_and_refuses_a_value_larger_than_its_bound():
    cache = FrameCache(max_bytes=100)
    planes = (np.zeros(48, np.uint8), np.zeros(12, np.uint8), np.zeros(12, np.uint8))
    cache.put("yuv", planes)
    assert cache.bytes == 72
    cache.put("huge", np.zeros(101, np.uint8))
    assert "huge" not in cache and cache.bytes == 72
    assert cache.get("missing") is None and cache.stats()["misses"] == 1


def test_replacing_a_key_does_not_count_its_bytes_twice():
    cache = FrameCache(max_bytes=1000)
    cache.put("k", np.zeros(400, np.uint8))
    cache.put("k", np.zeros(300, np.uint8))
    assert cache.bytes == 300 and cache.stats()["frames"] == 1


# -- the scheduler -------------------------------------------------------------------------


def test_jobs_run_by_priority_class_then_deadline_then_order_of_submission():
    clock = [0.0]
    sched = Scheduler(0, clock=lambda: clock[0])
    ran: list[str] = []
    for name, deadline, prio in [
        ("bg-late-deadline", 9, Priority.BEST_EFFORT),
        ("render-b", 8, Priority.RENDER),
        ("play-2", 7, Priority.PLAYBACK),
        ("render-a", 5, Priority.RENDER),
        ("play-1", 6, Priority.PLAYBACK),
        ("render-a2", 5, Priority.RENDER),
    ]:
        sched.submit(lambda n=name: ran.append(n), deadline, prio, name)  # type: ignore[misc]
    while sched.step():
        pass
    assert ran == ["play-1", "play-2", "render-a", "render-a2", "render-b", "bg-late-deadline"]
    assert sched.stats == {"submitted": 6, "done": 6, "missed": 0, "dropped": 0, "failed": 0}


def test_a_late_playback_job_is_dropped_and_a_late_render_job_still_runs_both_counted():
    clock = [0.0]
    sched = Scheduler(0, clock=lambda: clock[0])
    play = sched.submit(lambda: "frame", 1.0, Priority.PLAYBACK, "play")
    render = sched.submit(lambda: "frame", 1.0, Priority.RENDER, "render")
    clock[0] = 2.0
    while sched.step():
        pass
    with pytest.raises(DeadlineMissed):
        play.result(0)
    assert render.result(0) == "frame"
    assert sched.stats["missed"] == 2 and sched.stats["dropped"] == 1 and sched.stats["done"] == 1
    assert play.late and render.late  # each handle says it ran (or was dropped) late


def test_a_job_that_raises_is_reported_and_the_scheduler_goes_on(caplog):
    sched = Scheduler(0)
    bad = sched.submit(lambda: 1 / 0, time.monotonic() + 10, Priority.RENDER, "bad")
    good = sched.submit(lambda: 42, time.monotonic() + 10, Priority.RENDER, "good")
    while sched.step():
        pass
    with pytest.raises(ZeroDivisionError):
        bad.result(0)
    assert good.result(0) == 42
    assert sched.stats["failed"] == 1
    assert "job bad failed" in caplog.text and "ZeroDivisionError" in caplog.text


def test_on_done_is_called_once_the_handle_says_done_whatever_the_outcome(caplog):
    """A waiter woken by on_done always finds the outcome there (it ran, raised, was
    dropped late or shut down); an on_done that raises is logged, the scheduler goes on."""
    sched = Scheduler(0)
    seen: list[tuple[str, bool]] = []

    def submit(fn: Any, name: str, deadline: float = 10.0, prio=Priority.RENDER) -> Any:
        handle = None

        def done() -> None:
            assert handle is not None
            seen.append((name, handle.done))

        handle = sched.submit(fn, time.monotonic() + deadline, prio, name, on_done=done)
        return handle

    submit(lambda: 42, "ran")
    submit(lambda: 1 / 0, "raised")
    submit(lambda: None, "late", deadline=-1.0, prio=Priority.PLAYBACK)

    def fails() -> None:
        raise RuntimeError("a broken waiter")

    sched.submit(lambda: 7, time.monotonic() + 10, Priority.RENDER, "bad", on_done=fails)
    while sched.step():
        pass
    submit(lambda: None, "queued at shutdown")
    sched.shutdown()
    assert sorted(seen) == sorted(
        [("ran", True), ("raised", True), ("late", True), ("queued at shutdown", True)]
    )
    assert "job bad: its on_done failed" in caplog.text


def test_worker_threads_run_jobs_in_parallel_and_shutdown_answers_what_is_queued():
    sched = Scheduler(2)
    gate = threading.Barrier(2, timeout=5)
    try:
        both = [
            sched.submit(gate.wait, time.monotonic() + 10, Priority.RENDER, f"w{i}")
            for i in range(2)
        ]
        for handle in both:  # two workers: both wait at the barrier at once
            handle.result(5)
        release = threading.Event()
        blockers = [
            sched.submit(release.wait, time.monotonic() + 10, Priority.RENDER, f"b{i}")
            for i in range(2)
        ]
        time.sleep(0.05)
        queued = sched.submit(lambda: "never", time.monotonic() + 10, Priority.RENDER, "queued")
        threading.Timer(0.1, release.set).start()
    finally:
        sched.shutdown(timeout=5)
    with pytest.raises(ShuttingDown):
        queued.result(1)
    assert all(b.result(1) is True for b in blockers)
    with pytest.raises(ShuttingDown):
        sched.submit(lambda: None, 0, Priority.RENDER)


# -- compositing ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    below=st.integers(0, 255),
    top=st.integers(0, 255),
    opacity=st.floats(0, 1, allow_nan=False),
)
def test_over_is_the_documented_integer_formula_for_every_sample(below, top, opacity):
    w = round(opacity * 256)  # the documented weight, not the function under test
    b = np.full((3, 5), below, np.uint8)
    t = np.full((3, 5), top, np.uint8)
    expected = (top * w + below * (256 - w) + 128) // 256
    assert (over(b, t, opacity) == expected).all()


def test_over_is_exact_for_every_sample_pair_at_every_weight():
    # all 65,536 (below, top) pairs, for each of the 257 weights: the uint16 sums
    # must never overflow, in the blocked form or the strided one
    below = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    top = below.T.copy()
    for w in range(257):
        expected = (top.astype(np.int64) * w + below.astype(np.int64) * (256 - w) + 128) // 256
        assert (over(below, top, w / 256) == expected).all(), w
        strided = np.empty((256, 256, 2), np.uint8)[..., 0]  # not rows: the other path
        assert (over(below, top, w / 256, strided) == expected).all(), w


def test_half_opacity_is_the_mean_rounded_half_up_whichever_layer_is_on_top():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    y = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    mean = (x.astype(np.int64) + y + 1) // 2
    assert (over(x, y, 0.5) == mean).all()
    assert (over(y, x, 0.5) == mean).all()


def test_full_opacity_copies_the_layer_and_zero_leaves_what_is_below():
    rng = np.random.default_rng(1)
    b = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    t = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    assert (over(b, t, 1.0) == t).all()
    assert (over(b, t, 0.0) == b).all()


def test_composite_stacks_layers_bottom_first_per_pixel():
    rng = np.random.default_rng(2)
    layers = [(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), o) for o in (1.0, 0.5, 0.2)]
    out = np.empty((8, 8, 3), np.uint8)
    composite(layers, out)
    expected = np.zeros((8, 8, 3), np.int64)
    for pixels, opacity in layers:
        w = round(opacity * 256)
        expected = (pixels.astype(np.int64) * w + expected * (256 - w) + 128) // 256
    assert (out == expected).all()


def test_layers_of_different_sizes_and_bad_opacities_are_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        over(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 0.5)
    with pytest.raises(ValueError, match="opacity"):
        weight_of(1.5)


def reference_over(below: Any, top: Any, opacity: float) -> Any:
    """The compositing formula in 64-bit integers: what over() must give."""
    w = round(opacity * 256)
    return ((top.astype(np.int64) * w + below.astype(np.int64) * (256 - w) + 128) // 256).astype(
        np.uint8
    )


@pytest.mark.parametrize("opacity", [0.5, 0.2, 0.93])
def test_over_in_blocks_of_rows_is_the_formula_for_views_planes_and_in_place(opacity):
    rng = np.random.default_rng(7)
    h, w = 301, 1000  # several blocks of rows, the last one short
    assert h * w > 2 * composite_module.BLOCK
    raw_b = rng.integers(0, 256, (h, w + 32), np.uint8)
    raw_t = rng.integers(0, 256, (h, w + 32), np.uint8)
    below, top = raw_b[:, :w], raw_t[:, :w]  # padded rows, as a decoded picture's planes
    expected = reference_over(below, top, opacity)
    assert (over(below, top, opacity) == expected).all()
    out = np.ascontiguousarray(below)
    assert over(out, top, opacity, out) is out and (out == expected).all()  # in place
    rgb_b, rgb_t = rng.integers(0, 256, (2, 90, 700, 3), np.uint8)
    assert (over(rgb_b, rgb_t, opacity) == reference_over(rgb_b, rgb_t, opacity)).all()
    cols_b, cols_t = below.T, top.T  # rows that are not contiguous: the plain way
    assert composite_module._rows(cols_b) is None
    assert (over(cols_b, cols_t, opacity) == expected.T).all()
    flat_b, flat_t = below.ravel(), np.ascontiguousarray(top).ravel()
    assert (over(flat_b, flat_t, opacity) == expected.ravel()).all()


def test_discard_forgets_a_key_without_counting_an_eviction():
    cache = FrameCache(max_bytes=100)
    cache.put("a", np.zeros(40, np.uint8))
    cache.discard("a")
    cache.discard("never there")
    assert "a" not in cache
    assert cache.stats() | {"hits": 0, "misses": 0} == {
        "bytes": 0,
        "max_bytes": 100,
        "frames": 0,
        "hits": 0,
        "misses": 0,
        "evictions": 0,
    }


def test_frame_buffers_are_reused_once_given_back_and_at_most_keep_are_kept():
    buffers = FrameBuffers("yuv420p", (64, 36), keep=1)
    first = buffers.take()
    assert [p.shape for p in first] == [(36, 64), (18, 32), (18, 32)]
    second = buffers.take()
    assert second is not first
    buffers.give(first)
    buffers.give(second)  # beyond keep: dropped
    assert buffers.take() is first
    assert buffers.take() is not second
