"""Media access: a bounded pool of open files, and exact frames by number.

The Vault turns any input into frames the core understands. Here:

- :class:`MediaPool` keeps at most ``max_open`` PyAV containers open (an LRU);
  a session may use more media than that, files are reopened transparently.
  Each file is checked against what was probed (size, mtime, inode) whenever
  it is opened: a file changed on disk is reported (MediaChanged), never
  decoded as the wrong media.
- :meth:`MediaPool.frame` gives frame *n* exactly (not the nearest keyframe):
  reading forward keeps the decoder running (sequential access costs one
  decode per frame); a jump backwards or far ahead seeks to the keyframe
  before the target and decodes up to it.
- Frames come out as numpy arrays in the pixel format asked (rgb24, yuv420p,
  gray, rgba), scaled when a size is given; or, with
  :meth:`MediaPool.frame_into`, straight into the caller's buffers (a ring
  slot's planes), one copy from the decoder's picture.

Not thread-safe: one pool per worker thread (a PyAV container is used by one
thread at a time).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from lumiera.bus.timeline import Media, Timeline
from lumiera.errors import MediaChanged, MediaError

# Jumping ahead by more than this many frames seeks instead of decoding through.
SEEK_AHEAD = 48
# A seek that lands after its target is retried aiming 1 s, 2 s, 4 s ... earlier, this far.
MAX_SEEK_BACK = 1 << 14
PIXEL_FORMATS = ("rgb24", "rgba", "gray", "yuv420p")


@dataclass(frozen=True)
class Identity:
    """What makes a file the one that was probed."""

    size: int
    mtime_ns: int
    inode: int  # 0: not recorded (a session made before it was); size and mtime decide

    @classmethod
    def of(cls, path: str) -> Identity:
        """The file's identity now; MediaError when it is missing or unreadable."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise MediaError(f"media {path}: {e.strerror}") from None
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    @classmethod
    def probed(cls, media: Media) -> Identity:
        """The identity the session took when it probed ``media``."""
        return cls(media.size, media.mtime_ns, media.inode)

    def matches(self, now: Identity) -> bool:
        """Whether ``now`` is the file this identity was taken of."""
        same_inode = self.inode in (0, now.inode)
        return same_inode and (self.size, self.mtime_ns) == (now.size, now.mtime_ns)


def check_sources(timeline: Timeline, first: int, count: int) -> None:
    """Every media shown in frames ``first .. first+count-1`` is the file that was probed.

    Raises MediaError naming the file when one is missing, MediaChanged when one
    was replaced or rewritten since ``add_media``: a render fails before any frame.
    """
    used = {c.media for c in timeline.clips_within(first, count)}
    for media in (m for m in timeline.media if m.id in used):
        if not os.path.isfile(media.path):
            raise MediaError(f"media {media.id}: {media.path} is missing")
        expected, now = Identity.probed(media), Identity.of(media.path)
        if not expected.matches(now):
            raise MediaChanged(f"media {media.id}: {_changed(media.path, expected, now)}")


def _changed(path: str, expected: Identity, now: Identity) -> str:
    return (
        f"media {path} changed on disk since it was probed "
        f"(size {expected.size} -> {now.size}, mtime or inode differ)"
    )


def round_ratio(n: int, d: int) -> int:
    """``round(Fraction(n, d))`` (halves to even) for ``d > 0``, in integers alone."""
    q, r = divmod(n, d)
    twice = 2 * r
    return q + 1 if twice > d or (twice == d and q & 1) else q


class _Open:
    """One open container and where its decoder stands."""

    def __init__(self, path: str, threads: int = 0) -> None:
        self.path = path
        self.threads = threads
        self.frames: Any = None  # the decoder's frame iterator
        self.next_index = 0  # index of the frame the iterator yields next
        self._open_container()

    def reopen(self) -> None:
        self.close()
        self._open_container()
        self.frames = self.container.decode(self.stream)
        self.next_index = 0

    def _open_container(self) -> None:
        path = self.path
        try:
            self.container = av.open(path)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"media {path}: cannot open ({e})") from None
        if not self.container.streams.video:
            self.container.close()
            raise MediaError(f"media {path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        if self.threads:  # else FFmpeg's count (see streamspec.decode_threads)
            self.stream.thread_count = self.threads
        rate = self.stream.average_rate or self.stream.guessed_rate
        if not rate:
            self.container.close()
            raise MediaError(f"media {path}: no frame rate")
        self.rate = Fraction(rate)
        self.time_base = Fraction(self.stream.time_base or Fraction(1, 1))
        self.start = self.stream.start_time or 0
        # index_of's (pts - start) * time_base * rate as one integer ratio: Fraction
        # arithmetic cost about 3 us a frame, on the decoding worker's thread (0.15 now).
        per = self.time_base * self.rate
        self._num, self._den = per.numerator, per.denominator
        self.frames = None
        self.next_index = 0

    def index_of(self, pts: int | None) -> int:
        """The frame number of ``pts``: ``round((pts - start) * time_base * rate)``, exactly
        (halves to even, as ``round`` does a Fraction)."""
        if pts is None:
            return -1
        return round_ratio((pts - self.start) * self._num, self._den)

    def pts_of(self, index: int) -> int:
        return self.start + round(index / (self.rate * self.time_base))

    def close(self) -> None:
        self.frames = None
        self.container.close()


class MediaPool:
    """Open media by path, at most ``max_open`` at a time, least recently used closed first.

    ``threads``: each decoder's threads (0: FFmpeg's frame threads, its own count).
    """

    def __init__(self, max_open: int = 32, threads: int = 0) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        if threads < 0:
            raise ValueError("threads must be 0 (FFmpeg's count) or more")
        self.max_open = max_open
        self.threads = threads
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._identity: dict[str, Identity] = {}
        self.opens = 0  # how many times a file was opened (reopens included)
        self.seeks = 0

    def register(self, path: str, identity: Identity | None = None) -> Identity:
        """Remember what ``path`` must be (from a probe); its identity now if not given."""
        ident = identity or Identity.of(path)
        self._identity[path] = ident
        return ident

    def expect(self, media: Media) -> None:
        """Decode ``media.path`` only while it is the file the session probed."""
        if self._identity.get(media.path) != (ident := Identity.probed(media)):
            self._identity[media.path] = ident

    def _get(self, path: str) -> _Open:
        expected = self._identity.get(path)
        now = Identity.of(path)  # every time: a file rewritten while open is caught too
        if expected is not None and not expected.matches(now):
            self._drop(path)
            raise MediaChanged(_changed(path, expected, now))
        if expected is None:
            self._identity[path] = now
        entry = self._open.get(path)
        if entry is not None:
            self._open.move_to_end(path)
            return entry
        while len(self._open) >= self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        entry = _Open(path, self.threads)
        self.opens += 1
        self._open[path] = entry
        return entry

    def frame(
        self,
        path: str,
        index: int,
        fmt: str = "rgb24",
        size: tuple[int, int] | None = None,
    ) -> np.ndarray[Any, np.dtype[np.uint8]] | tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]:
        """Frame ``index`` of ``path`` as ``fmt`` (planes as a tuple for yuv420p).

        yuv420p planes are read-only views of the decoded picture (no copy); the
        other formats are arrays of their own. Raises MediaError when the frame
        does not exist or the file cannot be decoded, MediaChanged when the file
        is not the one probed.
        """
        if fmt not in PIXEL_FORMATS:
            raise ValueError(f"pixel format {fmt!r}: one of {', '.join(PIXEL_FORMATS)}")
        if index < 0:
            raise MediaError(f"media {path}: frame {index} does not exist")
        entry = self._get(path)
        try:
            frame = self._decode_to(entry, index, path)
        except av.error.FFmpegError as e:
            self._drop(path)
            raise MediaError(f"media {path}: decoding frame {index} failed ({e})") from None
        width, height = size or (frame.width, frame.height)
        if fmt == "yuv420p":
            # PyAV returns the frame itself for a reformat that changes nothing; this
            # only saves the call (and its colour checks, moot for a same-format frame).
            same = frame.format.name == "yuv420p" and (frame.width, frame.height) == (width, height)
            out = frame if same else frame.reformat(width=width, height=height, format="yuv420p")
            return tuple(_plane(out, i) for i in range(3))
        pixels: np.ndarray[Any, np.dtype[np.uint8]] = np.asarray(
            frame.to_ndarray(width=width, height=height, format=fmt), np.uint8
        )
        return pixels

    def frame_into(
        self, path: str, index: int, out: tuple[np.ndarray[Any, np.dtype[np.uint8]], ...], fmt: str
    ) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]:
        """Frame ``index`` of ``path`` written into ``out`` (a ring slot's planes), at their size.

        ``out`` is one (h, w, 3) array for rgb24, (h, w, 4) for rgba, (h, w) for
        gray, or the three yuv420p planes. The decoder's picture is converted
        (and scaled) by FFmpeg and copied once, row by row, into ``out``: no
        intermediate array. Errors as :meth:`frame`; ``out`` is then unchanged.
        """
        if fmt not in PIXEL_FORMATS:
            raise ValueError(f"pixel format {fmt!r}: one of {', '.join(PIXEL_FORMATS)}")
        if len(out) != (3 if fmt == "yuv420p" else 1):
            raise ValueError(f"{fmt} needs {3 if fmt == 'yuv420p' else 1} output planes")
        height, width = out[0].shape[:2]
        if index < 0:
            raise MediaError(f"media {path}: frame {index} does not exist")
        entry = self._get(path)
        try:
            frame = self._decode_to(entry, index, path)
            converted = frame.reformat(width=width, height=height, format=fmt)
        except av.error.FFmpegError as e:
            self._drop(path)
            raise MediaError(f"media {path}: decoding frame {index} failed ({e})") from None
        for i, target in enumerate(out):
            plane = converted.planes[i]
            rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
            h = target.shape[0]
            row_bytes = target.shape[1] * (target.shape[2] if target.ndim == 3 else 1)
            np.copyto(target.reshape(h, row_bytes), rows[:h, :row_bytes])
        return out

    def _decode_to(self, entry: _Open, index: int, path: str) -> av.VideoFrame:
        sought = entry.frames is None or not (
            entry.next_index <= index <= entry.next_index + SEEK_AHEAD
        )
        if sought:
            self._seek(entry, index)
        back = 0  # how far before the target the last seek aimed, in frames
        while True:
            first = True
            for frame in entry.frames:
                got = entry.index_of(frame.pts)
                entry.next_index = got + 1
                if got == index:
                    if frame.is_corrupt:  # concealed by the decoder: some other picture
                        entry.frames = None
                        raise MediaError(f"media {path}: frame {index} is corrupt")
                    found: av.VideoFrame = frame
                    return found
                if got > index:
                    if first and sought and back < MAX_SEEK_BACK:
                        break  # the seek landed after the target (MPEG-TS does): aim earlier
                    entry.frames = None  # the stream has no frame with this number
                    raise MediaError(f"media {path}: frame {index} does not exist")
                first = False
            else:
                entry.frames = None
                raise MediaError(f"media {path}: frame {index} does not exist")
            if index - back <= 0:  # even the start is missed: read from the very beginning
                self._rewind(entry)
                back = MAX_SEEK_BACK
                continue
            back = max(1, 2 * back) if back else int(entry.rate) or 1
            self._seek(entry, max(0, index - back))

    def _seek(self, entry: _Open, index: int) -> None:
        self.seeks += 1
        entry.container.seek(
            entry.pts_of(index), stream=entry.stream, backward=True, any_frame=False
        )
        entry.frames = entry.container.decode(entry.stream)
        entry.next_index = 0  # unknown until the first frame says; the loop skips up to index

    def _rewind(self, entry: _Open) -> None:
        """Decode from the first packet: reopen, no seek (some containers cannot seek to 0)."""
        self.seeks += 1
        entry.reopen()

    def _drop(self, path: str) -> None:
        entry = self._open.pop(path, None)
        if entry is not None:
            entry.close()

    def close(self) -> None:
        for entry in self._open.values():
            entry.close()
        self._open.clear()

    @property
    def open_count(self) -> int:
        return len(self._open)


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Plane ``i`` of a yuv420p frame, without the line padding: a view, not a copy.

    The view keeps the decoded picture alive (FFmpeg's buffers are reference
    counted: the decoder never writes into a picture that is still referenced),
    so it stays valid and unchanged however many frames are decoded after it.
    Not copying saves 3 MB of memory traffic per 1080p frame.
    """
    plane = frame.planes[i]
    width = frame.width if i == 0 else (frame.width + 1) // 2
    height = frame.height if i == 0 else (frame.height + 1) // 2
    raw = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
    out: np.ndarray[Any, np.dtype[np.uint8]] = raw[:height, :width]
    out.flags.writeable = False  # it is the decoder's picture: shared, never changed
    return out
