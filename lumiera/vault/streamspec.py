"""What a calculation stream computes (:class:`StreamSpec`) and where it stands
(:class:`StreamState`): the plain data of :mod:`lumiera.vault.stream`, which the Engine's
handlers and the feeds use too."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from lumiera.bus.timeline import Timeline
from lumiera.shm.layout import PixelFormat
from lumiera.vault.cores import usable_cores

FORMATS = {"rgb24": PixelFormat.RGB24, "gray": PixelFormat.GRAY, "yuv420p": PixelFormat.YUV420P}
MODES = ("render", "playback")


def engine_workers(configured: int) -> int:
    """The Engine's worker threads for ``[engine] workers`` (0: one per usable core)."""
    return configured or usable_cores()


def decode_threads(configured: int, workers: int) -> int:
    """Each source decoder's threads for ``[engine] decode_threads``; 0 there: by the cores.

    Returns what :class:`~lumiera.vault.media.MediaPool` takes: a count, or 0 for
    FFmpeg's own (frame threads, one per core + 1). FFmpeg's frame threads let one
    source decode on several cores, at a price: each thread keeps a copy of the
    decoder's state and frames are handed between them. Where the Engine has 2
    cores or fewer (its workers, or the cores it may use, whichever is less: a
    local farm's node has its share), the other sources and the encoder fill them
    anyway, and one thread a decoder is cheaper: ``lumiera render`` of two 1080p
    H.264 sources on 2 cores took 3.8% less wall time and 2.7% less CPU (6
    alternated rounds). With more, FFmpeg's own count, as before (not measured:
    no machine of more cores was lent).
    """
    if configured < 0:
        raise ValueError(f"engine.decode_threads {configured}: 0 (by the cores) or more")
    if configured:
        return configured
    return 1 if min(workers, usable_cores()) <= 2 else 0


def render_window(workers: int) -> int:
    """Render jobs a stream keeps queued or running ahead of its position."""
    return 2 * workers + 2


def render_slots(workers: int) -> int:
    """Slots of a render ring that let a stream render its whole window straight into them:
    the window, the frame its reader (the encoder) holds, and one that is being released."""
    return render_window(workers) + 2


@dataclass
class StreamSpec:
    """What to compute: a frame range of a timeline, into a ring, in a mode."""

    id: str
    timeline: Timeline
    first: int
    count: int
    ring: str
    fmt: str = "rgb24"
    mode: str = "render"
    rate: Fraction = Fraction(25)
    start: float = 0.0  # playback: when frame ``first`` is due (time.monotonic)
    audio_ring: str | None = None  # each frame's sound into this ring too
    decode_threads: int = 0  # each clip reader's decoder (decode_threads(); 0: FFmpeg's)

    @property
    def size(self) -> tuple[int, int]:
        return self.timeline.output.width, self.timeline.output.height

    @property
    def end(self) -> int:
        return self.first + self.count

    def due(self, index: int) -> float:
        """When output frame ``index`` is due (playback)."""
        return self.start + float((index - self.first) / self.rate)


@dataclass
class StreamState:
    """Where a stream stands (shown by ``streams`` and in ``stats.engine``)."""

    position: int = 0
    frames: int = 0  # put into the ring
    dropped: int = 0  # playback: not ready by their due time
    failed: int = 0
    state: str = "running"
    error: str | None = None
    lateness_ms: list[float] = field(default_factory=list)  # playback: publish - due
    sound_frames: int = 0  # frames of sound put into the audio ring
    sound_dropped: int = 0  # playback: frames of sound not mixed by their frame's turn
