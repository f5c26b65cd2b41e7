"""Encoders by name, without PyAV: what an encoder is (:class:`EncoderSpec`), the built-in
ones, and the :class:`Registry` that adds those of plugins (entry points in the group
``lumiera.codecs``). Kept apart from :mod:`lumiera.vault.codecs` (which writes files with
PyAV) so that the command line can check a codec name without importing PyAV and numpy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lumiera.errors import CodecError

ENTRY_POINT_GROUP = "lumiera.codecs"
log = logging.getLogger("lumiera.vault")


# The sound codec of a container, where the spec names none: AAC in MP4 (what players
# expect there), FLAC in Matroska (lossless, as the masters' FFV1 is), 16-bit PCM in MOV.
AUDIO_CODECS = {"mp4": "aac", "matroska": "flac", "mov": "pcm_s16le", "nut": "flac"}
AUDIO_FALLBACK = "pcm_s16le"


@dataclass(frozen=True)
class EncoderSpec:
    """How to encode: PyAV codec name, container format, pixel format, codec options.

    ``audio_codec``: the sound's codec; "" for the container's (:data:`AUDIO_CODECS`).
    """

    name: str
    codec: str
    container: str
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = field(default_factory=dict)
    lossless: bool = False
    doc: str = ""
    audio_codec: str = ""

    @property
    def audio(self) -> str:
        """The codec its sound is encoded with."""
        return self.audio_codec or AUDIO_CODECS.get(self.container, AUDIO_FALLBACK)


# H.264 at constant quality (CRF), never a bit rate: files rendered as segments
# by fresh encoders join without a jump in quality, and a bit rate that some PyAV
# versions set on every new stream cannot switch libx264 to ABR. 23 is x264's own
# default, so these files are what they were before the option was explicit.
BUILTIN = (
    EncoderSpec(
        "h264",
        "libx264",
        "mp4",
        "yuv420p",
        {"preset": "ultrafast", "crf": "23"},
        False,
        "H.264 in MP4",
    ),
    EncoderSpec(
        "h264-veryfast",
        "libx264",
        "mp4",
        "yuv420p",
        {"preset": "veryfast", "crf": "23"},
        False,
        "H.264, smaller",
    ),
    EncoderSpec("ffv1", "ffv1", "matroska", "yuv420p", {}, True, "FFV1 in MKV: lossless masters"),
    EncoderSpec(
        "ffv1-rgb",
        "ffv1",
        "matroska",
        "bgr0",
        {},
        True,
        "FFV1 RGB: lossless, no chroma subsampling",
    ),
    EncoderSpec("prores", "prores_ks", "mov", "yuv422p10le", {}, False, "ProRes 422 in MOV"),
)


class Registry:
    """Encoders by name. Plugins are loaded once, when a name that is not built in is asked
    for (or all names are)."""

    def __init__(self, load_plugins: bool = True) -> None:
        self._encoders: dict[str, EncoderSpec] = {s.name: s for s in BUILTIN}
        self._plugins_loaded = not load_plugins
        self.plugin_errors: list[str] = []

    def add(self, spec: EncoderSpec) -> None:
        if spec.name in self._encoders:
            raise CodecError(f"encoder {spec.name!r} is registered already")
        self._encoders[spec.name] = spec

    def encoder(self, name: str) -> EncoderSpec:
        spec = self._encoders.get(name)
        if spec is None:  # plugins add names, never replace a built-in one: loaded only now
            self._load_plugins()
            spec = self._encoders.get(name)
        if spec is None:
            raise CodecError(f"no encoder {name!r} (have: {', '.join(sorted(self._encoders))})")
        return spec

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._encoders)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        import importlib.metadata  # 30-40 ms of imports: only when a plugin is looked for

        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj: Any = ep.load()
                if isinstance(obj, EncoderSpec):
                    self.add(obj)
                elif callable(obj):
                    obj(self)
                else:
                    raise CodecError(f"{ep.value} is neither an EncoderSpec nor a callable")
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break lumiera
                msg = f"codec plugin {ep.name} ({ep.value}): {type(e).__name__}: {e}"
                log.error("%s", msg)
                self.plugin_errors.append(msg)
