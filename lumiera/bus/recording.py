"""Recordings of the bus: a versioned msgpack stream, written by ``lumiera tap --record``.

The format (docs/RECORDING.md has the whole description) is a plain stream of
msgpack maps, one after the other, no framing besides msgpack's own:

1. a header, ``{"format": "lumiera-recording", "version": 1, "instance",
   "runtime_dir", "started" (Unix time), "prefixes", "recorder": {pid,
   lumiera}, "session_revision" (int|nil)}``;
2. one map per record, ``{"t", "kind", "topic", "body"}``: ``t`` the seconds
   since ``started`` on the monotonic clock, ``kind`` ``event``, ``request``
   or ``reply``, ``topic`` the event's topic (for a request or reply: the
   subsystem it went to), ``body`` a map (an event's wire body; a request as
   ``{id, to, command, args}``, a reply as ``{id, result}``);
3. at a regular end, ``{"t", "kind": "end", "records": N}``.

Pure logic, no sockets: :class:`RecordingWriter` appends to a file,
:func:`read_recording` checks a whole file and refuses (UsageError, a clear
message, never a traceback) one that is not a recording, of a newer version,
cut inside an object, or malformed. The runtime-directory marker
(``recording-<pid>``) that names a running recording for ``lumiera up``'s
emergency report is handled here too.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from lumiera.errors import UsageError
from lumiera.runtime_dir import RuntimeDir, process_runs

FORMAT = "lumiera-recording"
VERSION = 1
KINDS = ("event", "request", "reply")
END = "end"
MARKER_PREFIX = "recording-"  # recording-<pid> in the runtime dir: the path, one line


@dataclass(frozen=True)
class Record:
    """One record: ``t`` seconds after the start, ``kind``, ``topic``, ``body``."""

    t: float
    kind: str
    topic: str
    body: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.t, "kind": self.kind, "topic": self.topic, "body": self.body}


@dataclass
class Recording:
    """A whole recording as read: its header, its records, whether it had its end."""

    header: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    complete: bool = False

    def of_kind(self, kind: str) -> list[Record]:
        return [r for r in self.records if r.kind == kind]


def header(
    instance: str,
    runtime_dir: str,
    prefixes: list[str],
    *,
    started: float | None = None,
    session_revision: int | None = None,
    lumiera_version: str = "",
) -> dict[str, Any]:
    """The first object of a recording."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "instance": instance,
        "runtime_dir": runtime_dir,
        "started": time.time() if started is None else started,
        "prefixes": list(prefixes),
        "recorder": {"pid": os.getpid(), "lumiera": lumiera_version},
        "session_revision": session_revision,
    }


class RecordingWriter:
    """Appends records to a new file; every record is flushed as it is written.

    ``clock`` is the monotonic clock ``t`` is measured on (a test passes its own).
    """

    def __init__(self, path: Path, head: dict[str, Any], clock: Any = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._t0 = clock()
        self.count = 0
        self._f: BinaryIO | None = path.open("xb")  # never over another file
        self._write(head)

    def now(self) -> float:
        """Seconds since the recording began: a record's ``t``."""
        return float(self._clock() - self._t0)

    def write(self, kind: str, topic: str, body: dict[str, Any], t: float | None = None) -> None:
        """A record at ``t`` (default: now); records that belong together share one ``t``."""
        if kind not in KINDS:
            raise ValueError(f"record kind {kind!r}: one of {', '.join(KINDS)}")
        self._write(Record(self.now() if t is None else t, kind, topic, body).to_wire())
        self.count += 1

    def close(self) -> None:
        """Write the end record and close; a second call does nothing."""
        if self._f is None:
            return
        try:
            self._write({"t": self._clock() - self._t0, "kind": END, "records": self.count})
        finally:
            f, self._f = self._f, None
            f.close()

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._f is not None, "the recording is closed"
        self._f.write(msgpack.packb(obj, use_bin_type=True))
        self._f.flush()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_recording(path: Path) -> Recording:
    """Read and check a whole recording; UsageError saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"recording {path}: {e.strerror or e}") from None
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        ext_hook=_refuse_ext,
        max_buffer_size=max(len(data), 1),
    )
    unpacker.feed(data)
    objects, damage = _objects(unpacker, len(data))
    if not objects or not isinstance(objects[0], dict) or objects[0].get("format") != FORMAT:
        raise UsageError(f"recording {path}: not a lumiera recording (no {FORMAT} header)")
    if damage:
        raise UsageError(f"recording {path}: {damage}")
    head = _check_header(path, objects[0])
    rec = Recording(head)
    for n, obj in enumerate(objects[1:], start=1):
        if rec.complete:
            raise UsageError(f"recording {path}: object {n} follows the end record")
        if isinstance(obj, dict) and obj.get("kind") == END:
            if obj.get("records") != len(rec.records):
                raise UsageError(
                    f"recording {path}: the end record counts {obj.get('records')!r} records, "
                    f"the file holds {len(rec.records)}"
                )
            rec.complete = True
            continue
        rec.records.append(_check_record(path, n, obj))
    return rec


def _objects(unpacker: msgpack.Unpacker, size: int) -> tuple[list[Any], str]:
    """The whole objects of the stream, and what is wrong after them ("" if nothing)."""
    out: list[Any] = []
    whole = 0  # the bytes of the whole objects (tell() after a cut object counts its start)
    try:
        for obj in unpacker:
            out.append(obj)
            whole = unpacker.tell()
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        return out, f"damaged at object {len(out)} ({type(e).__name__}: {e})"
    if whole != size:
        return out, (
            f"truncated inside object {len(out)} (byte {whole} of {size}): "
            "the file was cut while it was written"
        )
    return out, ""


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not used in a recording")


def _check_header(path: Path, head: dict[str, Any]) -> dict[str, Any]:
    version = head.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"recording {path}: version {version!r} is not a version")
    if version > VERSION:
        raise UsageError(
            f"recording {path}: format version {version} is newer than this lumiera reads "
            f"(up to {VERSION}); use a newer lumiera"
        )
    started = head.get("started")
    if not isinstance(started, int | float) or isinstance(started, bool):
        raise UsageError(f"recording {path}: the header has no start time")
    return head


def _check_record(path: Path, n: int, obj: Any) -> Record:
    def bad(why: str) -> UsageError:
        return UsageError(f"recording {path}: record {n}: {why}")

    if not isinstance(obj, dict):
        raise bad(f"{type(obj).__name__} is not a map")
    t, kind, topic, body = (obj.get(k) for k in ("t", "kind", "topic", "body"))
    if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
        raise bad(f"time offset {t!r} is not a number of seconds")
    if kind not in KINDS:
        raise bad(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(topic, str) or not topic:
        raise bad(f"topic {topic!r} is not a text")
    if not isinstance(body, dict):
        raise bad(f"body is a {type(body).__name__}, not a map")
    return Record(float(t), kind, topic, body)


# -- the marker in the runtime directory ----------------------------------------------


def marker_path(rd: RuntimeDir, pid: int | None = None) -> Path:
    return rd.path / f"{MARKER_PREFIX}{os.getpid() if pid is None else pid}"


def write_marker(rd: RuntimeDir, recording: Path) -> Path:
    """Name ``recording`` (made absolute) in ``rd`` while it runs; returns the marker."""
    marker = marker_path(rd)
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_text(f"{recording.absolute()}\n")
    tmp.replace(marker)
    return marker


def remove_marker(marker: Path) -> None:
    with contextlib.suppress(OSError):
        marker.unlink()


def _markers(rd: RuntimeDir) -> list[tuple[Path, bool]]:
    """Each recording marker of ``rd``, and whether its recorder still runs."""
    try:
        entries = list(rd.path.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        pid_text = entry.name.removeprefix(MARKER_PREFIX)
        if entry.name != pid_text and pid_text.isdigit():
            found.append((entry, process_runs(int(pid_text))))
    return found


def remove_dead_markers(rd: RuntimeDir) -> list[str]:
    """Remove the markers of recorders that are gone (killed before they could); their names.

    The supervisor sweeps them at its start, with the instance's lock held.
    """
    removed = []
    for entry, alive in _markers(rd):
        if not alive:
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry.name)
    return removed


def running_recordings(rd: RuntimeDir) -> list[Path]:
    """The recordings of ``rd`` whose recorder still runs, oldest marker first.

    A marker whose process is gone (a recorder killed before it could remove
    it) is passed over here; :func:`remove_dead_markers` removes it.
    """
    found: list[tuple[float, Path]] = []
    for entry, alive in _markers(rd):
        if not alive:
            continue
        try:
            text = entry.read_text().strip()
            found.append((entry.stat().st_mtime, Path(text)))
        except OSError:
            continue
    return [p for _, p in sorted(found)]
