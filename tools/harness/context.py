"""A benchmark's run: its temporary directory, its instances, its problems, its end."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from lumiera.runtime_dir import RuntimeDir
from lumiera.testing import Instance, unique_runtime_dir


def say(text: str) -> None:
    """Progress of a benchmark: to stderr, so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)


def precompile() -> str:
    """Compile lumiera's modules to bytecode (``__pycache__``), as pip does for an installed
    package; what it did, in words.

    A process imports them from the bytecode then, as a user's does. Without it, an
    editable checkout under ``PYTHONDONTWRITEBYTECODE`` (set on some machines) compiles
    every module from source in every process at every start: about 40 ms of CPU each,
    measured, which is not what a user's installed lumiera pays.
    """
    import compileall

    import lumiera

    package = Path(lumiera.__file__).parent
    ok = compileall.compile_dir(str(package), quiet=1, workers=1)
    said = f"bytecode: lumiera's modules compiled ({package})"
    return said if ok else said + "; some failed to compile"


def raise_interrupt(signum: int, _frame: Any) -> None:
    """A signal handler: SIGTERM as KeyboardInterrupt, so ``finally`` blocks clean up."""
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class BenchContext:
    """A benchmark's temporary directory, the environment of its instances, its problems."""

    base: Path
    env: dict[str, str]
    quick: bool = False
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def runtime_dir(self) -> RuntimeDir:
        return unique_runtime_dir(str(self.base))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@contextlib.contextmanager
def bench_context(prefix: str, quick: bool = False) -> Iterator[BenchContext]:
    """A short temp dir under /tmp (ipc paths must stay within 107 bytes), removed at the end.

    SIGTERM is turned into KeyboardInterrupt meanwhile, and the subsystems' log
    files go into the directory too (``XDG_STATE_HOME``).
    """
    old = signal.signal(signal.SIGTERM, raise_interrupt)
    say(precompile())
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield BenchContext(base, {"XDG_STATE_HOME": str(base / "state")}, quick)
    finally:
        zmq.Context.instance().destroy(linger=0)
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def bench_instance(
    ctx: BenchContext, args: Sequence[str], defs: Sequence[str] = (), timeout: float = 30.0
) -> Iterator[Instance]:
    """``lumiera up ARGS`` running; stopped and checked for leftovers in any case."""
    inst = Instance(list(args), rd=ctx.runtime_dir(), defs=defs, env=ctx.env)
    try:
        inst.start()
        inst.wait_running(timeout=timeout)
        yield inst
    finally:
        ctx.problems.extend(inst.close_and_check())


def parser(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """An argument parser described by the docstring's first paragraph, with ``--quick``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    p.add_argument("--quick", action="store_true", help=quick)
    return p


def bench_main(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main`` as the script; Ctrl-C or SIGTERM exit 130 after cleaning up."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped and removed")
        sys.exit(130)
