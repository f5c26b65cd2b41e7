"""The engine's scheduler: render jobs with deadlines and priority classes, on a worker pool.

A job is a callable with a deadline and one of Lumiera's priority classes:
playback/interactive first, then background render, then best-effort.
Workers take the most urgent job: the best class, then the earliest deadline,
then the oldest. A job taken after its deadline is counted as missed; a
*playback* job that is late is dropped instead of run (its frame would come
too late to be shown), others still run. A job that raises is reported with
its traceback (logged at ERROR, and in its handle) and the scheduler goes on.

Decoding (PyAV) and numpy release the GIL, so worker threads use the cores.
With ``workers=0`` nothing runs by itself: :meth:`Scheduler.step` runs the next
job in the caller's thread, which makes tests deterministic.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lumiera.errors import DeadlineMissed, ShuttingDown

log = logging.getLogger("lumiera.engine")


class Priority(enum.IntEnum):
    PLAYBACK = 0  # interactive: late is useless
    RENDER = 1  # background render: late is still needed
    BEST_EFFORT = 2  # prefetch and the like


class JobHandle:
    """The outcome of a job, once it ran (or was dropped)."""

    def __init__(self, name: str, on_done: Callable[[], None] | None = None) -> None:
        self.name = name
        self.on_done = on_done  # called once the outcome is there (done is True)
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self.late = False  # a worker took it after its deadline (counted as missed)

    def _finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result, self._error = result, error
        self._done.set()
        if self.on_done is not None:
            try:
                self.on_done()
            except Exception:
                log.exception("job %s: its on_done failed", self.name)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float) -> Any:
        """The job's return value; raises its exception, or TimeoutError after ``timeout``."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.name} not done within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result


@dataclass(order=True)
class _Job:
    priority: int
    deadline: float
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    handle: JobHandle = field(compare=False)


class Scheduler:
    """Jobs by urgency, on ``workers`` threads (0: run them with :meth:`step`)."""

    def __init__(self, workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self.stats = {"submitted": 0, "done": 0, "missed": 0, "dropped": 0, "failed": 0}
        self._threads = [
            threading.Thread(target=self._work, name=f"engine-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self,
        fn: Callable[[], Any],
        deadline: float,
        priority: Priority,
        name: str = "job",
        on_done: Callable[[], None] | None = None,
    ) -> JobHandle:
        """Queue ``fn`` to run by ``deadline`` (on this scheduler's clock).

        ``on_done`` is called once the job's handle says ``done`` (it ran, raised, was
        dropped or shut down): a waiter it wakes always finds the outcome there.
        """
        handle = JobHandle(name, on_done)
        with self._cv:
            if self._closed:
                raise ShuttingDown("the scheduler is shut down")
            heapq.heappush(self._heap, _Job(int(priority), deadline, next(self._seq), fn, handle))
            self.stats["submitted"] += 1
            self._cv.notify()
        return handle

    def step(self) -> bool:
        """Run the most urgent job here; False when there is none."""
        with self._cv:
            if not self._heap:
                return False
            job = heapq.heappop(self._heap)
        self._run(job)
        return True

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed and not self._heap:
                    return
                job = heapq.heappop(self._heap)
            self._run(job)

    def _run(self, job: _Job) -> None:
        late = self.clock() > job.deadline
        if late:
            job.handle.late = True
            self._count("missed")
            if job.priority == Priority.PLAYBACK:
                self._count("dropped")
                job.handle._finish(error=DeadlineMissed(f"{job.handle.name}: dropped, too late"))
                return
        try:
            result = job.fn()
        except Exception as e:
            log.exception("job %s failed", job.handle.name)
            self._count("failed")
            job.handle._finish(error=e)
            return
        self._count("done")
        job.handle._finish(result)

    def _count(self, key: str) -> None:
        with self._cv:
            self.stats[key] += 1

    @property
    def queued(self) -> int:
        with self._cv:
            return len(self._heap)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; queued ones finish with ShuttingDown; wait (bounded) for workers."""
        with self._cv:
            self._closed = True
            pending, self._heap = self._heap, []
            self._cv.notify_all()
        for job in pending:
            job.handle._finish(error=ShuttingDown(f"{job.handle.name}: the engine is stopping"))
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
