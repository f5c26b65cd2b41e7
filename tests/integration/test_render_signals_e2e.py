"""Signals sent to the ``lumiera render`` process alone (``kill``, systemd, a job runner),
not to its whole group as a terminal's Ctrl-C: each stops it in order, mid-way or at
its start, with exit 128 + the signal, no file, no partial file and nothing left."""

from __future__ import annotations

import contextlib
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lumiera import testing
from lumiera.bus import recording
from lumiera.testing import Instance
from tests.support import build, own_instance_signalled, stop
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session whose render takes seconds: 64x48 media scaled to 1280x720, to FFV1."""
    base = tmp_path_factory.mktemp("signals")
    video = write_video(base / "v.mkv", 150, "ffv1")
    path = base / "big.lum"
    with Instance(["--headless", str(path)]) as inst:
        inst.wait_running()
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}], size=(1280, 720))
        stop(inst)
    return path


def _ignore_sigint() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `cmd &` in a non-interactive shell
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # not under nohup (the tests may be)


def render_signalled(
    session: Path, out_dir: Path, sig: int, *, when: str, sigint_ignored: bool = False
) -> tuple[int, str]:
    out = out_dir / "out.mkv"
    partial = out_dir / ".out.mkv.partial"

    def ready(rd: testing.RuntimeDir) -> bool:
        if when == "mid-way":
            return partial.exists()
        return rd.socket("control").exists()  # at start-up: its instance has bound its sockets

    code, err, _left = own_instance_signalled(
        "render",
        [str(session), "-o", str(out), "--codec", "ffv1"],
        sig,
        ready,
        _ignore_sigint if sigint_ignored else testing.as_from_a_terminal,
    )
    return code, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_render_alone_mid_way_stops_it_in_order(session, tmp_path, sig):
    code, err = render_signalled(session, tmp_path, sig, when="mid-way")
    assert code == 128 + sig, err
    assert f"interrupted; no file written ({signal.Signals(sig).name})" in err
    assert list(tmp_path.iterdir()) == []  # no file, no partial file


def test_a_signal_at_start_up_stops_it_in_order(session, tmp_path):
    code, err = render_signalled(session, tmp_path, signal.SIGTERM, when="start-up")
    assert code == 128 + signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == []


def test_sigint_stops_it_even_when_it_was_started_with_sigint_ignored(session, tmp_path):
    code, err = render_signalled(
        session, tmp_path, signal.SIGINT, when="mid-way", sigint_ignored=True
    )
    assert code == 130, err
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def tapping(
    inst: Instance, preexec: Callable[[], None], *more: str
) -> Iterator[subprocess.Popen[str]]:
    """``lumiera tap [MORE]`` on ``inst``, started with ``preexec``, once it prints events;
    never left running."""
    where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
    with subprocess.Popen(
        [sys.executable, "-m", "lumiera", "tap", *where, *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,  # noqa: PLW1509
    ) as tap:
        try:
            _wait_tapping(inst, tap)
            yield tap
        finally:
            if tap.poll() is None:
                tap.kill()
            tap.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_any_command_line_stops_on_a_signal_even_started_with_sigint_ignored(sig):
    """`lumiera tap` as a background job (SIGINT ignored) stops as Ctrl-C stops it."""
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        with tapping(inst, _ignore_sigint) as tap:
            tap.send_signal(sig)
            tap.wait(timeout=10)
        assert tap.returncode == 128 + sig


def _wait_tapping(inst: Instance, tap: subprocess.Popen[str]) -> None:
    """Until the tap prints an event (edits made meanwhile make events)."""
    assert tap.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        inst.request("session", "add_track", {"name": "V"})
        if select.select([tap.stdout], [], [], 0.2)[0]:
            return
    raise AssertionError("the tap printed nothing")


def _ignore_sighup() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts a command


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_recording_tap_ends_its_recording_on_a_signal_and_exits_128_plus_it(sig, tmp_path):
    path = tmp_path / "bus.rec"
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        with tapping(inst, _ignore_sigint, "--record", str(path)) as tap:
            tap.send_signal(sig)
            tap.wait(timeout=10)
        assert tap.returncode == 128 + sig
        assert not recording.marker_path(inst.rd, tap.pid).exists()
    assert recording.read_recording(path).complete  # its end record written


@pytest.mark.parametrize("record", [False, True], ids=["tap", "tap --record"])
def test_a_command_line_under_nohup_keeps_running_through_a_hangup(record, tmp_path):
    path = tmp_path / "bus.rec"
    more = ["--record", str(path)] if record else []
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        with tapping(inst, _ignore_sighup, *more) as tap:
            tap.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            assert tap.poll() is None  # nohup asked for the hangup to be ignored
            tap.send_signal(signal.SIGTERM)
            tap.wait(timeout=10)
        assert tap.returncode == 128 + signal.SIGTERM
    if record:
        assert recording.read_recording(path).complete  # recorded on, then ended in order
