"""How a process ended, as the runner sees it."""

from __future__ import annotations

import signal

from lumiera.appstate.actions import ExitStatus


def test_a_negative_returncode_is_the_signal_that_killed_the_process():
    status = ExitStatus.from_returncode(-signal.SIGKILL)
    assert status == ExitStatus(signal=9)
    assert not status.ok
    assert status.describe() == "killed by SIGKILL"


def test_only_exit_code_0_is_ok():
    assert ExitStatus.from_returncode(0).ok
    assert ExitStatus.from_returncode(0).describe() == "exit code 0"
    assert not ExitStatus.from_returncode(70).ok
    assert ExitStatus.from_returncode(70) == ExitStatus(code=70)


def test_an_unknown_signal_is_described_by_its_number():
    assert ExitStatus(signal=200).describe() == "killed by signal 200"
