"""The Script runner subsystem (Stage): runs the user's scripts, then ends the application.

Each ``--script FILE`` is run in turn with :func:`runpy.run_path` once the
session is ready (ON_SESSION_READY), in a worker thread so the main loop keeps
answering and heartbeating. When the last one finishes, the application ends in
order; a script that raises (or exits non-zero) ends it as an error (``lumiera
up`` exits 1, the traceback is shown), not as an emergency.

Scripts use :mod:`lumiera.api` (``api.app()`` is the instance they run in):
session commands, render to a file, playback, events.
"""

from __future__ import annotations

import os
import runpy
import threading
import traceback
from typing import Any

from lumiera.actors import Actor
from lumiera.api import ENV_INSTANCE, ENV_RUNTIME_DIR
from lumiera.lifecycle import Lifecycle


class ScriptActor(Actor):
    name = "script"
    summary = "runs the user's scripts, then ends the application"

    def on_start(self) -> None:
        self.done: list[str] = []
        self.current: str | None = None
        self._thread: threading.Thread | None = None
        self.ctx.hooks.add(Lifecycle.ON_SESSION_READY, self._launch)

    def _launch(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_all, name="script", daemon=True)
            self._thread.start()

    def _run_all(self) -> None:
        """Runs in the script thread; hands the end to the main loop via ctx.end."""
        error: str | None = None
        # What lumiera.api.app() connects to.
        os.environ[ENV_INSTANCE] = self.ctx.instance
        if self.ctx.runtime_dir is not None:
            os.environ[ENV_RUNTIME_DIR] = self.ctx.runtime_dir
        for path in self.ctx.options.get("scripts", []):
            self.current = path
            self.log.info("running script %s", path)
            try:
                runpy.run_path(path, run_name="__main__")
            except SystemExit as e:
                if e.code not in (None, 0):
                    error = f"script {path} exited with {e.code}"
                    break
            except BaseException as e:  # noqa: BLE001 - the user's failure: a regular end with error
                traceback.print_exc()
                error = f"script {path} raised {type(e).__name__}: {e}"
                break
            self.done.append(path)
        self.current = None
        self.ctx.end(error)

    def describe_state(self) -> dict[str, Any]:
        return {
            "scripts": self.ctx.options.get("scripts", []),
            "done": list(getattr(self, "done", [])),
            "current": getattr(self, "current", None),
        }


ACTOR = ScriptActor
