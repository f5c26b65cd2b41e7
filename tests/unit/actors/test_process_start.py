"""A subsystem process whose actor cannot be imported reports it and ends; it never hangs."""

from __future__ import annotations

import os
import subprocess
import sys

import zmq

from lumiera.bus import messages as m
from lumiera.exits import EXIT_CRASH
from lumiera.runtime_dir import ENV_SUPERVISOR_PID
from lumiera.testing import unique_runtime_dir

CHILD = """
import sys
from lumiera.actors.process import SubsystemProcess
from lumiera.runtime_dir import RuntimeDir
from pathlib import Path
rd = RuntimeDir(Path(sys.argv[1]), sys.argv[2], False)
sys.exit(SubsystemProcess("broken", "lumiera.no_such_actor_module", rd, False).run())
"""


def test_an_actor_module_that_cannot_be_imported_is_a_problem_report_and_exit_70():
    rd = unique_runtime_dir()
    ctx = zmq.Context()
    control = ctx.socket(zmq.ROUTER)
    control.setsockopt(zmq.LINGER, 0)
    control.bind(rd.endpoint("control"))
    env = {**os.environ, ENV_SUPERVISOR_PID: str(os.getpid())}
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(rd.path), rd.instance],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert control.poll(20_000), "no word from the broken subsystem"
            _identity, frame = control.recv_multipart()
            report = m.decode(frame)
            assert isinstance(report, m.Problem)
            assert "ModuleNotFoundError" in report.reason, report
            assert child.wait(20) == EXIT_CRASH
        finally:
            if child.poll() is None:
                child.kill()
            _, err = child.communicate()
        assert "lumiera.no_such_actor_module" in err
    finally:
        control.close()
        ctx.term()
        rd.socket("control").unlink(missing_ok=True)
        rd.path.rmdir()
