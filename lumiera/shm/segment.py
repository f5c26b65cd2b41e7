"""A shared-memory segment: created with its space reserved, attached without side effects.

These are the POSIX shared-memory objects ``multiprocessing.shared_memory``
uses (files in /dev/shm), opened directly rather than through
``SharedMemory``, because Python 3.11's ``SharedMemory``:

- registers every *attaching* process with its resource tracker, which then
  unlinks the segment when that process exits (gh-82300) and warns about
  "leaked" segments; here no process but the owner ever unlinks, by construction;
- sizes a new segment with ``ftruncate`` only, so a full /dev/shm shows up as
  SIGBUS in the middle of a frame; here ``posix_fallocate`` reserves the space
  and a full /dev/shm is an error at creation.

Also here: the OFD byte-range locks (per open file description, released by
the kernel when the holder dies) that the ring uses to guard slots.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
from pathlib import Path
from types import TracebackType
from typing import Literal

from lumiera.errors import SegmentError
from lumiera.shm import SHM_DIR

__all__ = ["Segment", "SegmentError"]

_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux x86_64/aarch64


class Segment:
    """An open shared-memory segment, mapped. Close it; only its owner unlinks it."""

    def __init__(self, name: str, fd: int, size: int, writable: bool) -> None:
        self.name = name
        self.fd = fd
        self.size = size
        self.writable = writable
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        self.mmap = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
        self.buf = memoryview(self.mmap)
        self._casts: list[memoryview] = []

    @property
    def path(self) -> Path:
        return SHM_DIR / self.name

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        """Create ``name`` with ``size`` bytes reserved (mode 0600); raises SegmentError."""
        path = SHM_DIR / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise SegmentError(f"shared-memory segment {name} already exists") from None
        except OSError as e:
            raise SegmentError(f"cannot create shared-memory segment {name}: {e.strerror}") from e
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as e:
            os.close(fd)
            path.unlink(missing_ok=True)
            free = _free_bytes()
            raise SegmentError(
                f"cannot reserve {size / 2**20:.1f} MiB for {name} in {SHM_DIR} "
                f"({e.strerror}; {free / 2**20:.1f} MiB free)"
            ) from e
        try:
            return cls(name, fd, size, writable=True)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise

    @classmethod
    def attach(cls, name: str, writable: bool = True) -> Segment:
        """Map an existing segment; raises SegmentError when it is missing."""
        try:
            fd = os.open(SHM_DIR / name, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SegmentError(f"no shared-memory segment {name}") from None
        except OSError as e:
            raise SegmentError(f"cannot open shared-memory segment {name}: {e.strerror}") from e
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise SegmentError(f"shared-memory segment {name} is empty")
            return cls(name, fd, size, writable)
        except BaseException:
            os.close(fd)
            raise

    def cast(self, fmt: Literal["Q", "I"]) -> memoryview:
        """A view of the whole mapping as machine words (``"Q"``, ``"I"``); released by close.

        (Also by a close that raised BufferError, which leaves a new :attr:`buf`.)

        Indexing it loads or stores one aligned word in one instruction (struct's
        little-endian packers go byte by byte), and costs no call.
        """
        view = self.buf.cast(fmt)
        self._casts.append(view)
        return view

    def close(self) -> None:
        """Unmap and close. Raises BufferError while numpy views of it are alive."""
        if self.fd < 0:
            return
        self.buf.release()
        for view in self._casts:
            view.release()
        self._casts.clear()
        try:
            self.mmap.close()
        except BufferError:  # a caller's view (numpy's included) is alive: stay open, usable
            self.buf = memoryview(self.mmap)  # word views (cast) must be taken again
            raise
        os.close(self.fd)
        self.fd = -1

    def unlink(self) -> None:
        """Remove the segment's name (its owner only); mappings stay valid until closed."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Segment:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- OFD byte-range locks -------------------------------------------------------

    def try_lock(self, start: int, length: int, exclusive: bool) -> bool:
        """Take a lock on [start, start+length) without waiting; False when it is held."""
        kind = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, 0, start, length, 0))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def unlock(self, start: int, length: int) -> None:
        fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, 0, start, length, 0))

    def range_lock(self, start: int, length: int) -> RangeLock:
        """The lock requests of one range, packed once (a ring's slot is locked per frame)."""
        return RangeLock(self.fd, start, length)

    def barrier(self) -> None:
        """A full memory barrier between this process's stores and its loads.

        Python has none; a cheap fcntl releases and retakes the GIL, whose mutex
        operations are locked instructions (layout.py, WAKE-UPS).
        """
        fcntl.fcntl(self.fd, fcntl.F_GETFL)

    def is_locked(self, start: int, length: int) -> bool:
        """Whether another open file description holds any lock on the range."""
        query = _FLOCK.pack(fcntl.F_WRLCK, 0, start, length, 0)
        kind = _FLOCK.unpack(fcntl.fcntl(self.fd, fcntl.F_OFD_GETLK, query))[0]
        return bool(kind != fcntl.F_UNLCK)


class RangeLock:
    """:meth:`Segment.try_lock` and :meth:`Segment.unlock` of one fixed range, prepacked."""

    __slots__ = ("_excl", "_shared", "_unlock", "fd")

    def __init__(self, fd: int, start: int, length: int) -> None:
        self.fd = fd
        self._excl = _FLOCK.pack(fcntl.F_WRLCK, 0, start, length, 0)
        self._shared = _FLOCK.pack(fcntl.F_RDLCK, 0, start, length, 0)
        self._unlock = _FLOCK.pack(fcntl.F_UNLCK, 0, start, length, 0)

    def try_lock(self, exclusive: bool) -> bool:
        try:
            fcntl.fcntl(self.fd, _SETLK, self._excl if exclusive else self._shared)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def unlock(self) -> None:
        fcntl.fcntl(self.fd, _SETLK, self._unlock)


_SETLK = fcntl.F_OFD_SETLK


def _free_bytes() -> int:
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize
