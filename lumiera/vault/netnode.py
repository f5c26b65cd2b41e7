"""The render node (Vault): this instance as a worker of a distributed engine.

``lumiera up --headless --port N --join tcp://SCHEDULER:8786`` (or ``[netnode]
scheduler``) runs this subsystem: a Dask ``distributed`` Worker in its process
(:mod:`lumiera.vault.daskworker`), listening on ``[netnode] host`` port N (0: a
free one), joined to the scheduler. Its tasks (:mod:`lumiera.vault.farmtask`)
render segments with this instance's own player and engine through the bus.

Supervised like every subsystem: the Worker is started in ``on_start``
(bounded by ``[netnode] join_timeout``; a scheduler that cannot be joined is a
start failure naming it) and closed in ``on_stop`` (the scheduler sees the
worker leave and gives its tasks to others). A Worker that closes by itself
(its scheduler went away) ends this subsystem with that reason, and so the
instance; a Worker loop that fails is a crash, this node's emergency. A SIGKILL
of this process is seen by the supervisor (an emergency) and by the scheduler
(a lost worker: the farm retries its task elsewhere).

Across hosts the farm speaks TLS (``tls://SCHEDULER:8786``, ``[farm] tls_*``:
:mod:`lumiera.vault.security`): the Worker presents this host's certificate
and trusts only the farm's CA; a scheduler that refuses it, or that this node
does not trust, is a start failure saying so.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from lumiera.actors import Actor, ActorContext
from lumiera.errors import ConfigError, Unavailable
from lumiera.vault import security
from lumiera.vault.daskworker import NodePlugin, NodeSettings, WorkerThread
from lumiera.vault.mediacache import MediaCache


class NetNodeActor(Actor):
    name = "netnode"
    summary = "render node: a Dask worker rendering segments with this instance's player"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.plugin: NodePlugin | None = None
        self.runner: WorkerThread | None = None
        self.address: str | None = None
        self._ended = False
        # How often on_tick looks at the Worker's thread (an unexpected end is seen this fast).
        self.tick_interval = ctx.config.get_float("appstate.heartbeat_interval")

    def settings(self) -> NodeSettings:
        """The Worker's settings from the command line, ``[netnode]`` and ``[farm] tls_*``.

        ConfigError if there is no scheduler, if the TLS files cannot be used, or if
        the scheduler's address does not fit them (``tls://`` needs them, ``tcp://``
        is refused with them: :mod:`lumiera.vault.security`).
        """
        cfg, options = self.ctx.config, self.ctx.options
        scheduler = options.get("join") or cfg.get_str("netnode.scheduler")
        if not scheduler:
            raise ConfigError(
                "a render node needs a scheduler to join: --join tcp://HOST:PORT "
                "(or [netnode] scheduler)"
            )
        tls = security.for_address(cfg, str(scheduler))
        assert self.ctx.temp_dir is not None  # the runtime always gives one
        name = cfg.get_str("netnode.name") or f"lumiera-{socket.gethostname()}-{self.ctx.instance}"
        return NodeSettings(
            scheduler=str(scheduler),
            host=cfg.get_str("netnode.host"),
            port=int(options.get("port") or 0),
            nthreads=cfg.get_int("netnode.nthreads"),
            name=name,
            local_directory=str(Path(self.ctx.temp_dir) / "dask-worker"),
            join_timeout=cfg.get_float("netnode.join_timeout"),
            security=tls,
        )

    def on_start(self) -> None:
        """Start the Worker and join the scheduler (main thread; raising: a start failure)."""
        settings = self.settings()
        assert self.ctx.runtime_dir is not None and self.ctx.temp_dir is not None
        self.plugin = NodePlugin(
            settings.name,
            self.ctx.instance,
            self.ctx.runtime_dir,
            self.ctx.temp_dir,
            self.ctx.config.get_float("netnode.task_timeout"),
        )
        self.plugin.cache = MediaCache.from_config(self.ctx.config)
        self.plugin.fetch_ssl = security.fetch_context(self.ctx.config)
        self.runner = WorkerThread(settings, self.plugin)
        self.address = self.runner.start()
        self.log.info(
            "node %s joined %s; its worker at %s", settings.name, settings.scheduler, self.address
        )

    def on_tick(self) -> None:
        """Watch the Worker's thread (main thread): its end unasked is this subsystem's end."""
        runner = self.runner
        if runner is None or self._ended or not runner.ended:
            return
        if runner.error is not None:  # the loop failed: a crash, this node's emergency
            raise Unavailable(f"the Dask worker failed: {runner.error!r}") from runner.error
        self._ended = True
        self.ctx.end(
            f"the Dask worker closed by itself: the scheduler at {runner.settings.scheduler} "
            "went away or retired it"
        )

    def on_stop(self) -> None:
        """Close the Worker, bounded by half the grace period (main thread)."""
        if self.runner is None or self.plugin is None:
            return
        self.plugin.stopping.set()  # a running task gives up at its next progress report
        bound = self.ctx.config.get_float("appstate.grace_period") / 2
        self.runner.stop(bound)
        self.plugin.wait_idle(bound / 2)  # its clean-up: the render stopped, its file removed

    def on_failure(self, exc: BaseException) -> None:
        if self.plugin is not None:
            self.plugin.stopping.set()

    def describe_state(self) -> dict[str, Any]:
        plugin, runner = self.plugin, self.runner
        settings = None if runner is None else runner.settings
        return {
            "built": True,
            "port": self.ctx.options.get("port"),
            "listening": runner is not None and runner.status == "running",
            "scheduler": None if settings is None else settings.scheduler,
            "worker": self.address,
            "worker_name": None if settings is None else settings.name,
            "worker_status": "not started" if runner is None else runner.status,
            "nthreads": None if settings is None else settings.nthreads,
            "tls": settings is not None and settings.security is not None,
            "tasks": {
                "ran": 0 if plugin is None else plugin.ran,
                "failed": 0 if plugin is None else plugin.failed,
                "running": 0 if plugin is None else plugin.running,
            },
        }


ACTOR = NetNodeActor
