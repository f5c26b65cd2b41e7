"""Every error lumiera raises on purpose, with its wire code.

Errors are mapped to wire codes at exactly one boundary: an exception's ``code``
attribute is what travels in an ``error`` reply, and :func:`from_wire` turns a
received error back into the matching exception class. Anything that is not a
:class:`LumieraError` is a bug: it is logged with its traceback and reported as
``internal``.

Where a meaning is the standard library's, the class says so too: every "no
answer, no frame, no event in time" is also a :class:`TimeoutError`, so one
``except TimeoutError`` catches a bounded wait that ran out, whichever layer
it was in.
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


class Unreachable(LumieraError, TimeoutError):
    """No answer at all from the instance within the client's timeout (tools exit 69).

    Also a subsystem's "no welcome from the supervisor in time" at its start.

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


class BadTimeline(BadMessage):
    """A timeline that breaks the contract (:mod:`lumiera.bus.timeline`); names the field."""

    code = "bad_timeline"


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


class RequestTimeout(LumieraError, TimeoutError):
    """The supervisor's answer: the subsystem sent no reply within the request timeout."""

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


class RingTimeout(LumieraError, TimeoutError):
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


class JoinFailed(CodecError):
    """Segment files could not be joined into one (a part unreadable, the output unwritable).

    Base of the causes below; whichever it is, no file has the output's name.
    """

    code = "join_failed"


class JoinRefused(JoinFailed):
    """The parts cannot make one stream: codec, size, pixel format, rate or codec headers
    differ, a part does not start on a keyframe, or its frames are not consecutive.
    Refused before anything is written."""

    code = "join_refused"


class JoinMismatch(JoinFailed):
    """The joined file failed its check: frame count, duration or timestamps are not
    what was expected (a segment with frames missing or extra, say)."""

    code = "join_mismatch"


class DeadlineMissed(LumieraError):
    """A playback job was dropped: its deadline passed before a worker took it."""

    code = "deadline_missed"


class NothingToUndo(LumieraError):
    """``undo`` with an empty history, or ``redo`` with nothing undone."""

    code = "nothing_to_undo"


class JournalError(LumieraError):
    """The session file cannot be used: corrupt, a newer layout, disk full, I/O error."""

    code = "journal"


class RenderFailed(LumieraError):
    """A render ended without a complete file; the message says why (base of the causes below)."""

    code = "render_failed"


class RenderStopped(RenderFailed):
    """The render was stopped (``stop``) before its last frame; its partial file is gone."""

    code = "render_stopped"


class EngineStreamEnded(RenderFailed):
    """The engine's stream ended (failed or stopped) before it delivered every frame."""

    code = "engine_stream_ended"


class EngineSilent(RenderFailed, TimeoutError):
    """No frame came from the engine for too long, though its stream had not ended."""

    code = "engine_silent"


class FrameOutOfOrder(RenderFailed):
    """A frame came where another was due: a stream skipped or repeated one."""

    code = "frame_out_of_order"


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
        BadTimeline,
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
        JoinFailed,
        JoinRefused,
        JoinMismatch,
        DeadlineMissed,
        NothingToUndo,
        JournalError,
        RenderFailed,
        RenderStopped,
        EngineStreamEnded,
        EngineSilent,
        FrameOutOfOrder,
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
