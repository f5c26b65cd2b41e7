"""What the session records of a media file when it is added: its probe (PyAV).

Video: frames, rate, size, pixel format. Audio (the first audio stream):
sample rate, channels, layout and length in samples. And the file's identity
(size, mtime_ns, inode) that renders check before they read it.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

from lumiera.bus.timeline import rate_text
from lumiera.errors import MediaError


def probe_media(path: str) -> dict[str, Any]:
    """The media's fields (:class:`~lumiera.bus.timeline.Media` but id and path); MediaError.

    A file without video has width and height 0 and no ``frames``/``rate``
    (the session gives it those of its output rate); one with neither video nor
    audio, or that cannot be decoded, is a MediaError naming it.
    """
    import av  # heavy: only the session process needs it

    try:
        st = os.stat(path)
    except OSError as e:
        raise MediaError(f"media {path}: {e.strerror}") from None
    except ValueError as e:  # a NUL in the path: no such file can exist
        raise MediaError(f"media {path!r}: {e}") from None
    found: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    try:
        with av.open(path) as container:
            if not container.streams.video and not container.streams.audio:
                raise MediaError(f"media {path}: neither a video nor an audio stream")
            if container.streams.audio:
                found.update(_audio(path, container, container.streams.audio[0]))
            if container.streams.video:
                found.update(_video(path, container, container.streams.video[0]))
            else:
                found.update(width=0, height=0, pix_fmt="")
            return found
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"media {path}: not decodable ({e})") from None


def _video(path: str, container: Any, stream: Any) -> dict[str, Any]:
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise MediaError(f"media {path}: no frame rate")
    frames = stream.frames
    if not frames:  # not in the header: count them (small files) rather than guess
        container.seek(0)
        frames = sum(1 for p in container.demux(stream) if p.size)
    ctx = stream.codec_context
    return {
        "frames": int(frames),
        "rate": rate_text(Fraction(rate)),
        "width": int(ctx.width),
        "height": int(ctx.height),
        "pix_fmt": str(ctx.pix_fmt or ""),
    }


def _audio(path: str, container: Any, stream: Any) -> dict[str, Any]:
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or stream.rate or 0)
    if rate <= 0:
        raise MediaError(f"media {path}: its audio has no sample rate")
    channels = int(ctx.channels or 0) or 1
    samples = 0
    if stream.duration is not None and stream.time_base is not None:
        samples = round(stream.duration * stream.time_base * rate)
    elif container.duration is not None:
        samples = round(Fraction(container.duration, av_time_base()) * rate)
    if samples <= 0:  # not in the header: decode it (small files) rather than guess
        samples = sum(f.samples for f in container.decode(stream))
        container.seek(0)
    return {
        "audio_rate": rate,
        "audio_channels": channels,
        "audio_layout": _layout_name(ctx, channels),
        "audio_samples": samples,
    }


def _layout_name(ctx: Any, channels: int) -> str:
    """The layout's name; a file without a channel mask (WAV): the usual one of its count."""
    name = str(getattr(ctx.layout, "name", "") or "")
    if name and "channels" not in name:
        return name
    return {1: "mono", 2: "stereo", 6: "5.1"}.get(channels, name)


def av_time_base() -> int:
    import av

    return int(av.time_base)
