"""A helper process of a benchmark, spoken to in lines over its stdin and stdout."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any


class Child:
    """A helper process that speaks lines: it says ``ready``, may be told words on its
    stdin, and says ``result JSON``. Every read is bounded; :meth:`close` in ``finally``."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None):
        self.name = name
        self.buf = b""
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer within {timeout:g} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait(timeout=5)
                    raise RuntimeError(f"{self.name} exited with {code} (see stderr)")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().strip()

    def expect(self, word: str, timeout: float) -> None:
        line = self.line(timeout)
        if line != word:
            raise RuntimeError(f"{self.name} said {line!r} instead of {word}")

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        line = self.line(timeout)
        if not line.startswith("result "):
            raise RuntimeError(f"{self.name} said {line!r} instead of its result")
        res: dict[str, Any] = json.loads(line.removeprefix("result "))
        return res

    def finish(self, problems: list[str], timeout: float = 10.0) -> None:
        """Wait for a clean exit (it has said its result); a problem if there is none."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            problems.append(f"{self.name} did not exit after its result")
            return
        if code != 0:
            problems.append(f"{self.name} exited with {code}")

    def close(self, grace: float = 0.0) -> None:
        """Wait ``grace`` s for it to end, then SIGTERM, then (after 5 s) SIGKILL."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
