"""Every error lumiera raises on purpose, with its wire code.

Errors are mapped to wire codes at exactly one boundary: an exception's ``code``
attribute is what travels in an ``error`` reply, and :func:`from_wire` turns a
received error back into the matching exception class. Anything that is not a
:class:`LumieraError` is a bug: it is logged with its traceback and reported as
``internal``.
"""

from __future__ import annotations

from typing import ClassVar


class LumieraError(Exception):
    """Base of all deliberate errors. ``code`` is the wire error code."""

    code: ClassVar[str] = "error"


class UsageError(LumieraError):
    """The command line or a configuration value is wrong (exit 64)."""

    code = "usage"


class ConfigError(UsageError):
    """An unknown key or a bad value in setup.ini, ``--config`` or ``--def``."""

    code = "config"


class RuntimeDirError(LumieraError):
    """The runtime directory is unsafe (not ours, group/world accessible) or unusable."""

    code = "runtime_dir"


class InstanceRunning(LumieraError):
    """Another supervisor holds this instance's lock."""

    code = "instance_running"


class Unreachable(LumieraError):
    """No answer at all from the instance within the client's timeout (tools exit 69).

    Never on the wire: distinct from a ``timeout`` error reply, which is the
    supervisor's answer that a subsystem did not reply in time.
    """

    code = "unreachable"


class EventTimeout(LumieraError, TimeoutError):
    """An awaited event did not come within its timeout (a TimeoutError). Never on the wire."""

    code = "event_timeout"


class NotRunning(LumieraError):
    """No instance answers at the runtime directory (tools exit 69)."""

    code = "not_running"


# -- errors that travel on the bus ---------------------------------------------------


class BadMessage(LumieraError):
    """A message failed validation: frames, size, msgpack, kind or field types."""

    code = "bad_message"


class UnknownSubsystem(LumieraError):
    """A request named a subsystem this instance does not have."""

    code = "unknown_subsystem"


class Unavailable(LumieraError):
    """The subsystem exists but is not running (not started, stopped, or waiting)."""

    code = "unavailable"


class UnknownCommand(LumieraError):
    """The addressed subsystem has no handler for the command."""

    code = "unknown_command"


class BadArguments(LumieraError):
    """The command's arguments are missing, unexpected or of the wrong type."""

    code = "bad_args"


class RequestTimeout(LumieraError):
    """No reply came within the request timeout."""

    code = "timeout"


class SubsystemGone(LumieraError):
    """The subsystem ended while the request was in flight."""

    code = "subsystem_gone"


class ShuttingDown(LumieraError):
    """The instance or subsystem is shutting down and takes no more requests."""

    code = "shutting_down"


class FaultsDisabled(LumieraError):
    """Fault injection was asked for but ``debug.faults`` is off."""

    code = "faults_disabled"


class SegmentError(LumieraError):
    """A shared-memory segment cannot be created (no space, exists) or attached (missing)."""

    code = "segment"


class RingTimeout(LumieraError):
    """A bounded wait on a frame ring ran out (no free slot, no new frame)."""

    code = "ring_timeout"


class NotFound(LumieraError):
    """A command names a track, clip or media the session does not have."""

    code = "not_found"


class Conflict(LumieraError):
    """A command would break the model's rules (overlapping clips, a duplicate id)."""

    code = "conflict"


class MediaError(LumieraError):
    """A media file is missing, unreadable, not decodable, or changed since it was probed."""

    code = "media"


class MediaChanged(MediaError):
    """A media file is not the one that was probed (size, mtime or inode differ)."""

    code = "media_changed"


class CodecError(LumieraError):
    """An unknown codec, a codec plugin that cannot be loaded, or an encoder that fails."""

    code = "codec"


class DeadlineMissed(LumieraError):
    """A playback job was dropped: its deadline passed before a worker took it."""

    code = "deadline_missed"


class NothingToUndo(LumieraError):
    """``undo`` with an empty history, or ``redo`` with nothing undone."""

    code = "nothing_to_undo"


class JournalError(LumieraError):
    """The session file cannot be used: corrupt, a newer layout, disk full, I/O error."""

    code = "journal"


class InternalError(LumieraError):
    """An unexpected exception in the handler (a bug; the subsystem then ends as a crash)."""

    code = "internal"


_BY_CODE: dict[str, type[LumieraError]] = {
    cls.code: cls
    for cls in (
        LumieraError,
        UsageError,
        ConfigError,
        BadMessage,
        UnknownSubsystem,
        Unavailable,
        UnknownCommand,
        BadArguments,
        RequestTimeout,
        SubsystemGone,
        ShuttingDown,
        FaultsDisabled,
        SegmentError,
        RingTimeout,
        NotFound,
        Conflict,
        MediaError,
        MediaChanged,
        CodecError,
        DeadlineMissed,
        NothingToUndo,
        JournalError,
        InternalError,
    )
}

WIRE_CODES: tuple[str, ...] = tuple(sorted(_BY_CODE))


def from_wire(code: str, message: str) -> LumieraError:
    """The exception for an ``error`` reply; unknown codes become a plain LumieraError."""
    cls = _BY_CODE.get(code, LumieraError)
    err = cls(message)
    if cls is LumieraError and code != LumieraError.code:
        err.code = code  # type: ignore[misc]  # keep the peer's code visible
    return err
