"""A render range cut into segments of whole frames, each with a stable key.

A farm render gives each :class:`Segment` to one task. The task renders the
segment's frames with a fresh encoder into a file of its own, and
:func:`~lumiera.vault.join.join` (re-exported here) remuxes the files into
one. A segment's key comes from the job and its range only, so a task that
is retried, or submitted again by a render that is restarted, has the same
key; two jobs (another timeline, range or codec) never share one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lumiera.errors import BadArguments
from lumiera.vault.join import JoinReport, join

__all__ = ["JoinReport", "Segment", "job_id", "join", "split"]


@dataclass(frozen=True)
class Segment:
    """Frames ``first``..``first + count - 1`` of a job, its ``index``-th segment."""

    index: int
    first: int
    count: int
    key: str

    @property
    def end(self) -> int:
        """The frame after the segment's last."""
        return self.first + self.count


def job_id(*parts: bytes | str) -> str:
    """A short stable id (24 hex digits) of what defines a render job.

    Give it everything the output depends on, e.g. the timeline's wire form
    (``codec.pack(timeline.to_wire())``), the range and the codec's name and
    options: equal inputs give equal ids on every machine and in every run,
    other inputs other ids. Parts are length-prefixed, so ``("ab", "c")`` and
    ``("a", "bc")`` differ.
    """
    digest = hashlib.blake2b(digest_size=12, person=b"lumiera-job")
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def split(first: int, count: int, segment_frames: int, *, job: str) -> list[Segment]:
    """Frames ``first``..``first + count - 1`` as consecutive segments, in order.

    Every segment but the last has ``segment_frames`` frames; the last has
    what is left (1 to ``segment_frames``). Together they cover the range
    exactly, each frame once. A segment's key is
    ``lumiera-segment-<job>-<first>-<count>``: the same for the same job and
    range whenever it is computed, which is what lets a retried task keep it.

    Raises BadArguments if ``first`` is negative, ``count`` or
    ``segment_frames`` is not positive, or ``job`` is empty (keys of different
    jobs would collide, and a task scheduler hands back another job's result
    for an equal key).
    """
    if first < 0 or count < 1 or segment_frames < 1:
        raise BadArguments(
            f"cannot split {count} frames from {first} into segments of {segment_frames}"
        )
    if not job:
        raise BadArguments("split needs a job id (job_id()): keys of different jobs would collide")
    return [
        Segment(index, start, n, f"lumiera-segment-{job}-{start}-{n}")
        for index, start in enumerate(range(first, first + count, segment_frames))
        for n in (min(segment_frames, first + count - start),)
    ]
