"""The sound stream of an encoded file: planar float32 PCM in, the codec's frames out.

Used by :class:`~lumiera.vault.codecs.Encoder` (pictures and sound) and
:class:`~lumiera.vault.codecs.AudioEncoder` (sound alone).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream

# Sample formats in the order they are preferred, of those a codec takes.
SAMPLE_FORMATS = ("fltp", "flt", "s16", "s16p", "s32", "s32p")


class AudioOut:
    """The sound stream of an output file: planar float32 PCM in, the codec's frames out.

    Samples are buffered until a whole frame of the codec's ``frame_size`` is
    there (AAC: 1024; PCM: any size); :meth:`flush` encodes the rest (a shorter
    last frame) and drains the codec. Timestamps count samples from 0.
    """

    def __init__(
        self, container: av.container.OutputContainer, codec: str, rate: int, layout: str
    ) -> None:
        self.container = container
        self.stream = cast(AudioStream, container.add_stream(codec, rate=rate, layout=layout))
        ctx = self.stream.codec_context
        takes = [f.name for f in ctx.codec.audio_formats or ()]
        self.format = next((f for f in SAMPLE_FORMATS if f in takes), "")
        if not self.format:
            raise ValueError(f"audio codec {codec} takes none of {', '.join(SAMPLE_FORMATS)}")
        self.stream.format = self.format
        self.stream.time_base = Fraction(1, rate)
        ctx.open()  # now its frame size is known
        self.rate, self.layout = rate, layout
        self.channels = ctx.channels
        self.frame_size = ctx.frame_size  # 0: frames of any size
        self._pending: list[np.ndarray[Any, Any]] = []
        self._buffered = 0
        self.samples = 0  # written (in frames handed to the codec)

    def write(self, pcm: np.ndarray[Any, Any]) -> None:
        """Planar float32 samples, shape (channels, n), values within -1..1."""
        if pcm.ndim != 2 or pcm.shape[0] != self.channels:
            raise ValueError(f"audio of shape {pcm.shape}: ({self.channels}, samples) expected")
        if pcm.shape[1] == 0:
            return
        self._pending.append(np.array(pcm, np.float32))  # a copy: the caller's may be a ring's
        self._buffered += pcm.shape[1]
        size = self.frame_size or self._buffered
        if self._buffered >= size:
            self._encode(size)

    def flush(self) -> None:
        """Encode what is buffered (a short last frame), then drain the codec."""
        self._encode(self.frame_size or self._buffered, everything=True)
        for packet in self.stream.encode(None):
            self.container.mux(packet)

    def _encode(self, size: int, everything: bool = False) -> None:
        if not self._pending:
            return
        pcm = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
        at = 0
        while pcm.shape[1] - at >= size or (everything and at < pcm.shape[1]):
            chunk = pcm[:, at : at + size]
            at += chunk.shape[1]
            for packet in self.stream.encode(self._frame(chunk)):
                self.container.mux(packet)
        rest = pcm[:, at:]
        self._pending = [rest] if rest.shape[1] else []
        self._buffered = rest.shape[1]

    def _frame(self, chunk: np.ndarray[Any, Any]) -> av.AudioFrame:
        fmt = self.format
        data: np.ndarray[Any, Any] = np.clip(chunk, -1.0, 1.0)
        if fmt.startswith("s16"):
            data = np.rint(data * 32767.0).astype(np.int16)
        elif fmt.startswith("s32"):
            data = np.rint(data.astype(np.float64) * 2147483647.0).astype(np.int32)
        if not fmt.endswith("p"):  # packed: one row, the channels interleaved
            data = data.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=fmt, layout=self.layout
        )
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = self.samples
        self.samples += chunk.shape[1]
        return frame
