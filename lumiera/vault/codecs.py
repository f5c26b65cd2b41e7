"""Codecs by name: the PyAV-backed ones built in, others added through entry points.

An encoder is a :class:`EncoderSpec` (codec, container, pixel format,
options, and the audio codec of its container: AAC in MP4, FLAC in Matroska,
16-bit PCM in MOV; :data:`AUDIO_CODECS`). Packages add their own by
declaring an entry point in the group ``lumiera.codecs`` whose object is an
EncoderSpec, or a callable taking the :class:`Registry` (to add several);
lumiera finds them when the registry is first used, without any change to
lumiera itself.

:class:`Encoder` writes frames to a file with PyAV. It writes to a temporary
name beside the target and renames at :meth:`Encoder.close`, so a file that
is there is complete; an encoder closed after an error removes its partial
file (:meth:`Encoder.abort`). Given ``audio`` (sample rate, layout) it also
writes a sound stream: :meth:`Encoder.write_audio` takes planar float32 PCM
(channels x samples, any number of samples per call), timestamps it in
samples from 0 (sample 0 is frame 0's time: the two streams are in sync by
construction) and hands the codec frames of its own frame size (AAC: 1024);
the container interleaves the two streams. :class:`AudioEncoder` writes a
file of sound alone (a farm render's sound, encoded once for the whole range
and muxed with the joined video: :mod:`lumiera.vault.join`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import av
import numpy as np
from av.video.stream import VideoStream

from lumiera.errors import CodecError
from lumiera.runtime_dir import held_open, partial_mark
from lumiera.vault.codecspec import EncoderSpec, Registry
from lumiera.vault.soundout import AudioOut

log = logging.getLogger("lumiera.vault")


REGISTRY = Registry()


class _File:
    """A file written under ``.NAME.partial`` beside ``path``, renamed only when complete."""

    def __init__(self, path: Path, spec: EncoderSpec, marks: Path | None = None) -> None:
        self.path = path
        self.spec = spec
        self.tmp = path.with_name(f".{path.name}.partial")
        self.audio: AudioOut | None = None
        # ``marks`` (a runtime dir's temp area): a marker there names the partial file
        # while it is written, so that it is removed even when this process dies
        # mid-file (by the supervisor at its end, or the next `up`:
        # runtime_dir.remove_partials).
        self.mark = None if marks is None else marks / partial_mark(os.getpid(), id(self))
        # The partial file, held open from its exclusive making until it is renamed or
        # removed: while it is held, no other writer takes it for a leftover
        # (runtime_dir.held_open), and only the file this writer made is removed.
        self._held: io.FileIO | None = None

    def _open(self) -> av.container.OutputContainer:
        if self.mark is not None:  # first: a file made from here on is found by its marker
            try:
                self.mark.write_text(str(self.tmp))
            except OSError:  # no temp area (an actor without its supervisor): no net
                self.mark = None
        self._held = self._claim()
        self.container = av.open(str(self.tmp), "w", format=self.spec.container)
        return self.container

    def _claim(self) -> io.FileIO:
        """Make the partial file, exclusively. Raises FileExistsError while a process
        (another render to the same output) has it open; a file nobody has open is a
        dead writer's leftover, removed first."""
        for _ in range(3):
            try:
                fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                if held_open(self.tmp):
                    raise FileExistsError(
                        errno.EEXIST, f"another render is writing {self.tmp}"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    self.tmp.unlink()
                continue
            return io.FileIO(fd, "w")
        raise FileExistsError(errno.EEXIST, f"{self.tmp} keeps being made by another writer")

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def _unmark(self) -> None:
        if self.mark is not None:
            with contextlib.suppress(OSError):
                self.mark.unlink()

    def _add_audio(self, audio: tuple[int, str] | None) -> None:
        if audio is not None:
            self.audio = AudioOut(self.container, self.spec.audio, *audio)

    def _refuse(self, e: Exception) -> CodecError:
        """Clean up a failed start; the error to raise."""
        if hasattr(self, "container"):
            with contextlib.suppress(Exception):
                self.container.close()
        self._drop_partial()
        self._unmark()
        return CodecError(f"cannot encode {self.spec.name} to {self.path}: {e}")

    def close(self) -> None:
        """Flush, close, and give the file its name (each kind of file says how)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if t is None:
            self.close()
        else:
            self.abort()

    def write_audio(self, pcm: np.ndarray[Any, Any]) -> None:
        """Planar float32 PCM, (channels, samples) within -1..1: the next samples of the sound."""
        if self.audio is None:
            raise CodecError(f"{self.path}: this encoder has no audio stream")
        try:
            self.audio.write(pcm)
        except av.error.FFmpegError as e:
            raise CodecError(f"encoding audio to {self.path}: {e}") from None

    def _finish(self) -> None:
        """Flush the audio, close, and give the file its name."""
        try:
            if self.audio is not None:
                self.audio.flush()
            self.container.close()
        except av.error.FFmpegError as e:
            self.abort()
            raise CodecError(f"finishing {self.path}: {e}") from None
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:  # the name taken by a directory, the disk gone: no file
            self.abort()
            raise CodecError(f"finishing {self.path}: {e}") from None
        self._release()
        self._unmark()

    def abort(self) -> None:
        """Give up: close and remove the partial file."""
        with contextlib.suppress(Exception):
            self.container.close()
        self._drop_partial()
        self._unmark()

    def _drop_partial(self) -> None:
        """Remove the partial file if it is the one this writer made (never another's)."""
        if self._held is None:
            return
        with contextlib.suppress(OSError):
            mine, there = os.fstat(self._held.fileno()), self.tmp.stat()
            if (mine.st_ino, mine.st_dev) == (there.st_ino, there.st_dev):
                self.tmp.unlink()
        self._release()


class Encoder(_File):
    """Frames into a file: ``write`` each (rgb24/gray arrays or yuv420p planes), then ``close``.

    With ``audio`` (sample rate, layout name) the file has a sound stream too,
    fed by :meth:`write_audio`.
    """

    def __init__(
        self,
        path: Path,
        spec: EncoderSpec,
        width: int,
        height: int,
        rate: Fraction,
        *,
        audio: tuple[int, str] | None = None,
        marks: Path | None = None,
    ) -> None:
        super().__init__(path, spec, marks)
        try:
            container = self._open()
            self.stream = cast(VideoStream, container.add_stream(spec.codec, rate=rate))
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = spec.pix_fmt
            self.stream.options = dict(spec.options)
            # Frame threads where the codec has them (libx264), as the ffmpeg command line
            # encodes; PyAV's default, slice threads, made an H.264 render's encode 25-30%
            # slower in wall time on 2 cores for the same CPU (and the same quality).
            self.stream.thread_type = "AUTO"
            self._add_audio(audio)
            # The codecs open now, not at the first frame: a bad option fails here, and
            # a caller can overlap the start (x264's takes about 5 ms) with other work.
            self.container.start_encoding()
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise self._refuse(e) from None
        self.frames = 0

    def write(
        self, pixels: np.ndarray[Any, Any] | tuple[np.ndarray[Any, Any], ...], fmt: str = "rgb24"
    ) -> None:
        if isinstance(pixels, tuple):  # yuv420p planes
            packed = _packed_yuv420p(pixels)
            if packed is not None:  # one buffer, as a ring slot holds them: no copy
                frame = av.VideoFrame.from_numpy_buffer(packed, format="yuv420p")
            else:
                frame = av.VideoFrame(pixels[0].shape[1], pixels[0].shape[0], "yuv420p")
                for i, plane in enumerate(pixels):
                    _fill(frame, i, plane)
        else:
            frame = av.VideoFrame.from_ndarray(pixels, format=fmt)
        frame.pts = self.frames
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except av.error.FFmpegError as e:
            raise CodecError(f"encoding frame {self.frames} to {self.path}: {e}") from None
        self.frames += 1

    def close(self) -> None:
        """Flush both streams, close, and give the file its name: only now is it there."""
        if self.frames == 0:
            self.abort()
            raise CodecError(f"{self.path}: no frames were written; no file made")
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        except av.error.FFmpegError as e:
            self.abort()
            raise CodecError(f"finishing {self.path}: {e}") from None
        self._finish()


class AudioEncoder(_File):
    """Sound alone into a file of ``spec``'s container and audio codec; ``write_audio``, ``close``.

    A farm render's sound: the whole range's, encoded once (AAC primes its first
    frame; parts encoded apart would each be primed, and gap at the joins).
    """

    def __init__(self, path: Path, spec: EncoderSpec, rate: int, layout: str) -> None:
        super().__init__(path, spec)
        try:
            self._open()
            self._add_audio((rate, layout))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise self._refuse(e) from None

    def close(self) -> None:
        """Flush, close, and give the file its name (CodecError when no sample was written)."""
        assert self.audio is not None
        if self.audio.samples + self.audio._buffered == 0:
            self.abort()
            raise CodecError(f"{self.path}: no audio was written; no file made")
        self._finish()


def _packed_yuv420p(planes: tuple[np.ndarray[Any, Any], ...]) -> np.ndarray[Any, Any] | None:
    """The three planes as one (h * 3/2, w) array, if they lie packed in one buffer.

    That is how a ring slot holds a yuv420p frame (Y, then U, then V, no line
    padding; even sizes). The encoder then reads the planes where they are: the
    frame is consumed (x264 and FFV1 copy or encode it) before ``write`` returns,
    so the caller may release the buffer right after. None for any other layout.
    """
    if len(planes) != 3:
        return None
    y, u, v = planes
    h, w = y.shape
    if h % 2 or w % 2 or u.shape != (h // 2, w // 2) or v.shape != u.shape:
        return None
    if not all(p.dtype == np.uint8 and p.flags.c_contiguous for p in planes):
        return None
    start = int(y.__array_interface__["data"][0])
    if int(u.__array_interface__["data"][0]) != start + w * h:
        return None
    if int(v.__array_interface__["data"][0]) != start + w * h + u.size:
        return None
    packed: np.ndarray[Any, Any] = np.lib.stride_tricks.as_strided(
        y, shape=(h * 3 // 2, w), strides=(w, 1), writeable=False
    )
    return packed


def _fill(frame: av.VideoFrame, i: int, plane: np.ndarray[Any, Any]) -> None:
    """Copy a plane into a frame's plane (whose rows may be padded)."""
    target = frame.planes[i]
    rows = np.frombuffer(memoryview(target), np.uint8).reshape(-1, target.line_size)
    h, w = plane.shape
    rows[:h, :w] = plane
