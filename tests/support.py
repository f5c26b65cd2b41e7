"""Helpers the test packages share: small media files, and small disks to fill."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera.bus.timeline import Timeline
from lumiera.errors import MediaError
from lumiera.steam.probe import probe_media
from lumiera.testing import (
    CREATED_INSTANCES,
    Instance,
    RuntimeDir,
    run_cli,
    unique_runtime_dir,
    wait_for,
)


def write_audio_only(path: Path) -> Path:
    """A short WAV file: media, but no video stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@contextlib.contextmanager
def tmpfs(where: Path, size: str, mode: str = "0700") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` (root only); the test is skipped without one."""
    where.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount a tmpfs: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        gone = subprocess.run(["umount", str(where)], capture_output=True, timeout=10, check=False)
        if gone.returncode != 0:  # still busy: detach it, it goes when the last user does
            subprocess.run(
                ["umount", "-l", str(where)], capture_output=True, timeout=10, check=False
            )


# Two media m1, m2 on tracks t1, t2: m1's frames 0..9, then the cut: frames 10..19 are
# m2's frames 2..11; the overlay: m2's frames 0..9 at opacity 0.4 over frames 5..14.
CUT_AND_OVERLAY: list[dict[str, Any]] = [
    {"media": "m1", "track": "t1", "position": 0, "source_out": 10},
    {"media": "m2", "track": "t1", "position": 10, "source_in": 2, "source_out": 12},
    {"media": "m2", "track": "t2", "position": 5, "source_out": 10, "opacity": 0.4},
]


def own_instance_cli(
    command: str, *args: str, timeout: float = 60.0, left: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lumiera COMMAND ARGS`` to completion, for a command that supervises an instance of
    its own (``render``, ``replay``: ``COMMAND-PID``), in a runtime directory of the suite's.

    Its instance is registered for the shm leak check; a command that runs over
    ``timeout`` is killed and fails the test. ``left``, when given, gets the
    names of what the command left in its runtime directory.
    """
    rd = unique_runtime_dir()
    cmd = [sys.executable, "-m", "lumiera", command, *args, "--runtime-dir", str(rd.path)]
    try:
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            CREATED_INSTANCES.append(f"{command}-{proc.pid}")  # for the shm leak check
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"lumiera {command} ran over {timeout} s:\n{err}") from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        if left is not None:
            left += sorted(p.name for p in rd.path.iterdir())
        with contextlib.suppress(OSError):
            rd.path.rmdir()  # the instance removed what it made in it


def render_cli(
    *args: str, timeout: float = 60.0, left: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lumiera render ARGS`` (:func:`own_instance_cli`)."""
    return own_instance_cli("render", *args, timeout=timeout, left=left)


def own_instance_signalled(
    command: str,
    args: Sequence[str],
    sig: int,
    ready: Callable[[RuntimeDir], bool],
    preexec: Callable[[], None] | None = None,
) -> tuple[int, str, list[str]]:
    """``lumiera COMMAND ARGS`` (see :func:`own_instance_cli`) sent ``sig`` alone once
    ``ready(its runtime directory)``: (its exit code, its stderr, what it left in the
    runtime directory). ``preexec``: the signal dispositions it starts with."""
    rd = unique_runtime_dir()
    cmd = [sys.executable, "-m", "lumiera", command, *args, "--runtime-dir", str(rd.path)]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,  # noqa: PLW1509 - signal dispositions only
    ) as proc:
        CREATED_INSTANCES.append(f"{command}-{proc.pid}")  # for the shm leak check
        try:
            wait_for(lambda: ready(rd), 30, f"lumiera {command} to be ready for the signal")
            proc.send_signal(sig)  # to this process alone
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            left = sorted(p.name for p in rd.path.iterdir()) if rd.path.exists() else []
            with contextlib.suppress(OSError):
                rd.path.rmdir()  # empty, as it must be: else the leak check says what is left
    return proc.returncode, err, left


def rendering(*nodes: Instance) -> Instance | None:
    """The instance whose Player is rendering, once it has encoded a frame (None before)."""
    for inst in nodes:
        for s in inst.request("player", "streams"):
            if s["mode"] == "render" and s["state"] == "running" and s["frames"] > 0:
                return inst
    return None


def stop(inst: Instance) -> None:
    """``lumiera stop`` of a test's instance: it must end in order (exit 0)."""
    result = run_cli("stop", "--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path))
    assert result.returncode == 0, result.stderr
    assert inst.wait() == 0, inst.output()


def build(
    inst: Instance,
    media: list[Path],
    clips: list[dict[str, Any]],
    tracks: int = 1,
    *,
    size: tuple[int, int] = (64, 48),
    rate: int = 25,
) -> Timeline:
    """Media m1.., tracks t1.. (bottom up), the output size and rate, the clips; the timeline."""
    for path in media:
        inst.request("session", "add_media", {"path": str(path)})
    for k in range(tracks):
        inst.request("session", "add_track", {"name": f"V{k + 1}"})
    inst.request("session", "set_output", {"width": size[0], "height": size[1], "rate": str(rate)})
    for clip in clips:
        inst.request("session", "add_clip", clip)
    return Timeline.from_wire(inst.request("session", "timeline"))


def timeline_of(data: dict[str, Any]) -> Timeline:
    """A Timeline from a test's short form: each media's unnamed fields probed from its file.

    A media whose file is missing gets zeros (a render of it fails as missing).
    """
    media = []
    for m in data["media"]:
        try:
            probed = probe_media(m["path"])
        except MediaError:
            probed = dict.fromkeys(("frames", "size", "mtime_ns"), 0)
            probed.update(rate="25", pix_fmt="", width=64, height=48)
        media.append({**probed, **m})
    return Timeline.from_wire({**data, "media": media})


@contextlib.contextmanager
def one_clip(video: Path, defs: Sequence[str] = ()) -> Iterator[Instance]:
    """A running headless instance whose session shows ``video`` from frame 0 on track t1."""
    with Instance(["--headless"], defs=defs) as inst:
        inst.wait_running()
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}])
        yield inst


@contextlib.contextmanager
def loopback_cluster(security: Any = None) -> Iterator[Any]:
    """A Dask scheduler on loopback, in this process, with no workers of its own (nodes join).

    With ``security`` (a ``distributed.Security``) it speaks TLS only (``tls://``).
    """
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=0,
        processes=False,
        protocol="tcp" if security is None else "tls",
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address="127.0.0.1:0",  # not the default 8787: tests run side by side
        security=security,
    ) as cluster:
        yield cluster
