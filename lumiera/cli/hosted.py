"""An instance of this process's own, for one job: ``lumiera render`` and ``lumiera replay``.

This process *is* the instance's supervisor (AppState, in its main thread, as
``lumiera up SESSION --headless`` runs it: Engine, Session and Player, no
Script runner), and a driver thread waits until the instance runs, does the
job on an :class:`lumiera.api.App` (direct calls), and asks the supervisor to
stop in order at the end. One process less than ``lumiera up`` in a child: its
interpreter start and imports (0.1-0.15 s of CPU); ``lumiera render`` forks
its zygote first thing, before its own imports (:func:`take_zygote`).

Signals: the supervisor's handlers take SIGINT, SIGTERM and SIGHUP sent to this
process (a terminal's Ctrl-C, ``kill``, systemd, a job runner) and stop the
instance in order; the job then ends with its instance, and
:attr:`Outcome.signalled` says which signal it was (the command exits 128 +
the signal). The instance's output goes to a temporary log: its last lines
are in the outcome, for the command to show when something failed.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.appstate.model import Phase
from lumiera.errors import LumieraError
from lumiera.subsystems import Options

if TYPE_CHECKING:
    from lumiera.api import App
    from lumiera.appstate.zygote import Zygote

STATUS_EVERY_S = 0.25  # while the instance starts: ask its phase this often
DRIVER_END_WAIT_S = 10.0  # after the supervisor ended: the driver's own end
LOG_TAIL = 25  # lines of the instance's output kept for the command to show


@dataclass
class Outcome:
    """How the job and its instance ended."""

    code: int  # the supervisor's exit code (lumiera up's)
    started: float  # time.monotonic() when the instance began to start
    running: bool = False  # the instance reached ``running`` (the job was begun)
    done: bool = False  # the job returned
    result: Any = None  # what it returned
    failure: str = ""  # the exception it raised, if it did
    signalled: signal.Signals | None = None  # the SIGINT/SIGTERM/SIGHUP that stopped it
    log: list[str] = field(default_factory=list)  # the instance's last lines of output


class Driver:
    """The job, run in a thread beside the supervisor: wait, do it, stop the instance."""

    def __init__(
        self, rd: runtime_dir.RuntimeDir, job: Callable[[App], Any], timeout: float | None
    ) -> None:
        self.rd = rd
        self.job = job
        self.timeout = timeout
        self.bound = threading.Event()  # the supervisor has bound its sockets
        self.ended = threading.Event()  # the supervisor's run returned
        self.stop: Callable[[], object] = lambda: None  # asks the supervisor to stop in order
        self.running = self.done = False
        self.result: Any = None
        self.failure = ""

    def run(self) -> None:
        try:
            self._do()
        except Exception as e:  # noqa: BLE001 - said in the outcome; the instance stops in order
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            self.stop()  # in this process: never waits (an ending supervisor just ends)

    def _do(self) -> None:
        from lumiera import api

        while not self.bound.wait(STATUS_EVERY_S):
            if self.ended.is_set():
                return  # it ended before it could be reached (its log says why)
        app_ = api.App(self.rd) if self.timeout is None else api.App(self.rd, self.timeout)
        with app_ as app:
            if not self._wait_running(app):
                return
            self.running = True
            self.result = self.job(app)
            self.done = True

    def _wait_running(self, app: App) -> bool:
        """Until the phase is ``running``; False when the instance ends (or is ending) first.

        The phase event wakes this at once; asking ``status`` now and then covers an
        event sent before this subscription took effect.
        """
        app.subscribe("appstate.phase")
        while not self.ended.is_set():
            try:  # short: a supervisor that ends meanwhile is not waited for
                phase = app.client.request("appstate", "status", timeout=STATUS_EVERY_S)["phase"]
            except LumieraError:  # not answering yet (or no longer)
                phase = None
            if phase == "running":
                return True
            if _ending(phase):
                return False  # on its way down: its log says why
            try:
                event = app.wait_event("appstate.phase", STATUS_EVERY_S)
            except TimeoutError:
                continue
            now = event.data().get("phase")
            if now == "running":
                return True
            if _ending(now):
                return False
        return False


def _ending(phase: object) -> bool:
    """Whether ``phase`` (a status's or an event's, None when not answered) is the end's."""
    try:
        return Phase(str(phase)).ending if phase is not None else False
    except ValueError:  # a phase this version does not know: not taken for an end
        return False


def take_zygote(cfg: config_mod.Config, options: Options) -> tuple[Zygote | None, str]:
    """The zygote this command prestarted, or one started now (or none: exec, and why).

    Call before this process has a thread or a ZeroMQ context.
    """
    from lumiera.appstate import zygote as zygote_mod

    zygote = zygote_mod.take_prestarted()
    if zygote is not None and cfg.get_str("appstate.spawn") == "fork":
        return zygote, ""
    if zygote is not None:
        zygote.close()
    from lumiera.cli.up import start_zygote

    return start_zygote(cfg, options)


def run(
    cfg: config_mod.Config,
    rd: runtime_dir.RuntimeDir,
    options: Options,
    job: Callable[[App], Any],
    timeout: float | None = None,
) -> Outcome:
    """Supervise an instance for ``options`` here, do ``job`` on it, stop it: the outcome.

    ``job`` runs in the driver thread once the instance runs; ``timeout`` is its
    App's request timeout (None: the App's own, ``api.REQUEST_TIMEOUT_S``). Raises
    InstanceRunning when ``rd``'s instance is up already (nothing was started),
    RuntimeDirError for an unsafe runtime directory.
    """
    zygote, why_not = take_zygote(cfg, options)  # before any thread or ZeroMQ context
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("appstate| %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(cfg.get_str("log.level"))
        if why_not:
            logging.getLogger("lumiera.appstate").warning("%s", why_not)
        driver = Driver(rd, job, timeout)
        thread = threading.Thread(target=driver.run, name="driver", daemon=True)
        try:
            from lumiera.appstate.supervisor import Supervisor

            supervisor = Supervisor(rd, cfg, options, log, zygote, bound=driver.bound)
            driver.stop = lambda: supervisor.stops.request("the job is done")
            thread.start()
            code = supervisor.run()
        finally:
            driver.ended.set()
            if zygote is not None:
                zygote.close()
            if thread.is_alive():
                thread.join(DRIVER_END_WAIT_S)
            root.removeHandler(handler)
        log.seek(0)
        lines = log.read().splitlines()[-LOG_TAIL:]
    return Outcome(
        code=code,
        started=started,
        running=driver.running,
        done=driver.done,
        result=driver.result,
        failure=driver.failure,
        signalled=supervisor.signalled,
        log=lines,
    )
