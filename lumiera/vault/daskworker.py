"""A Dask ``distributed`` Worker inside a subsystem process, and what its tasks see of the node.

Runs in the netnode's process (:mod:`lumiera.vault.netnode`). Dask runs a
Worker on an asyncio loop; a process whose main thread is the subsystem's bus
loop gives the Worker a loop of its own in a thread (:class:`WorkerThread`), as
``distributed`` itself does for an in-process cluster (``LocalCluster(processes=
False)`` runs its workers on a loop thread). Start and close are bounded; the
Worker runs without a nanny, so its end is this process's business: the netnode
watches the thread and turns an unexpected end into the subsystem's end or crash.

:class:`NodePlugin` is the Worker's plugin (a Dask ``WorkerPlugin``, registered
with the Worker when it is made, never shipped): the node's instance, runtime
and temp directories for the tasks (:func:`this_node`), the counts of tasks
run and failed (from the Worker's own task transitions), one render at a time,
and the flag a stopping node raises so a running task gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from distributed import Security, Worker, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from lumiera.errors import ShuttingDown, Unavailable
from lumiera.vault import security

log = logging.getLogger("lumiera.netnode")

PLUGIN_NAME = "lumiera-node"
# Beyond its own bound (join_timeout), how long start() waits for the loop thread to say.
START_MARGIN_S = 2.0


@dataclass(frozen=True)
class NodeSettings:
    """How the node's Worker is made: whom it joins, where it listens, what it is called."""

    scheduler: str  # tcp://HOST:PORT or tls://HOST:PORT
    host: str  # where it listens (127.0.0.1 unless told otherwise)
    port: int  # 0: a free one
    nthreads: int
    name: str  # unique on the scheduler
    local_directory: str  # the Worker's scratch space (in the instance's temp area)
    join_timeout: float  # start and registration with the scheduler
    security: Security | None = None  # TLS (lumiera.vault.security); None: plain tcp://


class NodePlugin(WorkerPlugin):
    """This node as the Worker's tasks see it (see the module docstring).

    ``transition`` runs in the Worker's loop thread, the tasks in its pool's
    threads, ``describe`` in the netnode's main thread: the counts are ints
    written in one thread and read in others (whole reads under the GIL).
    """

    name = PLUGIN_NAME

    def __init__(
        self, node: str, instance: str, runtime_dir: str, temp_dir: str, task_timeout: float
    ) -> None:
        self.node, self.instance, self.task_timeout = node, instance, task_timeout
        self.runtime_dir, self.temp_dir = runtime_dir, temp_dir
        self.ran = 0  # tasks that ended with a result on this worker ...
        self.failed = 0  # ... and with an exception
        self.stopping = threading.Event()  # set by the netnode's stop: tasks give up
        # The node's Player renders one file at a time; a second task waits its turn.
        self._render = threading.Lock()
        self._idle = threading.Condition()
        self.running = 0  # tasks inside task(); guarded by _idle
        # --ship-media: where this node keeps fetched media (a MediaCache, set by the
        # netnode from [netnode] cache_dir/cache_mb) and how it checks the origin (TLS).
        self.cache: Any = None
        self.fetch_ssl: ssl.SSLContext | None = None

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """Count each task that ends here (the Worker's loop thread; must not raise)."""
        if start == "executing" and finish == "memory":
            self.ran += 1
        elif start == "executing" and finish == "error":
            self.failed += 1

    def check_stopping(self, _progress: object = None) -> None:
        """ShuttingDown once the node is stopping (a task's progress callback)."""
        if self.stopping.is_set():
            raise ShuttingDown(f"node {self.node} is stopping")

    @contextlib.contextmanager
    def task(self) -> Iterator[None]:
        """One task's turn at the node's Player (bounded by task_timeout; a pool thread)."""
        self.check_stopping()
        if not self._render.acquire(timeout=self.task_timeout):
            raise Unavailable(f"node {self.node}: no turn at its player in {self.task_timeout:g} s")
        with self._idle:
            self.running += 1
        try:
            self.check_stopping()
            yield
        finally:
            self._render.release()
            with self._idle:
                self.running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is inside :meth:`task` (False: still one after ``timeout``)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.running == 0, timeout)


def this_node() -> NodePlugin:
    """The node a task runs on (in a Worker's pool thread); Unavailable anywhere else."""
    try:
        plugin = get_worker().plugins.get(PLUGIN_NAME)
    except ValueError:  # not in a worker at all
        plugin = None
    if not isinstance(plugin, NodePlugin):
        raise Unavailable("this task runs only on a lumiera render node (lumiera up --join)")
    return plugin


class WorkerThread:
    """One Worker on its own event loop in a daemon thread of this process.

    :meth:`start` and :meth:`stop` are called from the netnode's main thread;
    everything of the Worker happens in the loop thread. A thread that ends
    while nobody stopped it (the scheduler went away, the loop failed) says so
    in :attr:`ended` and :attr:`error`.
    """

    def __init__(self, settings: NodeSettings, plugin: NodePlugin) -> None:
        self.settings = settings
        self.plugin = plugin
        self.worker: Worker | None = None
        self.start_error: Exception | None = None  # why the Worker could not start or join
        self.error: BaseException | None = None  # what ended the loop thread, if it failed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()  # the Worker runs, or its start failed
        self._thread = threading.Thread(target=self._run, name="dask-worker-loop", daemon=True)

    # -- the main thread's side -----------------------------------------------------------

    def start(self) -> str:
        """Start the Worker and join the scheduler; its address. Unavailable if it cannot."""
        self._thread.start()
        bound = self.settings.join_timeout + START_MARGIN_S
        if not self._started.wait(bound):
            raise Unavailable(f"the Dask worker did not start within {bound:g} s")
        failure = self.start_error or self.error
        if failure is not None or self.worker is None:
            cause = "no worker" if failure is None else _cause(failure)
            raise Unavailable(f"cannot join the scheduler at {self.settings.scheduler}: {cause}")
        return str(self.worker.address)

    def stop(self, timeout: float) -> None:
        """Close the Worker (the scheduler sees it leave) and end the loop thread, bounded."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():  # a daemon thread: it goes with the process
            log.error("the Dask worker did not close within %g s", timeout)

    @property
    def ended(self) -> bool:
        """Whether the loop thread has ended (after a start)."""
        return self._started.is_set() and not self._thread.is_alive()

    @property
    def status(self) -> str:
        return "not started" if self.worker is None else str(self.worker.status.name)

    # -- the loop thread ------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except Exception as e:  # logged, and read by the netnode: a crash
            log.error("the Dask worker's loop failed", exc_info=e)
            self.error = e
        finally:
            self._started.set()
            with contextlib.suppress(Exception):
                _cancel_rest(loop)
            loop.close()

    async def _serve(self) -> None:
        s = self.settings
        self._stop = asyncio.Event()
        # Dask's start banner (a dozen INFO lines) would fill the instance's output;
        # the netnode says in one line what was joined. Its warnings still show.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        deadline = time.monotonic() + s.join_timeout
        if s.security is not None:  # a refused certificate: said at once, in words
            try:
                await security.handshake(s.scheduler, s.security, "worker", s.join_timeout)
            except Exception as e:  # noqa: BLE001 - start() reports it to the netnode's on_start
                self.start_error = e
                return
        worker = Worker(
            s.scheduler,
            nthreads=s.nthreads,
            host=s.host,
            port=s.port,
            name=s.name,
            local_directory=s.local_directory,
            # bounds the start, registration included (what the handshake left of it)
            death_timeout=max(0.1, deadline - time.monotonic()),
            plugins=(self.plugin,),
            security=s.security,
        )
        self.worker = worker
        try:
            await worker  # bounded by death_timeout; closes itself when it cannot start
        except Exception as e:  # noqa: BLE001 - start() reports it to the netnode's on_start
            self.start_error = e
            return
        self._started.set()
        stop = asyncio.ensure_future(self._stop.wait())
        finished = asyncio.ensure_future(worker.finished())  # type: ignore[no-untyped-call]
        await asyncio.wait({stop, finished}, return_when=asyncio.FIRST_COMPLETED)
        if finished.done():  # closed by itself: the scheduler is gone, or it asked us to
            stop.cancel()
            return
        # executor_wait=False: a task still running is the scheduler's to retry
        # elsewhere, not a reason to hold the stop (the task gives up on its own).
        close = worker.close(timeout=s.join_timeout, executor_wait=False, reason="lumiera-stop")
        try:
            await asyncio.wait_for(close, s.join_timeout)
        finally:
            finished.cancel()


def _cause(exc: BaseException) -> str:
    """The innermost message of an exception chain (Dask wraps start failures).

    A refused TLS handshake is said in words (:func:`lumiera.vault.security.explain`).
    """
    if isinstance(exc, security.Refused):
        return str(exc)
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _cancel_rest(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the Worker left on its loop, so the loop closes without orphans."""
    rest = asyncio.all_tasks(loop)
    for task in rest:
        task.cancel()
    if rest:
        loop.run_until_complete(asyncio.wait(rest, timeout=1.0))
